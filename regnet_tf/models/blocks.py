"""Stems, blocks and head of AnyNet/RegNet as Keras functional code (channels-last).

Each function takes a Keras tensor and returns one, naming its layers after pycls (``s2_b1_a``, ``s2_b1_b_bn``,
``s2_b1_se_reduce``, ``s2_b1_proj``, ...), so a weight converter can map names one to one. Every function here
has a twin in ``regnet_tf/counter.py`` that counts the same layers.
"""

from __future__ import annotations

import keras

from regnet_tf.layers import DENSE_INIT, Conv2D, MaxPool2D, se_bias_init
from regnet_tf.models.anynet import AnyNetSpec, block_has_projection, se_width


def bn(x, spec: AnyNetSpec, name: str, zero_gamma: bool = False):
    return keras.layers.BatchNormalization(
        momentum=spec.bn_momentum, epsilon=spec.bn_eps, gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )(x)


def act(x, spec: AnyNetSpec, name: str):
    return keras.layers.Activation(spec.activation, name=name)(x)


def conv_bn_act(x, spec: AnyNetSpec, w_out, k, name, stride=1, groups=1, activation=True, zero_gamma=False):
    """conv (no bias) -> BN [-> act]; layers named ``name``, ``name_bn``, ``name_act``."""
    x = Conv2D(w_out, k, strides=stride, groups=groups, name=name)(x)
    x = bn(x, spec, f"{name}_bn", zero_gamma)
    return act(x, spec, f"{name}_act") if activation else x


def stem(x, spec: AnyNetSpec):
    """simple: 3x3 s2 conv, BN, act (RegNet). res: 7x7 s2 conv, BN, act, 3x3 s2 max pool (ResNet)."""
    if spec.stem == "simple":
        return conv_bn_act(x, spec, spec.stem_w, 3, "stem_conv", stride=2)
    x = conv_bn_act(x, spec, spec.stem_w, 7, "stem_conv", stride=2)
    return MaxPool2D(3, 2, name="stem_pool")(x)


def squeeze_excite(x, spec: AnyNetSpec, w_se: int, name: str):
    """GAP -> 1x1 conv (w -> w_se, bias) -> act -> 1x1 conv (w_se -> w, bias) -> sigmoid -> x * gate."""
    w = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = Conv2D(w_se, 1, use_bias=True, bias_initializer=se_bias_init(w), name=f"{name}_reduce")(s)
    s = act(s, spec, f"{name}_act")
    s = Conv2D(w, 1, use_bias=True, bias_initializer=se_bias_init(w_se), name=f"{name}_expand")(s)
    s = keras.layers.Activation("sigmoid", name=f"{name}_gate")(s)
    return keras.layers.Multiply(name=f"{name}_scale")([x, s])


def bottleneck_block(x, spec: AnyNetSpec, w_out, stride, b, g, name):
    """X / Y / R / Z block.

    X: 1x1 -> 3x3 grouped (stride) -> 1x1, BN after each, act after the first two and after the add;
    projection shortcut (1x1 stride s + BN) when the shape changes. Y: X + SE after the 3x3. R: X with one
    group. Z: b = 4 (inverted), SE, no projection (identity only when shapes match), no act after the add.
    """
    w_in = x.shape[-1]
    w_b = int(round(w_out * b))
    shortcut = block_has_projection(spec.block, w_in, w_out, stride)
    f = conv_bn_act(x, spec, w_b, 1, f"{name}_a")
    f = conv_bn_act(f, spec, w_b, 3, f"{name}_b", stride=stride, groups=w_b // g)
    w_se = se_width(w_in, spec.se_ratio)
    if w_se:
        f = squeeze_excite(f, spec, w_se, f"{name}_se")
    f = conv_bn_act(f, spec, w_out, 1, f"{name}_c", activation=False, zero_gamma=spec.zero_init_last_bn)
    return _residual(x, f, spec, shortcut, w_out, stride, name)


def basic_block(x, spec: AnyNetSpec, w_out, stride, b, g, name):
    """V block: 3x3 (stride) -> BN -> act -> 3x3 -> BN -> act. VR: the same with a residual, act after the add."""
    w_in = x.shape[-1]
    shortcut = block_has_projection(spec.block, w_in, w_out, stride)
    f = conv_bn_act(x, spec, w_out, 3, f"{name}_a", stride=stride)
    f = conv_bn_act(f, spec, w_out, 3, f"{name}_b", activation=False, zero_gamma=spec.zero_init_last_bn)
    return _residual(x, f, spec, shortcut, w_out, stride, name)


def _residual(x, f, spec: AnyNetSpec, shortcut, w_out, stride, name):
    if shortcut is not None:
        if shortcut:  # projection
            x = conv_bn_act(x, spec, w_out, 1, f"{name}_proj", stride=stride, activation=False)
        f = keras.layers.Add(name=f"{name}_add")([x, f])
    if spec.block == "Z":  # linear output
        return f
    return act(f, spec, f"{name}_out")


def body(x, spec: AnyNetSpec):
    block_fn = basic_block if spec.block in ("V", "VR") else bottleneck_block
    for i, j, _, w_out, stride, b, g in spec.blocks():
        x = block_fn(x, spec, w_out, stride, b, g, f"s{i}_b{j}")
    return x


def head_conv(x, spec: AnyNetSpec):
    """Optional 1x1 conv + BN + act to ``head_w`` channels (RegNetZ); part of the features."""
    return conv_bn_act(x, spec, spec.head_w, 1, "head_conv") if spec.head_w else x


def classifier(x, spec: AnyNetSpec, classes: int, activation):
    """GAP -> [dropout] -> dense (N(0, 0.01) init, zero bias)."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout, name="top_dropout")(x)
    # Under a mixed-precision policy the classifier computes in float32 (Keras's mixed-precision advice).
    dtype = "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None
    return keras.layers.Dense(classes, activation=activation, kernel_initializer=DENSE_INIT, dtype=dtype,
                              name="predictions")(x)
