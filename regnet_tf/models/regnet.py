"""RegNet: the quantized linear design space (RegNet paper, section 3.3, eqs. 2-4) and the RegNet X/Y/Z zoo.

A `RegNetSpec` holds the handful of design-space parameters (d, w0, wa, wm, g, b, ...). `generate_regnet`
turns (d, w0, wa, wm) into per-stage widths and depths exactly as pycls does (numpy float64, round half to
even); `RegNetSpec.to_anynet()` adds the group-width compatibility adjustment and gives the `AnyNetSpec`
(``spec.resolved()``) whose blocks, complexity and scaling rule (regnet_tf/models/anynet.py) build, count and scale
a RegNet; scaling a RegNet gives an AnyNetSpec, as in pycls. Pure Python/numpy: no TensorFlow here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regnet_tf.models.anynet import AnyNetSpec, adjust_block_compatibility
from regnet_tf.models.registry import Spec, register


def generate_regnet(wa: float, w0: int, wm: float, d: int, q: int = 8):
    """Per-stage widths and depths from the quantized linear parameterization.

    u_j = w0 + wa * j (eq. 2); s_j = log(u_j / w0) / log(wm), rounded (eq. 3); w_j = w0 * wm^s_j rounded to a
    multiple of q (eq. 4). Rounding is numpy's half-to-even, as pycls: X-1.6GF, X-400MF and Y-800MF hit
    exact .5 ties, and half-up rounding would build different networks.

    Returns (ws, ds, num_stages, total_stages, ws_all, ws_cont).
    """
    if not (wa >= 0 and w0 > 0 and wm > 1 and w0 % q == 0):
        raise ValueError(f"need wa >= 0, w0 > 0, wm > 1 and w0 % {q} == 0; got wa={wa}, w0={w0}, wm={wm}")
    if d < 1:
        raise ValueError(f"depth d must be >= 1, got {d}")
    ws_cont = np.arange(d) * wa + w0
    ks = np.round(np.log(ws_cont / w0) / np.log(wm))
    ws_all = w0 * np.power(wm, ks)
    ws_all = np.round(np.divide(ws_all, q)).astype(int) * q
    ws, ds = np.unique(ws_all, return_counts=True)
    num_stages, total_stages = len(ws), int(ks.max() + 1)
    return [int(w) for w in ws], [int(x) for x in ds], num_stages, total_stages, ws_all.tolist(), ws_cont.tolist()


@dataclasses.dataclass(frozen=True)
class RegNetSpec(Spec, kind="regnet"):
    """A RegNet model: the parameters of the RegNet design space (pycls ``REGNET`` config).

    Per-stage strides, bottleneck multipliers and group widths are constant across stages.
    """

    d: int  # depth: total number of blocks
    w0: int  # initial width (multiple of 8)
    wa: float  # slope
    wm: float  # width multiplier between stages
    g: int  # group width
    b: float = 1.0  # bottleneck multiplier (4.0 = inverted bottleneck, RegNetZ)
    se_ratio: float = 0.0
    block: str = "X"
    stride: int = 2
    stem: str = "simple"
    stem_w: int = 32
    head_w: int = 0
    head_act: bool = False  # with head_w = 0: an activation after the last stage (AnyNetSpec.head_act)
    activation: str = "relu"
    num_stages: int = 4  # the number of stages the parameters must produce
    dropout: float = 0.0
    zero_init_last_bn: bool = False
    q: int = 8  # width quantum
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9
    padding: str = "symmetric"  # or "tf_same" (weights trained with TensorFlow's "SAME", e.g. tf_keras's RegNets)

    def generate(self):
        """(ws, ds, num_stages, total_stages, ws_all, ws_cont) before the compatibility adjustment."""
        return generate_regnet(self.wa, self.w0, self.wm, self.d, self.q)

    def to_anynet(self) -> AnyNetSpec:
        ws, ds, num_stages, total_stages, _, _ = self.generate()
        if num_stages != total_stages:
            raise ValueError(
                f"RegNet parameters (d={self.d}, w0={self.w0}, wa={self.wa}, wm={self.wm}) quantize two stages to"
                f" the same width: {num_stages} distinct widths {ws} for {total_stages} stage exponents. pycls"
                " rejects such samples; change wa, w0 or wm."
            )
        if num_stages != self.num_stages:
            raise ValueError(
                f"RegNet parameters (d={self.d}, w0={self.w0}, wa={self.wa}, wm={self.wm}) give {num_stages} stages"
                f" (widths {ws}, depths {ds}) but num_stages={self.num_stages} was requested; change wa/wm/d or"
                " num_stages."
            )
        n = num_stages
        bs, gs = [self.b] * n, [self.g] * n
        if self.block == "R":  # no groups: one group over the whole bottleneck width
            gs = [max(1, int(w * self.b)) for w in ws]
        ws, bs, gs = adjust_block_compatibility(ws, bs, gs)
        return AnyNetSpec(
            ds=tuple(ds), ws=tuple(ws), ss=(self.stride,) * n, bs=tuple(bs), gs=tuple(gs), block=self.block,
            se_ratio=self.se_ratio, stem=self.stem, stem_w=self.stem_w, head_w=self.head_w, head_act=self.head_act,
            activation=self.activation, dropout=self.dropout, zero_init_last_bn=self.zero_init_last_bn,
            bn_eps=self.bn_eps, bn_momentum=self.bn_momentum, padding=self.padding,
        )

    def resolved(self) -> AnyNetSpec:
        """The AnyNetSpec that builds, counts and scales this RegNet."""
        return self.to_anynet()


# ---- The zoo ---- #
# RegNetX / RegNetY: pycls configs/dds_baselines (d, w0, wa, wm, g); all at 224 px. "flops" in the names are
# multiply-adds. RegNetZ: the ClassyVision presets (also timm's regnetz_*): pycls publishes no RegNetZ config.

_REGNETX = {
    "002": (13, 24, 36.44, 2.49, 8),
    "004": (22, 24, 24.48, 2.54, 16),
    "006": (16, 48, 36.97, 2.24, 24),
    "008": (16, 56, 35.73, 2.28, 16),
    "016": (18, 80, 34.01, 2.25, 24),
    "032": (25, 88, 26.31, 2.25, 48),
    "040": (23, 96, 38.65, 2.43, 40),
    "064": (17, 184, 60.83, 2.07, 56),
    "080": (23, 80, 49.56, 2.88, 120),
    "120": (19, 168, 73.36, 2.37, 112),
    "160": (22, 216, 55.59, 2.1, 128),
    "320": (23, 320, 69.86, 2.0, 168),
}
_REGNETY = {
    "002": (13, 24, 36.44, 2.49, 8),
    "004": (16, 48, 27.89, 2.09, 8),
    "006": (15, 48, 32.54, 2.32, 16),
    "008": (14, 56, 38.84, 2.4, 16),
    "016": (27, 48, 20.71, 2.65, 24),
    "032": (21, 80, 42.63, 2.66, 24),
    "040": (22, 96, 31.41, 2.24, 64),
    "064": (25, 112, 33.22, 2.27, 72),
    "080": (17, 192, 76.82, 2.19, 56),
    "120": (19, 168, 73.36, 2.37, 112),
    "160": (18, 200, 106.23, 2.48, 112),
    "320": (20, 232, 115.89, 2.53, 232),
}


def _mf(code: str) -> str:
    """'016' -> '1.6GF', '002' -> '200MF' (the papers' model names)."""
    v = int(code) / 10
    return f"{int(v * 1000)}MF" if v < 1 else f"{v:g}GF"


for _x, _table in (("x", _REGNETX), ("y", _REGNETY)):
    _se = dict(block="Y", se_ratio=0.25) if _x == "y" else dict(block="X")
    for _code, (_d, _w0, _wa, _wm, _g) in _table.items():
        register(
            f"regnet{_x}_{_code}", RegNetSpec(d=_d, w0=_w0, wa=_wa, wm=_wm, g=_g, **_se), resolution=224,
            family="regnet", factory=f"RegNet{_x.upper()}{_code}", paper_name=f"RegNet{_x.upper()}-{_mf(_code)}",
            source=f"pycls configs/dds_baselines/regnet{_x}",
        )

_Z = dict(b=4.0, se_ratio=0.25, block="Z", activation="silu")
register(
    "regnetz_005", RegNetSpec(d=21, w0=16, wa=10.7, wm=2.51, g=4, head_w=1024, **_Z), resolution=224,
    family="regnet", factory="RegNetZ005", paper_name="RegNetZ-500MF",
    source="ClassyVision regnet_z_500mf (timm regnetz_005): trained with a 1024-wide conv head",
)
# Without a head conv, timm applies SiLU to the last (linear-output) stage before the pool; its weights are the only
# public ones of this model, so we follow it (docs/DEVIATIONS.md).
register(
    "regnetz_040", RegNetSpec(d=28, w0=48, wa=14.5, wm=2.226, g=8, head_act=True, **_Z), resolution=256,
    family="regnet", factory="RegNetZ040", paper_name="RegNetZ-4GF",
    source="ClassyVision regnet_z_4gf (timm regnetz_040): meant for 256 px, no conv head, SiLU before the pool",
)
register(
    "regnetz_040_h", RegNetSpec(d=28, w0=48, wa=14.5, wm=2.226, g=8, head_w=1536, **_Z), resolution=256,
    family="regnet", factory="RegNetZ040H", paper_name="RegNetZ-4GF (1536 head)",
    source="timm regnetz_040_h: RegNetZ-4GF with a 1536-wide conv head",
)
