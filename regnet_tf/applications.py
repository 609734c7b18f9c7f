"""`keras.applications`-style factories for every registered model, and `preprocess_input`.

    from regnet_tf.applications import RegNetY016, preprocess_input
    model = RegNetY016(weights=None, classes=1000)
    probs = model(preprocess_input(images_rgb_0_255))

Input convention: the models take RGB images normalized with the ImageNet mean and std. `preprocess_input`
maps RGB values in [0, 255] to that; ``include_preprocessing=True`` puts the same normalization inside the
model instead, so it takes RGB in [0, 255] directly. No weights are ever downloaded: ``weights`` is None
(random initialization) or the path of a local weights file (``.weights.h5``, ``.keras`` or a legacy ``.h5``).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.models import common
from regnet_tf.models.registry import get_entry, list_models, resolve

# Aliases of the one definition, `regnet_tf.data.format.MEAN_RGB` / `STD_RGB` (0-1 scale).
IMAGENET_MEAN_RGB = MEAN_RGB
IMAGENET_STD_RGB = STD_RGB
MIN_SIZE = 32

_MEAN_255 = np.array(IMAGENET_MEAN_RGB, np.float32) * 255.0
_STD_255 = np.array(IMAGENET_STD_RGB, np.float32) * 255.0


def preprocess_input(x, data_format=None):
    """RGB images with values in [0, 255] (channels last) -> ImageNet mean/std normalized float32.

    Accepts numpy arrays and tensors; never modifies its input in place.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(f"regnet_tf models are channels-last only; got data_format={data_format!r}")
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        x = np.asarray(x, np.float32)
        if x.shape[-1:] != (3,):
            raise ValueError(f"preprocess_input expects RGB images with 3 channels last; got shape {x.shape}")
        return (x - _MEAN_255) / _STD_255
    x = keras.ops.cast(x, "float32")
    if x.shape[-1] != 3:
        raise ValueError(f"preprocess_input expects RGB images with 3 channels last; got shape {tuple(x.shape)}")
    return (x - _MEAN_255) / _STD_255


def decode_predictions(preds, top=5):
    raise NotImplementedError(
        "regnet_tf bundles no ImageNet class index (nothing is downloaded); map class ids with your own labels"
    )


def _input_shape(input_shape, default_size, include_top, weights):
    if input_shape is None:
        return (default_size, default_size, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be a tuple of three integers (height, width, channels), channels "
                         f"last. Received: input_shape={input_shape}")
    if input_shape[-1] is None or input_shape[-1] < 1:
        raise ValueError(f"`input_shape` needs a known, positive number of channels. Received: {input_shape}")
    if weights is not None and input_shape[-1] != 3:
        raise ValueError(f"The input must have 3 channels to load weights; Received `input_shape={input_shape}`")
    for n in input_shape[:2]:
        if n is not None and n < MIN_SIZE:
            raise ValueError(f"Input size must be at least {MIN_SIZE}x{MIN_SIZE}; Received: input_shape={input_shape}")
    return input_shape


def _check_weights(weights, include_top, classes):
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        hint = (" regnet_tf downloads nothing and ships no pretrained weights;" if weights == "imagenet" else "")
        raise ValueError(
            f"The `weights` argument should be either `None` (random initialization) or the path to a local weights"
            f" file (.weights.h5, .keras or .h5).{hint} Received: weights={weights!r}"
        )
    if include_top and classes != 1000:
        raise ValueError(
            f"If loading `weights` from a file with `include_top=True`, `classes` should be 1000 (the ImageNet head"
            f" the file holds). Received: classes={classes}. Use include_top=False and add your own classifier."
        )


def build_model(model, include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name=None, include_preprocessing=False):
    """Builds a registered model (by name) or any spec (RegNet, AnyNet, ResNet, EffNet) as a Keras functional model.

    Arguments as `keras.applications`; ``pooling`` ("avg" or "max") applies when ``include_top=False``. The spec
    builds its own features (``spec.features``, in its family module); the classifier is shared.
    """
    if isinstance(model, str):
        entry = get_entry(model)
        default_size, default_name = entry.resolution, entry.name
    else:
        default_size, default_name = 224, type(model).__name__.replace("Spec", "").lower()
    spec = resolve(model)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` must be a positive integer with include_top=True. Received: classes={classes}")
    _check_weights(weights, include_top, classes)

    if input_tensor is None:
        inputs = img_input = keras.Input(shape=_input_shape(input_shape, default_size, include_top, weights))
    else:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                "`input_tensor` must be a Keras tensor (the output of keras.Input or of a Keras layer). Received: "
                f"{type(input_tensor).__name__}"
            )
        _input_shape(tuple(input_tensor.shape[1:]), default_size, include_top, weights)
        img_input = input_tensor
        inputs = keras.utils.get_source_inputs(input_tensor)

    x = img_input
    if include_preprocessing:
        x = keras.layers.Normalization(mean=_MEAN_255.tolist(), variance=(_STD_255**2).tolist(), name="preprocess")(x)
    x = spec.features(x)
    if include_top:
        x = common.classifier(x, spec, classes, classifier_activation)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)

    model = keras.Model(inputs, x, name=name or default_name)
    if weights is not None:
        model.load_weights(weights)
    return model


_DOC = """Builds {paper_name} ({name}, default resolution {resolution} px) as a Keras model.

Source of the configuration: {source}.

Args:
    include_top: whether to include the pooling + dense classifier.
    weights: None (random init, pycls initialization) or the path of a local weights file. Nothing is downloaded.
    input_tensor: optional Keras tensor (e.g. the output of `keras.Input` or of preceding layers) to use as input.
    input_shape: optional (height, width, channels); defaults to ({resolution}, {resolution}, 3) with the top and
        (None, None, 3) without it. Height and width may be None (any size >= 32).
    pooling: with include_top=False: None (4D feature map), "avg" or "max" (2D features).
    classes: number of classes of the classifier.
    classifier_activation: activation of the classifier ("softmax", None for logits, or any Keras activation).
    name: model name (default "{name}").
    include_preprocessing: if True the model normalizes RGB [0, 255] inputs itself (see `preprocess_input`).

Returns:
    A `keras.Model`.
"""


def _make_factory(entry):
    def factory(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name=None, include_preprocessing=False):
        return build_model(entry.name, include_top=include_top, weights=weights, input_tensor=input_tensor,
                           input_shape=input_shape, pooling=pooling, classes=classes,
                           classifier_activation=classifier_activation, name=name,
                           include_preprocessing=include_preprocessing)

    factory.__name__ = factory.__qualname__ = entry.factory
    factory.__doc__ = _DOC.format(**vars(entry))
    return factory


__all__ = ["build_model", "preprocess_input", "decode_predictions"]
for _name in list_models():
    _entry = get_entry(_name)
    globals()[_entry.factory] = _make_factory(_entry)
    __all__.append(_entry.factory)
