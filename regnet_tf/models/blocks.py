"""Stems, blocks and head of AnyNet/RegNet as Keras functional code (channels-last).

Each function takes a Keras tensor and returns one, naming its layers after pycls (``s2_b1_a``, ``s2_b1_b_bn``,
``s2_b1_se_reduce``, ``s2_b1_proj``, ...), so a weight converter can map names one to one. Every function here
has a twin in ``regnet_tf/counter.py`` that counts the same layers.
"""

from __future__ import annotations

import keras

from regnet_tf.layers import DENSE_INIT, BatchNormalization, Conv2D, DepthwiseConv2D, MaxPool2D, se_bias_init
from regnet_tf.models.anynet import AnyNetSpec, block_has_projection, se_width
from regnet_tf.models.efficientnet import EffNetSpec
from regnet_tf.models.resnet import ResNetSpec


# ---- Shared pieces (any spec with activation, bn_eps, bn_momentum) ---- #


def bn(x, spec: AnyNetSpec, name: str, zero_gamma: bool = False):
    return BatchNormalization(
        momentum=spec.bn_momentum, epsilon=spec.bn_eps, gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )(x)


def act(x, spec: AnyNetSpec, name: str, activation=None):
    return keras.layers.Activation(activation or spec.activation, name=name)(x)


def conv_bn_act(x, spec: AnyNetSpec, w_out, k, name, stride=1, groups=1, activation=True, zero_gamma=False):
    """conv (no bias) -> BN [-> act]; layers named ``name``, ``name_bn``, ``name_act``."""
    x = Conv2D(w_out, k, strides=stride, groups=groups, name=name)(x)
    x = bn(x, spec, f"{name}_bn", zero_gamma)
    return act(x, spec, f"{name}_act") if activation else x


# ---- AnyNet / RegNet ---- #


def stem(x, spec: AnyNetSpec):
    """simple: 3x3 s2 conv, BN, act (RegNet). res: 7x7 s2 conv, BN, act, 3x3 s2 max pool (ResNet)."""
    if spec.stem == "simple":
        return conv_bn_act(x, spec, spec.stem_w, 3, "stem_conv", stride=2)
    x = conv_bn_act(x, spec, spec.stem_w, 7, "stem_conv", stride=2)
    return MaxPool2D(3, 2, name="stem_pool")(x)


def squeeze_excite(x, spec: AnyNetSpec, w_se: int, name: str, activation=None):
    """GAP -> 1x1 conv (w -> w_se, bias) -> act -> 1x1 conv (w_se -> w, bias) -> sigmoid -> x * gate."""
    w = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = Conv2D(w_se, 1, use_bias=True, bias_initializer=se_bias_init(w), name=f"{name}_reduce")(s)
    s = act(s, spec, f"{name}_act", activation)
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
    """Optional 1x1 conv + BN + act to ``head_w`` channels (RegNetZ, EfficientNet); part of the features."""
    return conv_bn_act(x, spec, spec.head_w, 1, "head_conv") if spec.head_w else x


# ---- ResNet / ResNet-D / ResNet-RS ---- #


def resnet_stem(x, spec: ResNetSpec):
    """v0: 7x7 s2 conv. v1 (ResNet-D): 3x3 s2, 3x3, 3x3 convs. Then a 3x3 s2 max pool, or a 3x3 s2 conv (RS)."""
    k = 7 if spec.stem == "v0" else 3
    for i, w in enumerate(spec.stem_widths()):
        x = conv_bn_act(x, spec, w, k, "stem_conv" if spec.stem == "v0" else f"stem_conv{i + 1}",
                        stride=2 if i == 0 else 1)
    if spec.replace_stem_pool:
        return conv_bn_act(x, spec, spec.stem_w, 3, "stem_pool_conv", stride=2)
    return MaxPool2D(3, 2, name="stem_pool")(x)


def resnet_block(x, spec: ResNetSpec, w_b, w_out, stride, drop_path, name):
    """1x1 -> 3x3 (stride) -> 1x1 (BN, zero gamma) -> [SE, ReLU inside] -> [stochastic depth] -> add -> act.

    Projection shortcut when the shape changes: 1x1 conv (stride) + BN, or with ``resnetd_shortcut`` on strided
    blocks a 2x2 s2 average pool, then 1x1 conv + BN (ResNet-D).
    """
    w_in = x.shape[-1]
    f = conv_bn_act(x, spec, w_b, 1, f"{name}_a")
    f = conv_bn_act(f, spec, w_b, 3, f"{name}_b", stride=stride)
    f = conv_bn_act(f, spec, w_out, 1, f"{name}_c", activation=False, zero_gamma=spec.zero_init_last_bn)
    if spec.se_ratio:  # the TF references keep ReLU inside SE even when the block uses swish
        f = squeeze_excite(f, spec, max(1, int(w_out * spec.se_ratio)), f"{name}_se", activation="relu")
    if drop_path:  # stochastic depth: drop the whole residual branch per sample, only in training
        f = keras.layers.Dropout(drop_path, noise_shape=(None, 1, 1, 1), name=f"{name}_drop_path")(f)
    if w_in != w_out or stride != 1:
        if spec.resnetd_shortcut and stride != 1:
            x = keras.layers.AveragePooling2D(2, stride, padding="same", name=f"{name}_proj_pool")(x)
            x = conv_bn_act(x, spec, w_out, 1, f"{name}_proj", activation=False)
        else:
            x = conv_bn_act(x, spec, w_out, 1, f"{name}_proj", stride=stride, activation=False)
    x = keras.layers.Add(name=f"{name}_add")([x, f])
    return act(x, spec, f"{name}_out")


# ---- EfficientNet ---- #


def mbconv_block(x, spec: EffNetSpec, w_out, exp_r, k, stride, drop_path, name):
    """MBConv: [1x1 expand] -> kxk depthwise (stride) -> SE -> 1x1 project (no act) -> [drop connect] -> [add]."""
    w_in = x.shape[-1]
    f = conv_bn_act(x, spec, w_in * exp_r, 1, f"{name}_expand") if exp_r != 1 else x
    f = DepthwiseConv2D(k, strides=stride, name=f"{name}_dw")(f)
    f = act(bn(f, spec, f"{name}_dw_bn"), spec, f"{name}_dw_act")
    if spec.se_ratio:
        f = squeeze_excite(f, spec, max(1, int(w_in * spec.se_ratio)), f"{name}_se")
    f = conv_bn_act(f, spec, w_out, 1, f"{name}_project", activation=False)
    if stride != 1 or w_in != w_out:
        return f
    if drop_path:
        f = keras.layers.Dropout(drop_path, noise_shape=(None, 1, 1, 1), name=f"{name}_drop_path")(f)
    return keras.layers.Add(name=f"{name}_add")([x, f])


# ---- Whole networks ---- #


def features(x, spec):
    """Stem, body and (optional) head conv of any spec: the network up to the global pool."""
    if isinstance(spec, ResNetSpec):
        x = resnet_stem(x, spec)
        for i, j, _, w_b, w_out, stride, dp in spec.blocks():
            x = resnet_block(x, spec, w_b, w_out, stride, dp, f"s{i}_b{j}")
        return x
    if isinstance(spec, EffNetSpec):
        x = conv_bn_act(x, spec, spec.stem_w, 3, "stem_conv", stride=2)
        for i, j, _, w_out, exp_r, k, stride, dp in spec.blocks():
            x = mbconv_block(x, spec, w_out, exp_r, k, stride, dp, f"s{i}_b{j}")
        return head_conv(x, spec)
    return head_conv(body(stem(x, spec), spec), spec)


def classifier(x, spec: AnyNetSpec, classes: int, activation):
    """GAP -> [dropout] -> dense (N(0, 0.01) init, zero bias)."""
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if spec.dropout:
        x = keras.layers.Dropout(spec.dropout, name="top_dropout")(x)
    # Under a mixed-precision policy the classifier computes in float32 (Keras's mixed-precision advice).
    dtype = "float32" if keras.mixed_precision.global_policy().name.startswith("mixed") else None
    return keras.layers.Dense(classes, activation=activation, kernel_initializer=DENSE_INIT, dtype=dtype,
                              name="predictions")(x)
