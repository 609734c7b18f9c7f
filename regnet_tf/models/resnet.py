"""ResNet, ResNet-D and ResNet-RS ("Revisiting ResNets", Bello et al. 2021): spec, block allocations and zoo.

One `ResNetSpec` covers every option the paper's studies toggle: depth (block allocation, Table 11 and appendix E),
width multiplier (Table 12), stem (``v0``: 7x7 s2 + 3x3 s2 max pool; ``v1``: ResNet-D's three 3x3 convs), the max
pool replaced by a 3x3 s2 conv, the ResNet-D shortcut (2x2 s2 average pool + 1x1 conv, on strided blocks only, as
the TF1 reference), squeeze-excitation, stochastic depth, dropout, zero-init of the last BN and the activation.
Bottleneck blocks have the stride on the 3x3 conv (the paper's ResNet-D "switched strides", torchvision v1.5).

Here too: the Keras stem and bottleneck (each followed by its complexity, ``_cx``) and the scaling rule. Importing
this module imports no TensorFlow (the Keras code reaches keras through lazy proxies).
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

from regnet_tf import scaling
from regnet_tf._lazy import LazyModule
from regnet_tf.counter import conv_bn_cx, pool2d_cx, se_cx
from regnet_tf.models.registry import Spec, register
from regnet_tf.padding import check_padding

# Lazy only to keep TensorFlow out of this pure-Python module (specs, counts and scaling load without it): these
# import keras on first use. Not for import order: layers and common import nothing that imports a family.
keras = LazyModule("keras")
layers = LazyModule("regnet_tf.layers")
common = LazyModule("regnet_tf.models.common")

# Blocks in c2, c3, c4, c5 (paper Table 11; 300 and 400 from appendix E; 26 as TF Model Garden's bottleneck ResNet-26).
BLOCK_ALLOCATIONS = {
    26: (2, 2, 2, 2),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    270: (4, 29, 53, 4),
    300: (4, 36, 54, 4),
    350: (4, 36, 72, 4),
    400: (6, 48, 72, 6),
    420: (4, 44, 87, 4),
}


@dataclasses.dataclass(frozen=True)
class ResNetSpec(Spec, kind="resnet"):
    """A bottleneck ResNet as per-stage lists. Block output width = ``expansion`` x bottleneck width ``ws[i]``."""

    ds: Tuple[int, ...]  # blocks per stage (c2..c5)
    ws: Tuple[int, ...] = (64, 128, 256, 512)  # bottleneck widths
    ss: Tuple[int, ...] = (1, 2, 2, 2)
    expansion: int = 4
    stem: str = "v0"  # "v0": 7x7 s2 conv; "v1": 3x3 s2 (stem_w/2), 3x3 (stem_w/2), 3x3 (stem_w)  [ResNet-D]
    stem_w: int = 64
    replace_stem_pool: bool = False  # 3x3 s2 conv + BN + act (width stem_w) instead of the 3x3 s2 max pool
    resnetd_shortcut: bool = False  # 2x2 s2 average pool + 1x1 conv on strided projection shortcuts
    se_ratio: float = 0.0  # SE on the block output: width max(1, int(se_ratio * expansion * w)); ReLU inside
    drop_path_rate: float = 0.0  # stochastic depth: stage i (1..4) drops its residual branch w.p. rate * (i + 1) / 5
    dropout: float = 0.0  # before the classifier
    activation: str = "relu"  # "relu" (paper, TF1) or "silu" (= swish, Model Garden TF2 configs)
    zero_init_last_bn: bool = True  # TF1 reference: gamma = 0 for each block's last BN
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9  # Keras convention; the RS recipes use 0 together with an EMA of the BN statistics
    padding: str = "symmetric"  # strided convs and pools: "symmetric" (TF1 fixed_padding, timm) or "tf_same"

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, tuple(v))  # noqa: E731  (frozen dataclass)
        set_("ds", (int(d) for d in self.ds))
        set_("ws", (int(w) for w in self.ws))
        set_("ss", (int(s) for s in self.ss))
        if not (len(self.ds) == len(self.ws) == len(self.ss)) or not self.ds:
            raise ValueError(f"ds, ws and ss need one entry per stage; got {self.ds}, {self.ws}, {self.ss}")
        if self.stem not in ("v0", "v1"):
            raise ValueError(f"unknown ResNet stem {self.stem!r}; valid: v0 (7x7 conv), v1 (ResNet-D 3x3 convs)")
        if self.activation not in ("relu", "silu"):
            raise ValueError(f"unknown activation {self.activation!r}; valid: relu, silu")
        check_padding(self.padding)
        if not 0 <= self.drop_path_rate < 1 or not 0 <= self.dropout < 1:
            raise ValueError(f"rates must be in [0, 1); got drop_path_rate={self.drop_path_rate}, dropout={self.dropout}")
        if any(d < 1 for d in self.ds) or any(w < 1 for w in self.ws):
            raise ValueError(f"depths and widths must be positive; got ds={self.ds}, ws={self.ws}")

    @classmethod
    def from_depth(cls, depth: int, width: float = 1.0, variant: str = "rs", **kwargs) -> "ResNetSpec":
        """A ResNet of a paper depth (26 ... 420) and width multiplier; ``variant``: plain | d | rs.

        plain: v0 stem, no SE. d: ResNet-D (v1 stem, max pool replaced by a conv, average-pool shortcut).
        rs: ResNet-D + SE 0.25 (the ResNet-RS architecture). Stem widths scale with ``width`` as in TF Model Garden.
        """
        if depth not in BLOCK_ALLOCATIONS:
            raise ValueError(f"no block allocation for depth {depth}; valid depths: {sorted(BLOCK_ALLOCATIONS)}")
        if variant not in ("plain", "d", "rs"):
            raise ValueError(f"unknown ResNet variant {variant!r}; valid: plain, d, rs")
        ws = tuple(int(w * width) for w in (64, 128, 256, 512))
        d = variant in ("d", "rs")
        opts = dict(stem="v1" if d else "v0", replace_stem_pool=d, resnetd_shortcut=d, se_ratio=0.25 if variant == "rs" else 0.0)
        return cls(ds=BLOCK_ALLOCATIONS[depth], ws=ws, stem_w=int(64 * width), **{**opts, **kwargs})

    @property
    def num_stages(self) -> int:
        return len(self.ds)

    @property
    def out_width(self) -> int:
        return self.ws[-1] * self.expansion

    def stem_widths(self):
        return (self.stem_w,) if self.stem == "v0" else (self.stem_w // 2, self.stem_w // 2, self.stem_w)

    def drop_path_rates(self):
        """Per-stage stochastic depth rates: rate * (i + 1) / (S + 1) for stage i = 1..S (TF1 and TF2 references)."""
        n = self.num_stages
        return tuple(self.drop_path_rate * (i + 1) / (n + 1) for i in range(1, n + 1))

    def blocks(self):
        """Yields (stage, block, w_in, w_b, w_out, stride, drop_path) for every block (1-based indices)."""
        w_in = self.stem_w
        for i, (d, w, s, dp) in enumerate(zip(self.ds, self.ws, self.ss, self.drop_path_rates())):
            for j in range(d):
                yield i + 1, j + 1, w_in, w, w * self.expansion, (s if j == 0 else 1), dp
                w_in = w * self.expansion

    def se_width(self, w_out: int) -> int:
        """SE width: max(1, int(se_ratio x block output width)) (TF references: SE on the block output)."""
        return max(1, int(w_out * self.se_ratio))

    def features(self, x):
        """Keras: stem and bottleneck blocks (the network up to the global pool)."""
        x = stem(x, self)
        for i, j, _, w_b, w_out, stride, dp in self.blocks():
            x = bottleneck(x, self, w_b, w_out, stride, dp, f"s{i}_b{j}")
        return x

    def feature_layers(self):
        """[(Keras layer name, cumulative stride, channels)] of the stem output (after its max pool or its pool conv,
        stride 4) and of each stage output (the last block's ``_out`` activation), in network order
        (`regnet_tf.zoo.feature_info` makes the pyramid levels of them)."""
        stride = 4
        out = [("stem_pool_conv_act" if self.replace_stem_pool else "stem_pool", stride, self.stem_w)]
        for i, (d, w, s) in enumerate(zip(self.ds, self.ws, self.ss)):
            stride *= s
            out.append((f"s{i + 1}_b{d}_out", stride, w * self.expansion))
        return out

    def features_cx(self, cx, in_channels: int = 3):
        """The complexity of `features` (a `regnet_tf.counter.Complexity` at the input size, updated)."""
        stem_cx(cx, self, in_channels)
        for _, _, w_in, w_b, w_out, stride, _ in self.blocks():
            bottleneck_cx(cx, self, w_in, w_b, w_out, stride)
        return cx

    def scaled_by(self, kd: float, kw: float, kg: float) -> "ResNetSpec":
        """Depths x kd, bottleneck and stem widths x kw (pycls rounding); no groups, so kg does not apply."""
        return self.replace(ds=tuple(scaling.round_depth(d, kd) for d in self.ds),
                            ws=tuple(scaling.round_width(w, kw) for w in self.ws),
                            stem_w=scaling.round_width(self.stem_w, kw))

    def describe(self) -> str:
        return "\n".join(scaling.stage_line(i, d, w, f"out={w * self.expansion}")
                         for i, (d, w) in enumerate(zip(self.ds, self.ws)))


# ---- Keras stem and block, each followed by its complexity ---- #


def stem(x, spec: ResNetSpec):
    """v0: 7x7 s2 conv. v1 (ResNet-D): 3x3 s2, 3x3, 3x3 convs. Then a 3x3 s2 max pool, or a 3x3 s2 conv (RS)."""
    k = 7 if spec.stem == "v0" else 3
    for i, w in enumerate(spec.stem_widths()):
        x = common.conv_bn_act(x, spec, w, k, "stem_conv" if spec.stem == "v0" else f"stem_conv{i + 1}",
                               stride=2 if i == 0 else 1)
    if spec.replace_stem_pool:
        return common.conv_bn_act(x, spec, spec.stem_w, 3, "stem_pool_conv", stride=2)
    return layers.MaxPool2D(3, 2, padding=spec.padding, name="stem_pool")(x)


def stem_cx(cx, spec: ResNetSpec, w_in: int = 3):
    for i, w_out in enumerate(spec.stem_widths()):
        conv_bn_cx(cx, w_in, w_out, 7 if spec.stem == "v0" else 3, stride=2 if i == 0 else 1)
        w_in = w_out
    if spec.replace_stem_pool:
        return conv_bn_cx(cx, w_in, spec.stem_w, 3, stride=2)
    return pool2d_cx(cx, w_in, 3, stride=2)


def bottleneck(x, spec: ResNetSpec, w_b, w_out, stride, drop_path, name):
    """1x1 -> 3x3 (stride) -> 1x1 (BN, zero gamma) -> [SE, ReLU inside] -> [stochastic depth] -> add -> act.

    Projection shortcut when the shape changes: 1x1 conv (stride) + BN, or with ``resnetd_shortcut`` on strided
    blocks a 2x2 s2 average pool, then 1x1 conv + BN (ResNet-D).
    """
    w_in = x.shape[-1]
    f = common.conv_bn_act(x, spec, w_b, 1, f"{name}_a")
    f = common.conv_bn_act(f, spec, w_b, 3, f"{name}_b", stride=stride)
    f = common.conv_bn_act(f, spec, w_out, 1, f"{name}_c", activation=False, zero_gamma=spec.zero_init_last_bn)
    if spec.se_ratio:  # the TF references keep ReLU inside SE even when the block uses swish
        f = common.squeeze_excite(f, spec, spec.se_width(w_out), f"{name}_se", activation="relu")
    if drop_path:
        f = common.drop_path(f, drop_path, name)
    if w_in != w_out or stride != 1:
        if spec.resnetd_shortcut and stride != 1:
            x = keras.layers.AveragePooling2D(2, stride, padding="same", name=f"{name}_proj_pool")(x)
            x = common.conv_bn_act(x, spec, w_out, 1, f"{name}_proj", activation=False)
        else:
            x = common.conv_bn_act(x, spec, w_out, 1, f"{name}_proj", stride=stride, activation=False)
    x = keras.layers.Add(name=f"{name}_add")([x, f])
    return common.act(x, spec, f"{name}_out")


def bottleneck_cx(cx, spec: ResNetSpec, w_in, w_b, w_out, stride):
    if w_in != w_out or stride != 1:  # projection shortcut (parallel branch)
        h, w = cx.h, cx.w
        if spec.resnetd_shortcut and stride != 1:
            pool2d_cx(cx, w_in, 2, stride=stride)  # 2x2 s2 average pool (acts counted like a max pool)
            conv_bn_cx(cx, w_in, w_out, 1)
        else:
            conv_bn_cx(cx, w_in, w_out, 1, stride=stride)
        cx.h, cx.w = h, w
    conv_bn_cx(cx, w_in, w_b, 1)
    conv_bn_cx(cx, w_b, w_b, 3, stride=stride)
    conv_bn_cx(cx, w_b, w_out, 1)
    if spec.se_ratio:
        se_cx(cx, w_out, spec.se_width(w_out))
    return cx


# ---- The zoo ---- #
# Plain ResNet and ResNet-D at 224; ResNet-RS with the regularization tf_keras bakes into each factory and the
# largest resolution the paper trains each depth at (Table 7 / Table 8; the recipes set the per-resolution values).
for _depth in (50, 101, 152, 200):
    register(f"resnet_{_depth}", ResNetSpec.from_depth(_depth, variant="plain"), resolution=224, family="resnet",
             factory=f"ResNet{_depth}", paper_name=f"ResNet-{_depth}",
             source="He et al. 2016 block allocation (paper Table 11), stride on the 3x3 conv")
    register(f"resnet_d_{_depth}", ResNetSpec.from_depth(_depth, variant="d"), resolution=224, family="resnet",
             factory=f"ResNetD{_depth}", paper_name=f"ResNet-D-{_depth}",
             source="ResNet-D (He et al. 2018) as in the ResNet-RS code: deep stem, conv instead of max pool, avg-pool shortcut")

_RS = {  # depth: (resolution, dropout, stochastic depth) - paper Table 8 at the largest resolution of each depth
    50: (160, 0.25, 0.0), 101: (192, 0.25, 0.0), 152: (256, 0.25, 0.0), 200: (256, 0.25, 0.1),
    270: (256, 0.25, 0.1), 350: (320, 0.4, 0.1), 420: (320, 0.4, 0.1),
}
for _depth, (_res, _do, _sd) in _RS.items():
    register(f"resnet_rs_{_depth}", ResNetSpec.from_depth(_depth, variant="rs", dropout=_do, drop_path_rate=_sd),
             resolution=_res, family="resnet_rs", factory=f"ResNetRS{_depth}", paper_name=f"ResNet-RS-{_depth}",
             source="Revisiting ResNets Tables 7, 8 and 11; TF1 resnet_rs code")
