"""Keras pieces every family uses: BN, activation, conv-BN-act, squeeze-excitation, stochastic depth, classifier;
and `keras_model`, the one builder of a Keras model from a spec (the factories and the weight converters use it).

Layers are named after pycls (``name``, ``name_bn``, ``name_act``, ``name_se_reduce``, ...) so weight converters
map names one to one. Each piece's complexity is in `regnet_tf.counter` (``conv2d_cx`` + ``norm2d_cx``, ``se_cx``,
``classifier_cx``). A spec here is any spec with ``activation``, ``bn_eps``, ``bn_momentum`` and ``padding``. This
module imports Keras; the family modules reach it through a lazy proxy, so they stay importable without TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np

from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.layers import DENSE_INIT, BatchNormalization, Conv2D, se_bias_init


def bn(x, spec, name: str, zero_gamma: bool = False):
    return BatchNormalization(
        momentum=spec.bn_momentum, epsilon=spec.bn_eps, gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )(x)


def act(x, spec, name: str, activation=None):
    return keras.layers.Activation(activation or spec.activation, name=name)(x)


def conv_bn_act(x, spec, w_out, k, name, stride=1, groups=1, activation=True, zero_gamma=False):
    """conv (no bias) -> BN [-> act]; layers named ``name``, ``name_bn``, ``name_act``."""
    x = Conv2D(w_out, k, strides=stride, groups=groups, padding=spec.padding, name=name)(x)
    x = bn(x, spec, f"{name}_bn", zero_gamma)
    return act(x, spec, f"{name}_act") if activation else x


def squeeze_excite(x, spec, w_se: int, name: str, activation=None):
    """GAP -> 1x1 conv (w -> w_se, bias) -> act -> 1x1 conv (w_se -> w, bias) -> sigmoid -> x * gate."""
    w = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = Conv2D(w_se, 1, use_bias=True, bias_initializer=se_bias_init(w), padding=spec.padding, name=f"{name}_reduce")(s)
    s = act(s, spec, f"{name}_act", activation)
    s = Conv2D(w, 1, use_bias=True, bias_initializer=se_bias_init(w_se), padding=spec.padding, name=f"{name}_expand")(s)
    s = keras.layers.Activation("sigmoid", name=f"{name}_gate")(s)
    return keras.layers.Multiply(name=f"{name}_scale")([x, s])


def drop_path(x, rate: float, name: str):
    """Stochastic depth: drops the whole residual branch per sample (rate ``rate``), only in training."""
    return keras.layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop_path")(x)


def classifier(x, spec, classes: int, activation):
    """GAP -> [dropout] -> dense (N(0, 0.01) init, zero bias)."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout, name="top_dropout")(x)
    # Under a mixed-precision policy the classifier computes in float32 (Keras's mixed-precision advice).
    dtype = "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None
    return keras.layers.Dense(classes, activation=activation, kernel_initializer=DENSE_INIT, dtype=dtype,
                              name="predictions")(x)


def keras_model(spec, inputs, x=None, *, weights_config=None, include_top=True, pooling=None, classes=1000,
                classifier_activation="softmax", name="model", include_preprocessing=False):
    """The one place a Keras model is assembled (`regnet_tf.build_model` and the weight converters both call it):
    a resolved spec on input ``x`` (default ``inputs``) -> [normalization of RGB 0-255 with the ImageNet mean/std]
    -> [input adapter] -> ``spec.features`` -> classifier, or a global pool, or the feature map.

    ``weights_config``: the `regnet_tf.weights.WeightsConfig` of the weights the model is built for, or None. Its
    spec options (``padding``, ``bn_eps``) replace the spec's, and weights trained on another input normalization
    than the ImageNet mean/std get an ``input_adapter`` layer, ``x * scale + offset`` per RGB channel, that computes
    their input from ours: the model's input stays the same.
    """
    x = inputs if x is None else x
    if weights_config is not None:
        spec = spec.replace(**weights_config.spec)
    if include_preprocessing:
        mean, std = [255.0 * m for m in MEAN_RGB], [255.0 * s for s in STD_RGB]
        x = keras.layers.Normalization(mean=mean, variance=[s * s for s in std], name="preprocess")(x)
    adapter = weights_config.input_adapter() if weights_config is not None else None
    if adapter is not None:
        scale, offset = adapter
        # float64 arrays: Keras turns lists into float32 constants, which a float64 model would see rounded
        x = keras.layers.Rescaling(scale=np.asarray(scale, "float64"), offset=np.asarray(offset, "float64"),
                                   name="input_adapter")(x)
    x = spec.features(x)
    if include_top:
        x = classifier(x, spec, classes, classifier_activation)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)
