"""Exact analytic complexity (flops, params, activations) by the pycls conventions. No TensorFlow, no forward pass.

Conventions (pycls ``blocks.py`` / RegNet paper section 3):

- flops are multiply-adds: k*k*C_in*C_out*h*w/groups per conv, plus one per output element for a bias
  (SE convs and the classifier only). BN, activations, adds, pooling and the SE multiply cost nothing.
- params are conv/dense weights and biases plus 2 per BN channel (gamma, beta; not the moving statistics),
  i.e. the Keras model's trainable parameter count.
- acts are the output elements of every conv, dense and max-pool layer (not BN, activations, adds, the global
  pool or the input image).
- Output size of a conv or pool with stride s is (h - 1) // s + 1 (symmetric padding k // 2).

The counter walks each spec's ``blocks()``, the same description the Keras builder walks, so each function here
mirrors one builder function in ``regnet_tf/models/blocks.py``.
"""

from __future__ import annotations

import dataclasses

from regnet_tf.models.anynet import AnyNetSpec, block_has_projection, se_width


@dataclasses.dataclass
class Complexity:
    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def as_dict(self):
        return {"flops": self.flops, "params": self.params, "acts": self.acts}


# ---- Layers ---- #


def conv2d_cx(cx: Complexity, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1, bias=False):
    h, w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    cx.flops += k * k * w_in * w_out * h * w // groups + (w_out * h * w if bias else 0)
    cx.params += k * k * w_in * w_out // groups + (w_out if bias else 0)
    cx.acts += w_out * h * w
    cx.h, cx.w = h, w
    return cx


def norm2d_cx(cx: Complexity, w_in: int):
    cx.params += 2 * w_in
    return cx


def pool2d_cx(cx: Complexity, w_in: int, k: int, stride: int = 1):
    cx.h, cx.w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    cx.acts += w_in * cx.h * cx.w
    return cx


def linear_cx(cx: Complexity, w_in: int, w_out: int, bias=True):
    cx.flops += w_in * w_out + (w_out if bias else 0)
    cx.params += w_in * w_out + (w_out if bias else 0)
    cx.acts += w_out
    return cx


def se_cx(cx: Complexity, w_in: int, w_se: int):
    h, w = cx.h, cx.w
    cx.h = cx.w = 1  # global average pool
    conv2d_cx(cx, w_in, w_se, 1, bias=True)
    conv2d_cx(cx, w_se, w_in, 1, bias=True)
    cx.h, cx.w = h, w
    return cx


# ---- Stems, blocks, head ---- #


def stem_cx(cx: Complexity, spec: AnyNetSpec, w_in: int = 3):
    if spec.stem == "simple":
        conv2d_cx(cx, w_in, spec.stem_w, 3, stride=2)
        return norm2d_cx(cx, spec.stem_w)
    conv2d_cx(cx, w_in, spec.stem_w, 7, stride=2)
    norm2d_cx(cx, spec.stem_w)
    return pool2d_cx(cx, spec.stem_w, 3, stride=2)


def bottleneck_cx(cx: Complexity, spec: AnyNetSpec, w_in, w_out, stride, b, g):
    """X, Y, R and Z blocks: 1x1, 3x3 grouped (stride), [SE], 1x1, and the shortcut."""
    if block_has_projection(spec.block, w_in, w_out, stride):
        h, w = cx.h, cx.w
        conv2d_cx(cx, w_in, w_out, 1, stride=stride)
        norm2d_cx(cx, w_out)
        cx.h, cx.w = h, w  # parallel branch
    w_b = int(round(w_out * b))
    conv2d_cx(cx, w_in, w_b, 1)
    norm2d_cx(cx, w_b)
    conv2d_cx(cx, w_b, w_b, 3, stride=stride, groups=w_b // g)
    norm2d_cx(cx, w_b)
    w_se = se_width(w_in, spec.se_ratio)
    if w_se:
        se_cx(cx, w_b, w_se)
    conv2d_cx(cx, w_b, w_out, 1)
    return norm2d_cx(cx, w_out)


def basic_cx(cx: Complexity, spec: AnyNetSpec, w_in, w_out, stride, b, g):
    """V and VR blocks: 3x3 (stride), 3x3, and for VR the shortcut."""
    if block_has_projection(spec.block, w_in, w_out, stride):
        h, w = cx.h, cx.w
        conv2d_cx(cx, w_in, w_out, 1, stride=stride)
        norm2d_cx(cx, w_out)
        cx.h, cx.w = h, w
    conv2d_cx(cx, w_in, w_out, 3, stride=stride)
    norm2d_cx(cx, w_out)
    conv2d_cx(cx, w_out, w_out, 3)
    return norm2d_cx(cx, w_out)


def head_cx(cx: Complexity, spec: AnyNetSpec, classes: int):
    w = spec.ws[-1]
    if spec.head_w:
        conv2d_cx(cx, w, spec.head_w, 1)
        norm2d_cx(cx, spec.head_w)
        w = spec.head_w
    cx.h = cx.w = 1
    if classes:
        linear_cx(cx, w, classes)
    return cx


def anynet_cx(spec: AnyNetSpec, cx: Complexity, classes: int = 1000, in_channels: int = 3) -> Complexity:
    stem_cx(cx, spec, in_channels)
    block_cx = basic_cx if spec.block in ("V", "VR") else bottleneck_cx
    for _, _, w_in, w_out, stride, b, g in spec.blocks():
        block_cx(cx, spec, w_in, w_out, stride, b, g)
    return head_cx(cx, spec, classes)


# ---- ResNet / ResNet-D / ResNet-RS ---- #


def resnet_cx(spec, cx: Complexity, classes: int = 1000, in_channels: int = 3) -> Complexity:
    w_in = in_channels
    for i, w_out in enumerate(spec.stem_widths()):  # v0: one 7x7 s2 conv; v1: 3x3 s2, 3x3, 3x3
        conv2d_cx(cx, w_in, w_out, 7 if spec.stem == "v0" else 3, stride=2 if i == 0 else 1)
        norm2d_cx(cx, w_out)
        w_in = w_out
    if spec.replace_stem_pool:
        conv2d_cx(cx, w_in, spec.stem_w, 3, stride=2)
        norm2d_cx(cx, spec.stem_w)
    else:
        pool2d_cx(cx, w_in, 3, stride=2)
    for _, _, w_in, w_b, w_out, stride, _ in spec.blocks():
        if w_in != w_out or stride != 1:  # projection shortcut (parallel branch)
            h, w = cx.h, cx.w
            if spec.resnetd_shortcut and stride != 1:
                pool2d_cx(cx, w_in, 2, stride=stride)  # 2x2 s2 average pool (acts counted like a max pool)
                conv2d_cx(cx, w_in, w_out, 1)
            else:
                conv2d_cx(cx, w_in, w_out, 1, stride=stride)
            norm2d_cx(cx, w_out)
            cx.h, cx.w = h, w
        conv2d_cx(cx, w_in, w_b, 1)
        norm2d_cx(cx, w_b)
        conv2d_cx(cx, w_b, w_b, 3, stride=stride)
        norm2d_cx(cx, w_b)
        conv2d_cx(cx, w_b, w_out, 1)
        norm2d_cx(cx, w_out)
        if spec.se_ratio:
            se_cx(cx, w_out, max(1, int(w_out * spec.se_ratio)))
    cx.h = cx.w = 1
    if classes:
        linear_cx(cx, spec.out_width, classes)
    return cx


# ---- EfficientNet ---- #


def effnet_cx(spec, cx: Complexity, classes: int = 1000, in_channels: int = 3) -> Complexity:
    conv2d_cx(cx, in_channels, spec.stem_w, 3, stride=2)
    norm2d_cx(cx, spec.stem_w)
    for _, _, w_in, w_out, exp_r, k, stride, _ in spec.blocks():
        w_exp = w_in * exp_r
        if w_exp != w_in:
            conv2d_cx(cx, w_in, w_exp, 1)
            norm2d_cx(cx, w_exp)
        conv2d_cx(cx, w_exp, w_exp, k, stride=stride, groups=w_exp)  # depthwise
        norm2d_cx(cx, w_exp)
        if spec.se_ratio:
            se_cx(cx, w_exp, max(1, int(w_in * spec.se_ratio)))
        conv2d_cx(cx, w_exp, w_out, 1)
        norm2d_cx(cx, w_out)
    conv2d_cx(cx, spec.ws[-1], spec.head_w, 1)
    norm2d_cx(cx, spec.head_w)
    cx.h = cx.w = 1
    if classes:
        linear_cx(cx, spec.head_w, classes)
    return cx


def count(spec, resolution=224, classes: int = 1000, in_channels: int = 3) -> Complexity:
    """Dispatch on the spec family (AnyNetSpec after resolving RegNetSpec, ResNetSpec, EffNetSpec)."""
    from regnet_tf.models.efficientnet import EffNetSpec
    from regnet_tf.models.resnet import ResNetSpec

    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    fn = resnet_cx if isinstance(spec, ResNetSpec) else effnet_cx if isinstance(spec, EffNetSpec) else anynet_cx
    return fn(spec, Complexity(h=h, w=w), classes, in_channels)


def complexity(name_or_spec, resolution=None, classes: int = 1000, in_channels: int = 3) -> dict:
    """flops (multiply-adds), params and acts of a registered model name or a spec, for one image.

    ``resolution`` defaults to the model's registered resolution (224 for a spec). ``classes=0`` counts the
    network without the classifier.
    """
    from regnet_tf.models.registry import get_entry, resolve

    if resolution is None:
        resolution = get_entry(name_or_spec).resolution if isinstance(name_or_spec, str) else 224
    return count(resolve(name_or_spec), resolution, classes, in_channels).as_dict()
