"""Design spaces of the RegNet paper as plain data: AnyNetX A-E, RegNetX / RegNetY, constrained RegNetX; and the
fast-scaling paper's RegNetY (b = 1) and RegNetZ.

Each space is a frozen dataclass whose fields are the space's ranges; ``space.sample(rng)`` draws one valid spec
(an `AnyNetSpec` or a `RegNetSpec`) and ``space.size()`` counts the space as the paper's Table 1 does.
`sample(space, n, regime, seed)` draws n distinct specs inside a flop regime, filtered with the analytic
`regnet_tf.complexity`; the list is a deterministic function of the seed. Pure Python/numpy, no TensorFlow.

AnyNetX (section 3.2): 4 stages, per stage d_i <= 16, w_i <= 1024 and divisible by 8, bottleneck ratio
b_i in {1, 2, 4} (inner width w_i / b_i, i.e. `AnyNetSpec.bs` = 1 / b_i), group width g_i in {1, 2, 4, 8, 16, 32};
log-uniform sampling (over a discrete set of powers of 2 this is a uniform choice). B: shared b; C: B + shared g;
D: C + w_{i+1} >= w_i; E: D + d_{i+1} >= d_i. The order constraints are sampled by redrawing the 4-vector until it
holds, which is exactly C conditioned on the constraint. Widths are then made compatible with b and g by
`adjust_block_compatibility` (appendix D), which keeps multiples of 8, <= 1024 and the order of D/E.

RegNet (section 3.3): d < 64, w0 < 256 (a multiple of 8, as generation needs), wa < 256, 1.5 <= wm <= 3, b and g as
AnyNetX. The paper gives ranges only; the distributions are those of the authors' pycls sampler: d uniform,
w0 / wa / wm log-uniform with wa >= 8 (rounded to 0.01, wm to 0.001). Samples that do not give exactly 4 stages, or
that quantize two stages to one width, are rejected (`RegNetSpec.to_anynet`). Constrained RegNetX, the version
section 5 uses: section 4's b = 1, wm >= 2, and params <= 3 + 5.5 F (M), acts <= 6.5 sqrt(F) (M) for a regime of at
most F GF (the best-model fits of figure 12, bottom; the same rule as pycls's sweep config comment), with section 5's
depth limit 12 <= d <= 28 (section 4 and figure 13 use d <= 40: replace `d_range` with (1, 40)).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Optional, Tuple

import numpy as np

from regnet_tf.models.anynet import AnyNetSpec, adjust_block_compatibility
from regnet_tf.models.regnet import RegNetSpec
from regnet_tf.zoo import complexity

B_RATIOS = (1, 2, 4)  # bottleneck ratios b (inner width w / b)
G_WIDTHS = (1, 2, 4, 8, 16, 32)  # group widths g
REGNET_LEVELS = 64  # Table 1: each of d, w0, wa, wm counted as 64 quantized values ("~64^4 * 6 * 3")
REGIME_SPAN = 0.1  # "400MF" = 360MF to 400MF (section 3.2): the named flops and the 10% below
_MAX_REDRAWS = 10000  # draws per valid spec in space.sample (rejections: stage count, order constraints)


def log_uniform_int(rng, lo: int, hi: int, q: int = 1) -> int:
    """A multiple of q in [lo, hi], log-uniform: exp(U[log(lo - q/2), log(hi + q/2))) rounded to a multiple of q."""
    x = math.exp(rng.uniform(math.log(lo - q / 2), math.log(hi + q / 2)))
    return int(min(hi, max(lo, q * math.floor(x / q + 0.5))))


def log_uniform(rng, lo: float, hi: float, digits: int) -> float:
    """A float in [lo, hi], log-uniform, rounded to ``digits`` decimals (kept inside [lo, hi])."""
    x = round(math.exp(rng.uniform(math.log(lo), math.log(hi))), digits)
    return min(hi, max(lo, x))


def _choice(rng, values):
    return values[int(rng.integers(len(values)))]


def _ordered_count(n: int, k: int, exact: bool) -> float:
    """Non-decreasing k-tuples over n values: exactly C(n + k - 1, k); the paper's estimate n^k / k!."""
    return math.comb(n + k - 1, k) if exact else n**k / math.factorial(k)


@dataclasses.dataclass(frozen=True)
class AnyNetSpace:
    """AnyNetX A-E: per-stage (d, w, b, g) with optional sharing (b, g) and order (w, d) constraints."""

    name: str
    shared_b: bool = False
    shared_g: bool = False
    increasing_w: bool = False
    increasing_d: bool = False
    stages: int = 4
    d_max: int = 16
    w_max: int = 1024
    q: int = 8  # widths are multiples of q
    b_ratios: Tuple[int, ...] = B_RATIOS
    g_widths: Tuple[int, ...] = G_WIDTHS
    block: str = "X"
    se_ratio: float = 0.0
    activation: str = "relu"

    def _per_stage(self, rng, draw_one, shared: bool, increasing: bool):
        if shared:
            return [draw_one()] * self.stages
        for _ in range(_MAX_REDRAWS):
            values = [draw_one() for _ in range(self.stages)]
            if not increasing or all(a <= b for a, b in zip(values, values[1:])):
                return values
        raise RuntimeError(f"{self.name}: no non-decreasing draw in {_MAX_REDRAWS} tries")

    def draw(self, rng) -> dict:
        """The raw parameters: per-stage ds, ws, b (ratios) and gs, before the compatibility adjustment."""
        ds = self._per_stage(rng, lambda: log_uniform_int(rng, 1, self.d_max), False, self.increasing_d)
        ws = self._per_stage(rng, lambda: log_uniform_int(rng, self.q, self.w_max, self.q), False, self.increasing_w)
        b = self._per_stage(rng, lambda: _choice(rng, self.b_ratios), self.shared_b, False)
        gs = self._per_stage(rng, lambda: _choice(rng, self.g_widths), self.shared_g, False)
        return dict(ds=ds, ws=ws, b=b, gs=gs)

    def build(self, params: dict) -> Optional[AnyNetSpec]:
        """The AnyNetSpec of raw parameters, widths made compatible with b and g (appendix D)."""
        ws, bs, gs = adjust_block_compatibility(params["ws"], [1.0 / r for r in params["b"]], params["gs"])
        return AnyNetSpec(ds=tuple(params["ds"]), ws=tuple(ws), bs=tuple(bs), gs=tuple(gs), block=self.block,
                          se_ratio=self.se_ratio, activation=self.activation)

    def sample(self, rng) -> AnyNetSpec:
        """One spec of the space (no flop filter)."""
        return self.build(self.draw(rng))

    def limits(self, flops_hi: Optional[float]) -> dict:
        """Extra complexity limits for a regime with upper bound ``flops_hi`` (none for AnyNetX)."""
        return {}

    def size(self, exact: bool = False) -> float:
        """Number of configurations (Table 1): per stage 16 depths, w_max / q widths, 3 b, 6 g; a shared value
        counts once; each order constraint divides its 4 stage values by 4! (the paper's estimate) or, with
        ``exact``, counts the non-decreasing 4-tuples."""
        n_d, n_w, k = self.d_max, self.w_max // self.q, self.stages
        d_part = _ordered_count(n_d, k, exact) if self.increasing_d else n_d**k
        w_part = _ordered_count(n_w, k, exact) if self.increasing_w else n_w**k
        b_part = len(self.b_ratios) ** (1 if self.shared_b else k)
        g_part = len(self.g_widths) ** (1 if self.shared_g else k)
        return float(d_part * w_part * b_part * g_part)


@dataclasses.dataclass(frozen=True)
class RegNetSpace:
    """RegNet: (d, w0, wa, wm, b, g) through the quantized linear parameterization, 4 stages."""

    name: str
    block: str = "X"
    se_ratio: float = 0.0
    d_range: Tuple[int, int] = (1, 63)  # d < 64, uniform
    w0_range: Tuple[int, int] = (8, 248)  # w0 < 256, multiple of q, log-uniform
    wa_range: Tuple[float, float] = (8.0, 255.99)  # wa < 256, log-uniform, 0.01 steps
    wm_range: Tuple[float, float] = (1.5, 3.0)  # log-uniform, 0.001 steps
    b_ratios: Tuple[float, ...] = B_RATIOS
    g_widths: Tuple[int, ...] = G_WIDTHS
    stages: int = 4
    q: int = 8
    activation: str = "relu"
    params_fit: Optional[Tuple[float, float]] = None  # (a, c): params <= (a + c F) M, F = regime top in GF
    acts_fit: Optional[float] = None  # c: acts <= c sqrt(F) M
    w0_equals_wa: bool = False  # section 3.3's simplification (Figure 9): the slope wa is set to w0

    def draw(self, rng) -> dict:
        """The raw parameters d, w0, wa, wm, b (ratio), g."""
        d = int(rng.integers(self.d_range[0], self.d_range[1] + 1))
        w0 = log_uniform_int(rng, self.w0_range[0], self.w0_range[1], self.q)
        wa = float(w0) if self.w0_equals_wa else log_uniform(rng, *self.wa_range, digits=2)
        wm = log_uniform(rng, *self.wm_range, digits=3)
        return dict(d=d, w0=w0, wa=wa, wm=wm, b=_choice(rng, self.b_ratios), g=_choice(rng, self.g_widths))

    def build(self, p: dict) -> Optional[RegNetSpec]:
        """The RegNetSpec of raw parameters, or None when they do not give exactly ``stages`` distinct stages."""
        spec = RegNetSpec(d=p["d"], w0=p["w0"], wa=p["wa"], wm=p["wm"], g=p["g"], b=1.0 / p["b"], block=self.block,
                          se_ratio=self.se_ratio, num_stages=self.stages, q=self.q, activation=self.activation)
        try:
            spec.to_anynet()  # generation + adjust_block_compatibility; raises on a wrong stage count
        except ValueError:
            return None
        return spec

    def sample(self, rng) -> RegNetSpec:
        """One valid spec of the space (no flop filter): draws until the parameters give ``stages`` stages."""
        for _ in range(_MAX_REDRAWS):
            spec = self.build(self.draw(rng))
            if spec is not None:
                return spec
        raise RuntimeError(f"{self.name}: no {self.stages}-stage model in {_MAX_REDRAWS} draws")

    def limits(self, flops_hi: Optional[float]) -> dict:
        """{"params": max, "acts": max} for a regime of at most ``flops_hi`` flops (constrained RegNetX only)."""
        if self.params_fit is None and self.acts_fit is None:
            return {}
        if flops_hi is None:
            raise ValueError(f"design space {self.name} limits params and acts relative to flops: give a regime")
        f_gf, out = flops_hi / 1e9, {}
        if self.params_fit is not None:
            out["params"] = (self.params_fit[0] + self.params_fit[1] * f_gf) * 1e6
        if self.acts_fit is not None:
            out["acts"] = self.acts_fit * math.sqrt(f_gf) * 1e6
        return out

    def size(self, exact: bool = False) -> float:
        """The paper's estimate (Table 1): d, w0, wa, wm quantized to 64 values each, times the b and g choices."""
        if exact:
            raise ValueError(f"{self.name} has continuous parameters: only the paper's estimate exists; use "
                             "exact=False")
        return float(REGNET_LEVELS**4 * len(self.b_ratios) * len(self.g_widths))


SPACES = {
    s.name: s
    for s in (
        AnyNetSpace("anynetx_a"),
        AnyNetSpace("anynetx_b", shared_b=True),
        AnyNetSpace("anynetx_c", shared_b=True, shared_g=True),
        AnyNetSpace("anynetx_d", shared_b=True, shared_g=True, increasing_w=True),
        AnyNetSpace("anynetx_e", shared_b=True, shared_g=True, increasing_w=True, increasing_d=True),
        RegNetSpace("regnetx"),
        RegNetSpace("regnety", block="Y", se_ratio=0.25),
        RegNetSpace("regnetx_constrained", d_range=(12, 28), wm_range=(2.0, 3.0), b_ratios=(1,),
                    params_fit=(3.0, 5.5), acts_fit=6.5),
        # "Fast and Accurate Model Scaling" (section 6.1): RegNetY with b = 1 ("we set the bottleneck ratio b to 1"),
        # and RegNetZ: Z blocks (inverted bottleneck b = 1/4, i.e. inner width 4 w; SiLU; SE 0.25), no head conv
        RegNetSpace("regnety_b1", block="Y", se_ratio=0.25, b_ratios=(1,)),
        RegNetSpace("regnetz", block="Z", se_ratio=0.25, b_ratios=(0.25,), activation="silu"),
    )
}


def get_space(space):
    """A space object or its name in SPACES -> the space."""
    if isinstance(space, (AnyNetSpace, RegNetSpace)):
        return space
    if space not in SPACES:
        raise ValueError(f"unknown design space {space!r}; valid: {', '.join(SPACES)}")
    return SPACES[space]


def size(space, exact: bool = False) -> float:
    """Design-space size as in the paper's Table 1 (see AnyNetSpace.size, RegNetSpace.size)."""
    return get_space(space).size(exact)


_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([MG])F?\s*$", re.IGNORECASE)


def _flops(text: str) -> float:
    m = _AMOUNT.match(text)
    if not m:
        raise ValueError(f"cannot read flops {text!r}; write e.g. '400MF' or '3.2GF' (MF = 1e6, GF = 1e9 mult-adds)")
    return float(m.group(1)) * (1e6 if m.group(2).upper() == "M" else 1e9)


def parse_regime(regime) -> Optional[Tuple[float, float]]:
    """A flop regime -> (lo, hi) in flops (multiply-adds), both inclusive; None -> None (no flop filter).

    "400MF" is the paper's 400MF regime, 360MF to 400MF: the named flops and the 10% below ("3.2GF" = 2.88-3.2 GF).
    "360MF-400MF" or a (lo, hi) pair of numbers give the bounds directly.
    """
    if regime is None:
        return None
    if isinstance(regime, str):
        if "-" in regime:
            lo, hi = (_flops(part) for part in regime.split("-", 1))
        else:
            hi = _flops(regime)
            lo = hi * (1 - REGIME_SPAN)
    else:
        try:
            lo, hi = (float(x) for x in regime)
        except (TypeError, ValueError):
            raise ValueError(f"regime must be '400MF', '360MF-400MF' or a (lo, hi) pair of flops; got {regime!r}")
    if not 0 <= lo < hi:
        raise ValueError(f"regime needs 0 <= lo < hi flops, got ({lo:g}, {hi:g}); e.g. (360e6, 400e6)")
    return lo, hi


def sample(space, n: int, regime="400MF", seed: int = 0, resolution: int = 224, max_tries: Optional[int] = None):
    """n distinct specs of ``space`` whose flops (at ``resolution``) fall in ``regime``, reproducible from ``seed``.

    Draws in order from numpy's default_rng(seed), keeps a spec when its network (the resolved AnyNetSpec) is new,
    its flops are in the regime and it meets the space's params/acts limits; stops at n. ``max_tries`` (default
    20000 per model) bounds the draws; running out is a ValueError.
    """
    sp = get_space(space)
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of models, got {n}")
    bounds = parse_regime(regime)
    limits = sp.limits(bounds[1] if bounds else None)
    max_tries = int(max_tries) if max_tries is not None else 20000 * int(n)
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for _ in range(max_tries):
        spec = sp.build(sp.draw(rng))
        if spec is None:
            continue
        net = spec.resolved()
        if net in seen:
            continue
        cx = complexity(net, resolution)
        if bounds and not bounds[0] <= cx["flops"] <= bounds[1]:
            continue
        if any(cx[key] > limit for key, limit in limits.items()):
            continue
        seen.add(net)
        out.append(spec)
        if len(out) == int(n):
            return out
    where = f"in {bounds[0] / 1e6:g}-{bounds[1] / 1e6:g} MF" if bounds else ""
    raise ValueError(f"found only {len(out)} of {n} {sp.name} models {where} in {max_tries} draws; widen the regime, "
                     "ask for fewer models or raise max_tries")
