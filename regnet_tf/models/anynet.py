"""AnyNet: the per-stage network description, its Keras blocks, their complexity and its scaling rule.

An `AnyNetSpec` says everything about a network's architecture: stem, per-stage depths ``ds``, widths
``ws``, strides ``ss``, bottleneck multipliers ``bs`` and group widths ``gs``, the block type, SE ratio,
head and activation (RegNet paper, section 3.2 and figure 3). ``spec.features(x)`` builds it in Keras
(`regnet_tf.build_model` adds the classifier) and ``spec.features_cx(cx)`` counts the same layers for
`regnet_tf.complexity`: each Keras function below has its ``_cx`` twin right under it, and a test compares the
count with the built model's layers for every registered model. Importing this module imports no TensorFlow
(the Keras code reaches keras through lazy proxies).

Block types (paper notation, appendix D of the RegNet paper):

- ``X``: residual bottleneck with a grouped 3x3 conv (1x1, 3x3 grouped with the stride, 1x1).
- ``Y``: ``X`` plus squeeze-excitation after the 3x3 (``se_ratio`` > 0, 0.25 for RegNetY).
- ``Z``: inverted bottleneck (``b`` = 4), SiLU, SE, no projection shortcut and no activation after the add
  ("Fast and Accurate Model Scaling", figure 3).
- ``R``: ``X`` without groups (one group over the whole bottleneck width).
- ``V``: vanilla block, two 3x3 convs (as pycls's ``VanillaBlock``), no residual.
- ``VR``: ``V`` plus a residual connection (pycls's ``ResBasicBlock``).

Layers are named after pycls (``stem_conv``, ``s2_b1_a``, ``s2_b1_b_bn``, ``s2_b1_se_reduce``, ``s2_b1_proj``, ...).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

from regnet_tf import scaling
from regnet_tf._lazy import LazyModule
from regnet_tf.counter import conv_bn_cx, pool2d_cx, se_cx
from regnet_tf.models.registry import Spec
from regnet_tf.padding import check_padding

# Lazy only to keep TensorFlow out of this pure-Python module (specs, counts and scaling load without it): these
# import keras on first use. Not for import order: layers and common import nothing that imports a family.
keras = LazyModule("keras")
layers = LazyModule("regnet_tf.layers")
common = LazyModule("regnet_tf.models.common")

BLOCK_TYPES = ("X", "Y", "Z", "R", "V", "VR")

STEM_TYPES = ("simple", "res")
ACTIVATIONS = ("relu", "silu")


def adjust_block_compatibility(ws, bs, gs):
    """Make widths ``ws`` compatible with bottleneck multipliers ``bs`` and group widths ``gs``.

    RegNet paper appendix D, as pycls does it: the group width is clamped to the bottleneck width, and the
    bottleneck width is rounded (half to even, Python ``round``) to a multiple of the group width (of
    lcm(g, b) for integer b > 1); the stage width follows from the bottleneck width.
    """
    assert len(ws) == len(bs) == len(gs)
    if not all(b < 1 or b % 1 == 0 for b in bs):
        raise ValueError(f"bottleneck multipliers must be < 1 or whole numbers, got {list(bs)}")
    ws_out, gs_out = [], []
    for w, b, g in zip(ws, bs, gs):
        v = int(max(1, w * b))
        g = int(min(g, v))
        m = math.lcm(g, int(b)) if b > 1 else g
        v = max(m, int(round(v / m) * m))
        w = int(v / b)
        assert w * b % g == 0, (w, b, g)
        ws_out.append(w)
        gs_out.append(g)
    return ws_out, list(bs), gs_out


@dataclasses.dataclass(frozen=True)
class AnyNetSpec(Spec, kind="anynet"):
    """A network as explicit per-stage lists (pycls ``ANYNET`` config, channels in the paper's notation)."""

    ds: Tuple[int, ...]  # depth (number of blocks) per stage
    ws: Tuple[int, ...]  # output width per stage
    ss: Tuple[int, ...] = ()  # stride of the first block of each stage (default 2 everywhere)
    bs: Tuple[float, ...] = ()  # bottleneck multiplier per stage: w_b = round(w * b) (default 1.0)
    gs: Tuple[int, ...] = ()  # group width per stage (default: one group, i.e. g = w_b)
    block: str = "X"
    se_ratio: float = 0.0  # SE width = round(se_ratio * block input width); 0 disables SE
    stem: str = "simple"  # "simple": 3x3 s2 conv; "res": 7x7 s2 conv + 3x3 s2 max pool
    stem_w: int = 32
    head_w: int = 0  # optional 1x1 conv + BN + act before pooling (RegNetZ); 0 disables it
    head_act: bool = False  # with head_w = 0: the activation after the last stage (timm's RegNetZ-4GF, see regnet.py)
    activation: str = "relu"
    dropout: float = 0.0  # dropout before the classifier
    zero_init_last_bn: bool = False  # zero gamma of each block's last BN (pycls BN.ZERO_INIT_FINAL_GAMMA)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9  # Keras convention (= PyTorch momentum 0.1)
    padding: str = "symmetric"  # strided convs and pools: "symmetric" (pycls, timm) or "tf_same" (regnet_tf.layers)

    def __post_init__(self):
        n = len(self.ds)
        if n == 0 or len(self.ws) != n:
            raise ValueError(f"ds and ws need one entry per stage, got ds={self.ds}, ws={self.ws}")
        set_ = lambda k, v: object.__setattr__(self, k, tuple(v))  # noqa: E731  (frozen dataclass)
        set_("ds", (int(d) for d in self.ds))
        set_("ws", (int(w) for w in self.ws))
        set_("ss", self.ss or (2,) * n)
        set_("bs", self.bs or (1.0,) * n)
        if not self.gs or self.block == "R":  # R: one group over the whole bottleneck width
            set_("gs", (max(1, int(round(w * b))) for w, b in zip(self.ws, self.bs)))
        else:
            set_("gs", (int(g) for g in self.gs))
        for key in ("ss", "bs", "gs"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key} needs {n} entries (one per stage), got {getattr(self, key)}")
        if self.block not in BLOCK_TYPES:
            raise ValueError(f"unknown block type {self.block!r}; valid: {', '.join(BLOCK_TYPES)}")
        if self.stem not in STEM_TYPES:
            raise ValueError(f"unknown stem {self.stem!r}; valid: {', '.join(STEM_TYPES)}")
        check_padding(self.padding)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if self.block == "Y" and self.se_ratio <= 0:
            raise ValueError("block 'Y' is the X block with squeeze-excitation: set se_ratio > 0 (0.25)")
        if any(d < 1 for d in self.ds) or any(w < 1 for w in self.ws):
            raise ValueError(f"depths and widths must be positive, got ds={self.ds}, ws={self.ws}")
        if self.block in ("X", "Y", "Z", "R"):
            for i, (w, b, g) in enumerate(zip(self.ws, self.bs, self.gs)):
                w_b = int(round(w * b))
                if w_b % g:
                    raise ValueError(
                        f"stage {i + 1}: bottleneck width {w_b} (= {w} x {b}) is not divisible by the group width"
                        f" {g}; run adjust_block_compatibility(ws, bs, gs) first"
                    )

    @property
    def num_stages(self) -> int:
        return len(self.ds)

    @property
    def out_width(self) -> int:
        """Width of the features that reach the classifier."""
        return self.head_w or self.ws[-1]

    def blocks(self):
        """Yields (stage, block, w_in, w_out, stride, b, g) for every block, in order (1-based indices)."""
        w_in = self.stem_w
        for i, (d, w, s, b, g) in enumerate(zip(self.ds, self.ws, self.ss, self.bs, self.gs)):
            for j in range(d):
                yield i + 1, j + 1, w_in, w, (s if j == 0 else 1), b, g
                w_in = w

    def features(self, x):
        """Keras: stem, blocks and the optional head conv (the network up to the global pool)."""
        x = stem(x, self)
        block = basic_block if self.block in ("V", "VR") else bottleneck_block
        for i, j, _, w_out, stride, b, g in self.blocks():
            x = block(x, self, w_out, stride, b, g, f"s{i}_b{j}")
        return head(x, self)

    def feature_layers(self):
        """[(Keras layer name, cumulative stride, channels)] of the stem output and of each stage output, in network
        order (`regnet_tf.zoo.feature_info` makes the pyramid levels of them). The head conv / head activation are
        not among them. A block's last layer: ``_out`` (its activation), or for Z ``_add`` (identity shortcut) or
        ``_c_bn`` (no shortcut: no add, no activation)."""
        stride = 2 if self.stem == "simple" else 4
        out = [("stem_conv_act" if self.stem == "simple" else "stem_pool", stride, self.stem_w)]
        blocks = list(self.blocks())
        for n, (i, j, w_in, w_out, s, _, _) in enumerate(blocks):
            stride *= s
            if n + 1 < len(blocks) and blocks[n + 1][0] == i:
                continue  # not the stage's last block
            if self.block != "Z":
                last = "out"
            else:
                last = "c_bn" if block_has_projection(self.block, w_in, w_out, s) is None else "add"
            out.append((f"s{i}_b{j}_{last}", stride, w_out))
        return out

    def features_cx(self, cx, in_channels: int = 3):
        """The complexity of `features` (a `regnet_tf.counter.Complexity` at the input size, updated)."""
        stem_cx(cx, self, in_channels)
        block_cx = basic_cx if self.block in ("V", "VR") else bottleneck_cx
        for _, _, w_in, w_out, stride, b, g in self.blocks():
            block_cx(cx, self, w_in, w_out, stride, b, g)
        return head_cx(cx, self)

    def scaled_by(self, kd: float, kw: float, kg: float) -> "AnyNetSpec":
        """Depths x kd, widths x kw, group widths x kg with pycls's rounding, then the compatibility adjustment."""
        ws = [scaling.round_width(w, kw) for w in self.ws]
        gs = [scaling.round_group(g, kg) for g in self.gs]
        if self.block == "R":
            gs = [max(1, int(w * b)) for w, b in zip(ws, self.bs)]
        ws, bs, gs = adjust_block_compatibility(ws, list(self.bs), gs)
        ds = tuple(scaling.round_depth(d, kd) for d in self.ds)
        return self.replace(ds=ds, ws=tuple(ws), bs=tuple(bs), gs=tuple(gs))

    def describe(self) -> str:
        return "\n".join(scaling.stage_line(i, d, w, f"b={b:g} g={g}")
                         for i, (d, w, b, g) in enumerate(zip(self.ds, self.ws, self.bs, self.gs)))


def se_width(w_in: int, se_ratio: float) -> int:
    """SE width: round(se_ratio * block input width), as pycls and timm (not of the bottleneck width)."""
    return int(round(w_in * se_ratio))


def block_has_projection(block: str, w_in: int, w_out: int, stride: int) -> Optional[bool]:
    """True: 1x1 projection shortcut; False: identity shortcut; None: no shortcut at all."""
    if block == "V":
        return None
    same = w_in == w_out and stride == 1
    if block == "Z":
        return False if same else None
    return not same


# ---- Keras blocks, each followed by its complexity ---- #


def stem(x, spec: AnyNetSpec):
    """simple: 3x3 s2 conv, BN, act (RegNet). res: 7x7 s2 conv, BN, act, 3x3 s2 max pool (ResNet)."""
    if spec.stem == "simple":
        return common.conv_bn_act(x, spec, spec.stem_w, 3, "stem_conv", stride=2)
    x = common.conv_bn_act(x, spec, spec.stem_w, 7, "stem_conv", stride=2)
    return layers.MaxPool2D(3, 2, padding=spec.padding, name="stem_pool")(x)


def stem_cx(cx, spec: AnyNetSpec, w_in: int = 3):
    if spec.stem == "simple":
        return conv_bn_cx(cx, w_in, spec.stem_w, 3, stride=2)
    conv_bn_cx(cx, w_in, spec.stem_w, 7, stride=2)
    return pool2d_cx(cx, spec.stem_w, 3, stride=2)


def bottleneck_block(x, spec: AnyNetSpec, w_out, stride, b, g, name):
    """X / Y / R / Z block.

    X: 1x1 -> 3x3 grouped (stride) -> 1x1, BN after each, act after the first two and after the add;
    projection shortcut (1x1 stride s + BN) when the shape changes. Y: X + SE after the 3x3. R: X with one
    group. Z: b = 4 (inverted), SE, no projection (identity only when shapes match), no act after the add.
    """
    w_in = x.shape[-1]
    w_b = int(round(w_out * b))
    f = common.conv_bn_act(x, spec, w_b, 1, f"{name}_a")
    f = common.conv_bn_act(f, spec, w_b, 3, f"{name}_b", stride=stride, groups=w_b // g)
    w_se = se_width(w_in, spec.se_ratio)
    if w_se:
        f = common.squeeze_excite(f, spec, w_se, f"{name}_se")
    f = common.conv_bn_act(f, spec, w_out, 1, f"{name}_c", activation=False, zero_gamma=spec.zero_init_last_bn)
    return residual(x, f, spec, w_out, stride, name)


def bottleneck_cx(cx, spec: AnyNetSpec, w_in, w_out, stride, b, g):
    residual_cx(cx, spec, w_in, w_out, stride)
    w_b = int(round(w_out * b))
    conv_bn_cx(cx, w_in, w_b, 1)
    conv_bn_cx(cx, w_b, w_b, 3, stride=stride, groups=w_b // g)
    w_se = se_width(w_in, spec.se_ratio)
    if w_se:
        se_cx(cx, w_b, w_se)
    return conv_bn_cx(cx, w_b, w_out, 1)


def basic_block(x, spec: AnyNetSpec, w_out, stride, b, g, name):
    """V block: 3x3 (stride) -> BN -> act -> 3x3 -> BN -> act. VR: the same with a residual, act after the add."""
    f = common.conv_bn_act(x, spec, w_out, 3, f"{name}_a", stride=stride)
    f = common.conv_bn_act(f, spec, w_out, 3, f"{name}_b", activation=False, zero_gamma=spec.zero_init_last_bn)
    return residual(x, f, spec, w_out, stride, name)


def basic_cx(cx, spec: AnyNetSpec, w_in, w_out, stride, b, g):
    residual_cx(cx, spec, w_in, w_out, stride)
    conv_bn_cx(cx, w_in, w_out, 3, stride=stride)
    return conv_bn_cx(cx, w_out, w_out, 3)


def residual(x, f, spec: AnyNetSpec, w_out, stride, name):
    """Shortcut (projection, identity or none, see `block_has_projection`), add, and the activation (not for Z)."""
    shortcut = block_has_projection(spec.block, x.shape[-1], w_out, stride)
    if shortcut is not None:
        if shortcut:  # projection
            x = common.conv_bn_act(x, spec, w_out, 1, f"{name}_proj", stride=stride, activation=False)
        f = keras.layers.Add(name=f"{name}_add")([x, f])
    if spec.block == "Z":  # linear output
        return f
    return common.act(f, spec, f"{name}_out")


def residual_cx(cx, spec: AnyNetSpec, w_in, w_out, stride):
    """The projection shortcut, a branch parallel to the block: counted at the block input, size left unchanged."""
    if block_has_projection(spec.block, w_in, w_out, stride):
        h, w = cx.h, cx.w
        conv_bn_cx(cx, w_in, w_out, 1, stride=stride)
        cx.h, cx.w = h, w
    return cx


def head(x, spec: AnyNetSpec):
    """Optional 1x1 conv + BN + act to ``head_w`` channels (RegNetZ), or only the activation (``head_act``); part of
    the features."""
    if spec.head_w:
        return common.conv_bn_act(x, spec, spec.head_w, 1, "head_conv")
    return common.act(x, spec, "head_act") if spec.head_act else x


def head_cx(cx, spec: AnyNetSpec):  # an activation alone costs nothing
    return conv_bn_cx(cx, spec.ws[-1], spec.head_w, 1) if spec.head_w else cx
