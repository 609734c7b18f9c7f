"""Model scaling ("Fast and Accurate Model Scaling", Dollár, Singh & Girshick 2021).

Scale any spec by a flops factor ``s`` along depth d, width w (and group width g) and resolution r. A strategy gives
the share of the flops each dimension takes: with weights (ω_d, ω_w, ω_r), S = ω_d + ω_w + ω_r,

    d x= s^(ω_d / S),   w x= s^(ω_w / 2S),   r x= s^(ω_r / 2S)      (flops ~ d w^2 r^2, so d w^2 r^2 = s)

- simple and uniform compound strategies: ``"d"``, ``"w"``, ``"r"``, ``"dw"``, ``"dr"``, ``"wr"``, ``"dwr"``
  (weight 1 for each letter, paper Tables 1-2);
- fast compound scaling ``"dWr"`` with parameter ``alpha`` (paper section 5, Table 4): ω_d = ω_r = (1 - alpha) / 2,
  ω_w = alpha, i.e. d x= s^((1-a)/2), w x= s^(a/2), r x= s^((1-a)/4), so activations grow as s^(1 - a/2);
  alpha = 0.8 is pycls's ``"d1_w8_g8_r1"``;
- pycls weight strings such as ``"d1_w8_g8_r1"`` or ``"d1_w1_g0"`` (an explicit ``g`` weight).

Group width scales like width (the paper's default for group convs, section 3.5) unless a weight string gives ``g``
(pycls's bare letters leave g alone: write ``"d1_w1_g0"`` for that). Depthwise convs (EfficientNet) keep g = 1.
Rounding is pycls's: depth max(1, round(d x s_d)), widths max(1, round(w x s_w / 8)) x 8, group widths
max(1, round(g x s_g)) then 1-2 kept, 3-5 -> 4, larger -> multiple of 8, then the compatibility adjustment;
resolution round(r x s_r / 4) x 4. Python's round (half to even) as pycls.

Here the spec-level math (`scale_spec`); `regnet_tf.zoo.scale` takes a model name and its default resolution.
"""

from __future__ import annotations

import math
import re

SCALING_STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr")


def strategy_weights(strategy: str, alpha: float = 0.8) -> dict:
    """Flops-share weights {"d", "w", "g", "r"} of a strategy name or a pycls weight string."""
    if strategy == "dWr":
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1]; got {alpha}")
        return {"d": (1 - alpha) / 2, "w": alpha, "g": alpha, "r": (1 - alpha) / 2}
    if strategy in SCALING_STRATEGIES:
        weights = {k: float(k in strategy) for k in "dwr"}
        return {**weights, "g": weights["w"]}
    if re.fullmatch(r"([dwgr]\d+(\.\d+)?)(_[dwgr]\d+(\.\d+)?)*", strategy):
        weights = {k: 0.0 for k in "dwgr"}
        weights.update({part[0]: float(part[1:]) for part in strategy.split("_")})
        if "g" not in strategy:
            weights["g"] = weights["w"]
        return weights
    raise ValueError(f"unknown scaling strategy {strategy!r}; valid: {', '.join(SCALING_STRATEGIES)} or a weight "
                     "string such as 'd1_w8_g8_r1'")


def scaling_factors(strategy: str, s: float, alpha: float = 0.8):
    """(d, w, g, r) multipliers with d * w^2 * r^2 == s."""
    if s <= 0:
        raise ValueError(f"the flops factor must be positive; got {s}")
    wt = strategy_weights(strategy, alpha)
    total = wt["d"] + wt["w"] + wt["r"] or wt["g"] / 2 or 1.0
    d, w, g, r = (s ** (wt["d"] / total), s ** (wt["w"] / total / 2), s ** (wt["g"] / total / 2),
                  s ** (wt["r"] / total / 2))
    assert math.isclose(d * w * w * r * r, s, rel_tol=1e-6) or d == w == r == 1.0
    return d, w, g, r


# pycls's rounding, used by each spec's ``scaled_by(kd, kw, kg)``.


def round_depth(d: int, k: float) -> int:
    return max(1, round(d * k))


def round_width(w: int, k: float) -> int:
    return max(1, round(w * k / 8)) * 8


def round_group(g: int, k: float) -> int:
    g = max(1, round(g * k))
    return g if g <= 2 else 4 if g <= 5 else round(g / 8) * 8


def scale_spec(spec, factor: float, strategy: str = "dWr", alpha: float = 0.8, resolution: int = 224):
    """Scales a spec (at ``resolution``) by ``factor`` x flops. Returns (new spec, new resolution).

    Depths, widths and group widths change by the spec's own rule (``spec.scaled_by(kd, kw, kg)``, in its family
    module). `regnet_tf.zoo.scale` takes a model name and its default resolution.
    """
    kd, kw, kg, kr = scaling_factors(strategy, factor, alpha)
    return spec.resolved().scaled_by(kd, kw, kg), int(round(resolution * kr / 4) * 4)


def stage_line(i: int, d: int, w: int, extra: str) -> str:
    """One line of a spec's ``describe()``: ``  stage 1: d=2   w=48    <extra>``."""
    return f"  stage {i + 1}: d={d:<3d} w={w:<5d} {extra}"
