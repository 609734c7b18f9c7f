"""Exact analytic complexity (flops, params, activations) by the pycls conventions. No TensorFlow, no forward pass.

Conventions (pycls ``blocks.py`` / RegNet paper section 3):

- flops are multiply-adds: k*k*C_in*C_out*h*w/groups per conv, plus one per output element for a bias
  (SE convs and the classifier only). BN, activations, adds, pooling and the SE multiply cost nothing.
- params are conv/dense weights and biases plus 2 per BN channel (gamma, beta; not the moving statistics),
  i.e. the Keras model's trainable parameter count.
- acts are the output elements of every conv, dense and max-pool layer (and of ResNet-D's shortcut average pool;
  not BN, activations, adds, the global pool or the input image).
- Output size of a conv or pool with stride s is (h - 1) // s + 1 (symmetric padding k // 2).

Here: the per-layer counts and the whole-network count of a spec (`regnet_tf.zoo.complexity` takes a model name).
Each family module counts its own stems and blocks with these functions, right next to the Keras code they count
(``spec.features_cx`` mirrors ``spec.features``), and tests/test_models.py checks every registered model against its
built Keras layers.
"""

from __future__ import annotations

import dataclasses


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


def conv_bn_cx(cx: Complexity, w_in: int, w_out: int, k: int, stride: int = 1, groups: int = 1):
    """`regnet_tf.models.common.conv_bn_act`: conv (no bias) + BN (the activation costs nothing)."""
    return norm2d_cx(conv2d_cx(cx, w_in, w_out, k, stride, groups), w_out)


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
    """`regnet_tf.models.common.squeeze_excite`: two 1x1 convs with bias on the pooled 1x1 map."""
    h, w = cx.h, cx.w
    cx.h = cx.w = 1  # global average pool
    conv2d_cx(cx, w_in, w_se, 1, bias=True)
    conv2d_cx(cx, w_se, w_in, 1, bias=True)
    cx.h, cx.w = h, w
    return cx


def classifier_cx(cx: Complexity, w_in: int, classes: int):
    """`regnet_tf.models.common.classifier`: global average pool, dense (``classes=0``: nothing)."""
    cx.h = cx.w = 1
    return linear_cx(cx, w_in, classes) if classes else cx


# ---- Networks ---- #


def count(spec, resolution=224, classes: int = 1000, in_channels: int = 3) -> Complexity:
    """Complexity of a spec's features (``spec.features_cx``) and classifier at ``resolution`` (int or (h, w))."""
    spec = spec.resolved()
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    cx = spec.features_cx(Complexity(h=h, w=w), in_channels)
    return classifier_cx(cx, spec.out_width, classes)
