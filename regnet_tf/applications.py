"""`keras.applications`-style factories for every registered model, and `preprocess_input`.

    from regnet_tf.applications import RegNetY016, preprocess_input
    model = RegNetY016(weights=None, classes=1000)
    probs = model(preprocess_input(images_rgb_0_255))

Input convention: the models take RGB images normalized with the ImageNet mean and std. `preprocess_input`
maps RGB values in [0, 255] to that; ``include_preprocessing=True`` puts the same normalization inside the
model instead, so it takes RGB in [0, 255] directly. That holds for every weights too: weights converted from
another library that were trained on another normalization get an ``input_adapter`` layer inside the model.

``weights``: None (random initialization), "imagenet" or a tag of public weights (fetched with
`keras.utils.get_file` and converted once, `regnet_tf.weights.pretrained`; docs/WEIGHTS.md), or a local file
(a converted ``.weights.h5``, any ``.weights.h5``, ``.keras`` or legacy ``.h5``).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from regnet_tf import imagenet
from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.models import common
from regnet_tf.weights import pretrained
from regnet_tf.weights.core import load_by_name, read_config
from regnet_tf.zoo import feature_info, get_entry, list_models, resolve

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
    """ImageNet-1k class ids -> [(synset id, class name, score), ...] per sample, best first (Keras's semantics);
    ``preds`` has shape (samples, 1000). The class names are bundled (regnet_tf/imagenet_classes.txt)."""
    return imagenet.decode_predictions(preds, top=top)


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


def resolve_weights(model, weights):
    """``weights`` of a factory -> (local file or None, its WeightsConfig or None).

    None: random initialization. A local file: a converted ``.weights.h5`` (it carries its WeightsConfig), or any
    Keras weights file. "imagenet" or a tag such as "timm/regnety_040.ra3_in1k": the public weights of a registered
    model, fetched with ``keras.utils.get_file`` and converted once (`regnet_tf.weights.pretrained`).
    """
    if weights is None:
        return None, None
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return os.fspath(weights), read_config(weights)
    if isinstance(weights, str) and not weights.endswith((".h5", ".keras")):
        if not isinstance(model, str):
            raise ValueError(f"weights={weights!r} needs a registered model name, not a spec: public weights are per "
                             "model (regnet_tf.weights.pretrained.tags(name) lists them)")
        return pretrained.weights_file(model, weights)
    if isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"no such weights file: {os.fspath(weights)}")
    raise ValueError(
        "The `weights` argument should be either `None` (random initialization), `imagenet` (pre-training on "
        "ImageNet), a tag of public weights (e.g. 'timm/regnety_040.ra3_in1k'; regnet_tf.weights.pretrained.tags(name)"
        f" lists them) or the path to a local weights file (.weights.h5, .keras or .h5). Received: weights={weights!r}"
    )


def build_model(model, include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                classes=1000, classifier_activation="softmax", name=None, include_preprocessing=False):
    """Builds a registered model (by name) or any spec (RegNet, AnyNet, ResNet, EffNet) as a Keras functional model.

    Arguments as `keras.applications`; ``pooling`` ("avg" or "max") applies when ``include_top=False``. ``weights``:
    None, "imagenet", a tag of public weights or a local file (`resolve_weights`). Weights converted from another
    library carry what they need (their padding convention, BN epsilon, an input adapter when they were trained on
    another normalization): the model still takes what `preprocess_input` gives.
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
    path, config = resolve_weights(model, weights)
    if config is not None:
        if config.model and isinstance(model, str) and config.model != default_name:
            raise ValueError(f"the weights {path} are for {config.model}, not {default_name}: build "
                             f"build_model({config.model!r}, weights=...) instead")
        if include_top and classes != config.classes:
            raise ValueError(f"With `include_top=True` these weights need `classes={config.classes}` (their "
                             f"classifier). Received: classes={classes}. Use include_top=False and add your own.")
        if classifier_activation not in (None, "softmax"):
            raise ValueError("Only `None` and `softmax` activations are allowed for the `classifier_activation` "
                             f"argument when loading pretrained weights. Received: {classifier_activation!r}")
        default_size = config.input_size
    elif path is not None and include_top and classes != 1000:
        raise ValueError(
            f"If loading `weights` from a file with `include_top=True`, `classes` should be 1000 (the ImageNet head"
            f" the file holds). Received: classes={classes}. Use include_top=False and add your own classifier."
        )

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

    model_ = common.keras_model(
        spec, inputs, img_input, weights_config=config, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name or default_name,
        include_preprocessing=include_preprocessing)
    if config is not None:  # a converted file, by layer name into this model (its own top, pooling, input shape)
        load_by_name(model_, path, unused_ok=() if include_top else ("predictions",))
    elif path is not None:
        model_.load_weights(path)
    return model_


def build_backbone(model, weights=None, input_shape=None, input_tensor=None, levels=None, name=None,
                   include_preprocessing=False):
    """A registered model (by name) or a spec as a multi-scale backbone: a `keras.Model` whose output is a dict of
    feature maps {"P2": ..., "P5": ...} (keras-hub's ``pyramid_outputs`` keys), one per `regnet_tf.feature_info`
    level (``levels``: None for all, or ints (2, 3) or names ("P2", "P3")).

    It is `build_model` (``include_top=False``) cut at the layers `feature_info` names: the same layer names as the
    classifier, so the same weights serve both. ``weights``: None, "imagenet", a tag of public weights or a local
    file, as `build_model`; a Keras ``.weights.h5`` saved from the classifier (or the backbone) of the same model is
    loaded by layer name (`regnet_tf.weights.core.load_by_name`), and a file of another model is an error.
    ``input_shape`` defaults to (None, None, 3); a level of an input of height H has ceil(H / stride) rows.
    docs/BACKBONES.md has the levels of each family and the mapping to timm and keras-hub.
    """
    infos = feature_info(model, levels=levels)  # checks the levels before anything is built
    path, config = resolve_weights(model, weights)  # a tag is fetched and converted here (once), then a local file
    by_name = path is not None and config is None and path.endswith(".weights.h5")  # a plain Keras weights file
    base = build_model(model, include_top=False, weights=None if by_name else path, input_tensor=input_tensor,
                       input_shape=input_shape, name=name, include_preprocessing=include_preprocessing)
    outputs = {info.name: base.get_layer(info.layer).output for info in infos}
    backbone = keras.Model(base.input, outputs, name=name or f"{base.name}_backbone")
    if by_name:  # the file's layers past the deepest level (head conv, classifier) are the model's own: not loaded
        kept = {layer.name for layer in backbone.layers}
        load_by_name(backbone, path, unused_ok=("predictions", *(x.name for x in base.layers if x.name not in kept)))
    return backbone


_DOC = """Builds {paper_name} ({name}, default resolution {resolution} px) as a Keras model.

Source of the configuration: {source}.

Args:
    include_top: whether to include the pooling + dense classifier.
    weights: None (random init, pycls initialization), "imagenet" or a tag of public weights (downloaded once into
        the Keras cache and converted; docs/WEIGHTS.md lists them), or the path of a local weights file.
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


__all__ = ["build_model", "build_backbone", "preprocess_input", "decode_predictions"]
for _name in list_models():
    _entry = get_entry(_name)
    globals()[_entry.factory] = _make_factory(_entry)
    __all__.append(_entry.factory)
