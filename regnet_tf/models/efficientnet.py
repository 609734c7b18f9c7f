"""EfficientNet B0-B7 (Tan & Le 2019) and EfficientNet-RS ("Revisiting ResNets" section 7.2): spec and zoo.

An `EffNetSpec` is the per-stage description pycls uses (stem width, per-stage depths, widths, expansion ratios,
kernel sizes, strides, SE ratio, head width). B1-B7 come from B0 by the compound-scaling rules of the reference
(widths: ``round_filters``, multiples of 8 never more than 10% down; depths: ceil(d x repeats)), which reproduce
pycls's B1-B5 configs and Keras's B0-B7 exactly.

EfficientNet-RS keeps every width and depth and only trains at a lower resolution. The paper ("slow image
resolution scaling", section 7.2) gives no table; our rule halves the growth of log-resolution of compound scaling:
r_RS = 224 x (r / 224)^(1/2), rounded to a multiple of 8 (docs/DEVIATIONS.md has the reasoning), and the paper's
RandAugment magnitude rule (10 up to 224 px, 15 up to 320, 20 above) is `randaugment_magnitude(resolution)`.

Here too: the Keras MBConv block (followed by its complexity, ``_cx``) and the scaling rule. Importing this module
imports no TensorFlow (the Keras code reaches keras through lazy proxies).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

from regnet_tf import scaling
from regnet_tf._lazy import LazyModule
from regnet_tf.counter import conv_bn_cx, se_cx
from regnet_tf.models.anynet import adjust_block_compatibility
from regnet_tf.models.registry import Spec, register
from regnet_tf.padding import check_padding

# Lazy only to keep TensorFlow out of this pure-Python module (specs, counts and scaling load without it): these
# import keras on first use. Not for import order: layers and common import nothing that imports a family.
keras = LazyModule("keras")
layers = LazyModule("regnet_tf.layers")
common = LazyModule("regnet_tf.models.common")

# B0 (Tan & Le 2019, Table 1): depth, width, expansion, kernel, stride per stage.
B0 = dict(stem_w=32, ds=(1, 2, 2, 3, 3, 4, 1), ws=(16, 24, 40, 80, 112, 192, 320), exp_rs=(1, 6, 6, 6, 6, 6, 6),
          ks=(3, 3, 5, 3, 5, 5, 3), ss=(1, 2, 2, 2, 1, 2, 1), head_w=1280)
# name: (width multiplier, depth multiplier, resolution, dropout) - the reference's B0-B7.
SCALES = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3), "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4), "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
}


def round_filters(w: float, multiplier: float, divisor: int = 8) -> int:
    """EfficientNet width rounding: nearest multiple of ``divisor`` (ties up), never more than 10% below."""
    w = w * multiplier
    new = max(divisor, int(w + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * w else new)


def round_repeats(d: int, multiplier: float) -> int:
    return int(math.ceil(multiplier * d))


def rs_resolution(resolution: int) -> int:
    """EfficientNet-RS resolution: half the log-growth of compound scaling, 224 x sqrt(r / 224), multiple of 8."""
    return int(round(224 * math.sqrt(resolution / 224) / 8) * 8)


def randaugment_magnitude(resolution: int) -> int:
    """Paper section 7.2: RandAugment magnitude 10 for resolution <= 224, 20 above 320, 15 otherwise."""
    return 10 if resolution <= 224 else 20 if resolution > 320 else 15


@dataclasses.dataclass(frozen=True)
class EffNetSpec(Spec, kind="efficientnet"):
    """EfficientNet as per-stage lists (pycls ``EN`` config). MBConv: expand 1x1, depthwise kxk, SE, project 1x1."""

    ds: Tuple[int, ...]
    ws: Tuple[int, ...]
    exp_rs: Tuple[int, ...]
    ks: Tuple[int, ...]
    ss: Tuple[int, ...]
    stem_w: int = 32
    head_w: int = 1280
    se_ratio: float = 0.25  # SE width = max(1, int(se_ratio x block input width)), SiLU inside
    activation: str = "silu"
    dropout: float = 0.2
    drop_path_rate: float = 0.2  # "drop connect": block b of B drops w.p. rate * b / B (b = 0 .. B - 1)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9
    padding: str = "symmetric"  # strided convs: "symmetric" (pycls, timm efficientnet_b*) or "tf_same" (Keras, TF)

    def __post_init__(self):
        n = len(self.ds)
        for key in ("ds", "ws", "exp_rs", "ks", "ss"):
            object.__setattr__(self, key, tuple(int(v) for v in getattr(self, key)))
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key} needs {n} entries (one per stage); got {getattr(self, key)}")
        if any(k % 2 == 0 for k in self.ks):
            raise ValueError(f"kernel sizes must be odd; got {self.ks}")
        if self.activation not in ("relu", "silu"):
            raise ValueError(f"unknown activation {self.activation!r}; valid: relu, silu")
        check_padding(self.padding)

    @classmethod
    def scaled(cls, width: float = 1.0, depth: float = 1.0, **kwargs) -> "EffNetSpec":
        """B0 scaled by the compound-scaling width and depth multipliers (B1-B7: see ``SCALES``)."""
        return cls(ds=tuple(round_repeats(d, depth) for d in B0["ds"]),
                   ws=tuple(round_filters(w, width) for w in B0["ws"]), exp_rs=B0["exp_rs"], ks=B0["ks"], ss=B0["ss"],
                   stem_w=round_filters(B0["stem_w"], width), head_w=round_filters(B0["head_w"], width), **kwargs)

    @property
    def num_stages(self) -> int:
        return len(self.ds)

    @property
    def out_width(self) -> int:
        return self.head_w

    def blocks(self):
        """Yields (stage, block, w_in, w_out, exp_r, k, stride, drop_path) for every block (1-based indices)."""
        total, b, w_in = sum(self.ds), 0, self.stem_w
        for i, (d, w, e, k, s) in enumerate(zip(self.ds, self.ws, self.exp_rs, self.ks, self.ss)):
            for j in range(d):
                yield i + 1, j + 1, w_in, w, e, k, (s if j == 0 else 1), self.drop_path_rate * b / total
                w_in, b = w, b + 1

    def se_width(self, w_in: int) -> int:
        """SE width: max(1, int(se_ratio x block input width)) (not of the expanded width), as the references."""
        return max(1, int(w_in * self.se_ratio))

    def features(self, x):
        """Keras: stem conv, MBConv blocks and the head conv (the network up to the global pool)."""
        x = common.conv_bn_act(x, self, self.stem_w, 3, "stem_conv", stride=2)
        for i, j, _, w_out, exp_r, k, stride, dp in self.blocks():
            x = mbconv(x, self, w_out, exp_r, k, stride, dp, f"s{i}_b{j}")
        return common.conv_bn_act(x, self, self.head_w, 1, "head_conv")

    def feature_layers(self):
        """[(Keras layer name, cumulative stride, channels)] of the stem output and of each stage output (the last
        block's ``_add``, or ``_project_bn`` for a block without a shortcut), in network order; not the head conv
        (`regnet_tf.zoo.feature_info` makes the pyramid levels of them)."""
        stride = 2
        out = [("stem_conv_act", stride, self.stem_w)]
        w_in = self.stem_w
        for i, (d, w, s) in enumerate(zip(self.ds, self.ws, self.ss)):
            stride *= s
            # the last block has the stage's stride only when the stage has one block; its input is w_in then
            last_in, last_s = (w_in, s) if d == 1 else (w, 1)
            last = "add" if last_s == 1 and last_in == w else "project_bn"
            out.append((f"s{i + 1}_b{d}_{last}", stride, w))
            w_in = w
        return out

    def features_cx(self, cx, in_channels: int = 3):
        """The complexity of `features` (a `regnet_tf.counter.Complexity` at the input size, updated)."""
        conv_bn_cx(cx, in_channels, self.stem_w, 3, stride=2)
        for _, _, w_in, w_out, exp_r, k, stride, _ in self.blocks():
            mbconv_cx(cx, self, w_in, w_out, exp_r, k, stride)
        return conv_bn_cx(cx, self.ws[-1], self.head_w, 1)

    def scaled_by(self, kd: float, kw: float, kg: float) -> "EffNetSpec":
        """Depths x kd, widths x kw (pycls rounding, stem and head too); depthwise convs keep g = 1, so no kg."""
        ws, _, _ = adjust_block_compatibility([scaling.round_width(w, kw) for w in self.ws], list(self.exp_rs),
                                              [1] * len(self.ws))
        return self.replace(ds=tuple(scaling.round_depth(d, kd) for d in self.ds), ws=tuple(ws),
                            stem_w=scaling.round_width(self.stem_w, kw), head_w=scaling.round_width(self.head_w, kw))

    def describe(self) -> str:
        return "\n".join(scaling.stage_line(i, d, w, f"exp={e} k={k} s={s}")
                         for i, (d, w, e, k, s) in enumerate(zip(self.ds, self.ws, self.exp_rs, self.ks, self.ss)))


def mbconv(x, spec: EffNetSpec, w_out, exp_r, k, stride, drop_path, name):
    """MBConv: [1x1 expand] -> kxk depthwise (stride) -> SE -> 1x1 project (no act) -> [drop connect] -> [add]."""
    w_in = x.shape[-1]
    f = common.conv_bn_act(x, spec, w_in * exp_r, 1, f"{name}_expand") if exp_r != 1 else x
    f = layers.DepthwiseConv2D(k, strides=stride, padding=spec.padding, name=f"{name}_dw")(f)
    f = common.act(common.bn(f, spec, f"{name}_dw_bn"), spec, f"{name}_dw_act")
    if spec.se_ratio:
        f = common.squeeze_excite(f, spec, spec.se_width(w_in), f"{name}_se")
    f = common.conv_bn_act(f, spec, w_out, 1, f"{name}_project", activation=False)
    if stride != 1 or w_in != w_out:
        return f
    if drop_path:
        f = common.drop_path(f, drop_path, name)
    return keras.layers.Add(name=f"{name}_add")([x, f])


def mbconv_cx(cx, spec: EffNetSpec, w_in, w_out, exp_r, k, stride):
    w_exp = w_in * exp_r
    if exp_r != 1:
        conv_bn_cx(cx, w_in, w_exp, 1)
    conv_bn_cx(cx, w_exp, w_exp, k, stride=stride, groups=w_exp)  # depthwise
    if spec.se_ratio:
        se_cx(cx, w_exp, spec.se_width(w_in))
    return conv_bn_cx(cx, w_exp, w_out, 1)


for _b, (_w, _d, _res, _do) in SCALES.items():
    register(f"efficientnet_{_b}", EffNetSpec.scaled(_w, _d, dropout=_do), resolution=_res, family="efficientnet",
             factory=f"EfficientNet{_b.upper()}", paper_name=f"EfficientNet-{_b.upper()}",
             source="Tan & Le 2019 (B0 + compound scaling, as keras.applications and pycls)")
for _b, (_w, _d, _res, _do) in SCALES.items():
    register(f"efficientnet_rs_{_b}", EffNetSpec.scaled(_w, _d, dropout=_do), resolution=rs_resolution(_res),
             family="efficientnet_rs", factory=f"EfficientNetRS{_b.upper()}",
             paper_name=f"EfficientNet-RS-{_b.upper()}",
             source="Revisiting ResNets 7.2: EfficientNet widths/depths, slow resolution scaling (our rule)",
             randaug_magnitude=randaugment_magnitude)
