"""Population statistics of a design space: error EDFs, the empirical bootstrap, the quantized linear fit.

Everything follows the RegNet paper (Radosavovic et al. 2020, section 3) and, for the complexity-normalized EDF, the
NDS paper it builds on (Radosavovic et al. 2019, "On Network Design Spaces for Visual Recognition"):

- `edf`: the error EDF of eq. (1), F(e) = (1/n) sum_i 1[e_i < e] (strict "<"), and `edf_label`, the "[min|mean]"
  legend of the paper's figures (the mean error is the area above the curve).
- `complexity_weights` / `normalized_edf`: the NDS paper's normalized EDF, F(e) = sum_i w_i 1[e_i < e], with weights
  that make the complexity (e.g. flops) distribution of a population uniform over k bins: each of the m_j models in
  bin j gets w = 1 / (k m_j). The RegNet paper itself compares spaces inside one flop regime (e.g. 360-400MF), where
  the plain EDF is enough; the normalized EDF is for populations that span different complexity ranges.
- `bootstrap`: the paper's footnote 4: sample 25% of the (x_i, e_i) pairs with replacement, keep the x of the
  minimum-error pair, repeat 10^4 times; the 95% interval of those x and their median (the "best value").
- `fit_quantized_linear`: the section 3.3 fit of a model's per-block widths by the quantized linear function of
  eqs. (2)-(4), a grid search over (w0, wa, wm) minimising e_fit, the mean absolute log-ratio of predicted to observed
  per-block widths.

Pure numpy: no TensorFlow, no matplotlib (plots are in regnet_tf/design/plots.py).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np


def finite_vector(a, name: str) -> np.ndarray:
    """`a` as a flat float64 array; a ValueError naming `name` if it is empty or has NaN / infinite entries."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name} is empty; pass at least one value")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has NaN or infinite entries; drop unfinished runs before the statistics")
    return x


def finite_pair(a, b, na: str, nb: str):
    """`finite_vector` of `a` and `b`, which must have one entry per model each (a ValueError names them if not)."""
    x, y = finite_vector(a, na), finite_vector(b, nb)
    if x.size != y.size:
        raise ValueError(f"{na} and {nb} need one entry per model, got {x.size} and {y.size}")
    return x, y


# ---- Error EDF (eq. 1) ---- #


def _weighted_edf(e: np.ndarray, w: np.ndarray, x):
    if x is not None:  # eq. (1) itself, strict "<", at the given points
        x = np.asarray(x, dtype=np.float64)
        order = np.argsort(e, kind="stable")
        cw = np.concatenate([[0.0], np.cumsum(w[order])])
        return x, cw[np.searchsorted(e[order], x, side="left")]
    xs, inverse = np.unique(e, return_inverse=True)
    return xs, np.cumsum(np.bincount(inverse, weights=w, minlength=xs.size))


def edf(errors, x=None):
    """The error EDF of eq. (1): F(e) = (1/n) sum_i 1[e_i < e], the fraction of models with error below e.

    With ``x`` (points at which to evaluate), returns ``(x, F(x))`` exactly as eq. (1) defines it: a model whose error
    equals x is not counted (strict "<"). Without ``x``, returns the step function for plotting: ``xs`` are the
    sorted distinct errors and ``F[k]`` is the value of eq. (1) on the open interval (xs[k], xs[k+1]), i.e. the
    fraction with error <= xs[k]; draw it with ``step(xs, F, where="post")``. F[-1] is 1.
    """
    e = finite_vector(errors, "errors")
    return _weighted_edf(e, np.full(e.size, 1.0 / e.size), x)


def edf_label(errors, weights=None, fmt: str = "{:.1f}") -> str:
    """The paper's legend text "[min|mean]" (e.g. "[39.1|49.0]"); ``weights`` gives the weighted mean."""
    e = finite_vector(errors, "errors")
    mean = float(np.average(e, weights=None if weights is None else finite_pair(weights, e, "weights", "errors")[0]))
    return f"[{fmt.format(float(e.min()))}|{fmt.format(mean)}]"


# ---- Complexity-normalized EDF (NDS paper) ---- #


def complexity_bins(complexities: Sequence, k: int = 10, log: bool = False) -> np.ndarray:
    """k equal bins spanning all the given complexity arrays (one per population), shared so spaces compare fairly.

    ``log=True`` makes the bins equal in log-complexity (for populations over several orders of magnitude); the NDS
    paper bins the complexity range itself (the default).
    """
    if int(k) != k or k < 1:
        raise ValueError(f"k (the number of complexity bins) must be a positive integer, got {k}")
    c = np.concatenate([finite_vector(a, "complexity") for a in complexities])
    if log:
        if np.any(c <= 0):
            raise ValueError("log-spaced bins need positive complexities; pass log=False")
        return np.exp(np.linspace(np.log(c.min()), np.log(c.max()), int(k) + 1))
    lo, hi = float(c.min()), float(c.max())
    if hi == lo:  # one complexity value: one bin around it
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(k) + 1)


def _bin_index(c: np.ndarray, edges: np.ndarray) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bin edges must be an increasing 1-D array of at least 2 values, got {edges}")
    if np.any(c < edges[0]) or np.any(c > edges[-1]):
        raise ValueError(
            f"complexities span [{c.min():g}, {c.max():g}], outside the bins [{edges[0]:g}, {edges[-1]:g}];"
            " build the edges from every population (complexity_bins)"
        )
    return np.clip(np.searchsorted(edges, c, side="right") - 1, 0, edges.size - 2)  # last bin closed on the right


def complexity_weights(complexity, edges=None, k: int = 10, reference=None) -> np.ndarray:
    """Per-model weights (summing to 1) that give the population a target complexity distribution over bins.

    Target ``reference=None``: uniform over the bins (NDS paper: each of the m_j models of bin j gets 1/(k m_j)).
    Bins with no model cannot carry mass, so k counts only the occupied bins and the weights still sum to 1
    (identical to the paper's formula when every bin holds a model). ``reference`` (the complexities of another
    population) instead targets that population's histogram over the same bins: w = p_j / m_j, renormalised over the
    bins both populations occupy. ``edges`` default: ``complexity_bins([complexity, reference], k)``.
    """
    c = finite_vector(complexity, "complexity")
    if edges is None:
        edges = complexity_bins([c] if reference is None else [c, reference], k)
    edges = np.asarray(edges, dtype=np.float64)
    nb = edges.size - 1
    idx = _bin_index(c, edges)
    m = np.bincount(idx, minlength=nb).astype(np.float64)
    if reference is None:
        target = (m > 0).astype(np.float64)
    else:
        target = np.bincount(_bin_index(finite_vector(reference, "reference"), edges), minlength=nb).astype(np.float64)
    target = np.where(m > 0, target, 0.0)
    if target.sum() == 0:
        raise ValueError("the population and the reference share no complexity bin; use wider or fewer bins")
    per_bin = np.divide(target / target.sum(), m, out=np.zeros(nb), where=m > 0)
    return per_bin[idx]


def normalized_edf(errors, complexity, x=None, edges=None, k: int = 10, reference=None):
    """The complexity-normalized error EDF, F(e) = sum_i w_i 1[e_i < e] (weights of `complexity_weights`).

    Returns ``(xs, F)`` like `edf` (a step function, or eq. (1) at ``x``). To compare several spaces pass the same
    ``edges`` to each (``complexity_bins([flops_a, flops_b])``) so that all are normalized to one distribution.
    """
    e, c = finite_pair(errors, complexity, "errors", "complexity")
    return _weighted_edf(e, complexity_weights(c, edges=edges, k=k, reference=reference), x)


# ---- Empirical bootstrap (footnote 4) ---- #


class Bootstrap(NamedTuple):
    lo: float  # lower end of the (100 - alpha)% interval containing the best models' statistic
    best: float  # the median: the most likely best value
    hi: float  # upper end of the interval


def bootstrap_winners(values, errors, frac: float = 0.25, repeats: int = 10_000, seed: int = 0) -> np.ndarray:
    """The statistic of the minimum-error pair in each of ``repeats`` samples (with replacement) of frac*n pairs."""
    x, e = finite_pair(values, errors, "values", "errors")
    if not 0 < frac <= 1:
        raise ValueError(f"frac (the sample fraction) must be in (0, 1], got {frac}")
    if int(repeats) != repeats or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats}")
    m = max(1, int(round(frac * x.size)))
    draws = np.random.default_rng(seed).integers(0, x.size, size=(int(repeats), m))
    return x[draws[np.arange(draws.shape[0]), np.argmin(e[draws], axis=1)]]


def bootstrap(values, errors, frac: float = 0.25, repeats: int = 10_000, alpha: float = 5, seed: int = 0) -> Bootstrap:
    """The paper's empirical bootstrap: the (100 - alpha)% interval and median of the best models' statistic.

    Given n pairs (x_i, e_i): (1) sample frac * n pairs with replacement (at least one), (2) keep the x of the pair
    with minimum error (the first one on ties), (3) repeat ``repeats`` times, (4) the alpha/2 and 100 - alpha/2
    percentiles of the kept x (numpy's linear interpolation) give the interval, their median the best value.
    """
    if not 0 < alpha < 100:
        raise ValueError(f"alpha (percent outside the interval) must be in (0, 100), got {alpha}")
    w = bootstrap_winners(values, errors, frac=frac, repeats=repeats, seed=seed)
    lo, best, hi = np.percentile(w, [alpha / 2, 50, 100 - alpha / 2])
    return Bootstrap(float(lo), float(best), float(hi))


# ---- Quantized linear fit (section 3.3) ---- #


def quantized_linear_widths(w0, wa, wm, d: int, q: int = 8) -> np.ndarray:
    """Per-block widths of eqs. (2)-(4), broadcast over arrays of (w0, wa, wm): shape (..., d).

    u_j = w0 + wa j, s_j = log(u_j / w0) / log(wm), w_j = w0 wm^round(s_j), rounded to a multiple of q (q = 1: the
    paper's formula; q = 8: as `regnet_tf.models.regnet.generate_regnet`, whose per-block ``ws_all`` this equals).
    """
    w0, wa, wm = (np.asarray(v, dtype=np.float64)[..., None] for v in (w0, wa, wm))
    j = np.arange(int(d), dtype=np.float64)
    s = np.round(np.log((w0 + wa * j) / w0) / np.log(wm))
    return np.round(w0 * np.power(wm, s) / q) * q


def e_fit(ws_per_block, w0, wa, wm, q: int = 8) -> float:
    """The fitting error: mean over blocks of |log(predicted width / observed width)|."""
    w = finite_vector(ws_per_block, "ws_per_block")
    pred = np.maximum(quantized_linear_widths(w0, wa, wm, w.size, q), 1e-9)
    return float(np.mean(np.abs(np.log(pred / w))))


class Fit(NamedTuple):
    w0: float
    wa: float
    wm: float
    e_fit: float


def _grid_costs(w, logw, W0, WA, WM, q, num_stages):
    pred = np.maximum(quantized_linear_widths(W0, WA, WM, w.size, q), 1e-9)
    cost = np.mean(np.abs(np.log(pred) - logw), axis=-1)
    if num_stages is not None:  # paper: ignore combinations that give a different number of stages
        u = W0[..., None] + WA[..., None] * np.arange(w.size)
        ks = np.round(np.log(u / W0[..., None]) / np.log(WM[..., None]))
        n = ks.max(axis=-1) + 1
        distinct = 1 + np.sum(np.diff(np.sort(pred, axis=-1), axis=-1) > 0, axis=-1)
        cost = np.where((n == num_stages) & (distinct == num_stages), cost, np.inf)
    return cost


def fit_quantized_linear(
    ws_per_block,
    q: int = 8,
    num_stages: Optional[int] = None,
    w0_range=(8.0, 1024.0),
    wa_range=(0.5, 1024.0),
    wm_range=(1.2, 4.0),
    n: int = 24,
    levels: int = 10,
    keep: int = 8,
) -> Fit:
    """Fit eqs. (2)-(4) to a model's per-block widths: d = the model's depth, grid search over (w0, wa, wm).

    Minimises e_fit = mean_j |log(w_pred_j / w_j)| (the paper's "mean log-ratio of predicted to observed per-block
    widths"; absolute so that over- and under-prediction do not cancel). Coarse to fine: an n^3 grid (w0 and wa
    log-spaced, wm linear; the model's own widths are added to the w0 candidates, since a good fit starts at the
    first width), then ``levels`` rounds of a 9^3 grid of half the previous spacing around each of the ``keep`` best
    points. ``num_stages`` (e.g. 4) keeps only parameters that give exactly that many stages, as the paper does for
    four-stage networks. Returns ``Fit(w0, wa, wm, e_fit)``.
    """
    w = finite_vector(ws_per_block, "ws_per_block")
    if np.any(w <= 0):
        raise ValueError("ws_per_block must be positive widths (one per block)")
    for name, (lo, hi) in (("w0_range", w0_range), ("wa_range", wa_range), ("wm_range", wm_range)):
        if not 0 < lo < hi:
            raise ValueError(f"{name} must be (low, high) with 0 < low < high, got {(lo, hi)}")
    if wm_range[0] <= 1:
        raise ValueError(f"wm_range must be above 1 (wm = 1 has no stages), got {wm_range}")
    logw = np.log(w)
    # coordinates: log w0, log wa, wm
    lo = np.array([np.log(w0_range[0]), np.log(wa_range[0]), wm_range[0]])
    hi = np.array([np.log(w0_range[1]), np.log(wa_range[1]), wm_range[1]])
    axes = [np.linspace(lo[i], hi[i], n) for i in range(3)]
    own = np.log(np.unique(w[(w >= w0_range[0]) & (w <= w0_range[1])]))
    axes[0] = np.union1d(axes[0], own)
    step = (hi - lo) / (n - 1)

    def evaluate(a0, a1, a2):
        g0, g1, g2 = np.meshgrid(a0, a1, a2, indexing="ij")
        pts = np.stack([g0.ravel(), g1.ravel(), g2.ravel()], axis=1)
        costs = np.concatenate([
            _grid_costs(w, logw, np.exp(c[:, 0]), np.exp(c[:, 1]), c[:, 2], q, num_stages)
            for c in np.array_split(pts, max(1, pts.shape[0] * w.size // 2_000_000 + 1))
        ])
        return pts, costs

    pts, costs = evaluate(*axes)
    order = np.argsort(costs, kind="stable")[:keep]
    cand_p, cand_c = pts[order], costs[order]
    for _ in range(levels):
        step = step / 2
        new_p, new_c = [cand_p], [cand_c]
        for p in cand_p:
            local = [np.clip(p[i] + step[i] * np.arange(-4, 5), lo[i], hi[i]) for i in range(3)]
            local[0] = np.union1d(local[0], own[(own >= local[0][0]) & (own <= local[0][-1])])
            pp, cc = evaluate(*local)
            new_p.append(pp)
            new_c.append(cc)
        allp, allc = np.concatenate(new_p), np.concatenate(new_c)
        allp, first = np.unique(allp, axis=0, return_index=True)
        allc = allc[first]
        order = np.argsort(allc, kind="stable")[:keep]
        cand_p, cand_c = allp[order], allc[order]
    if not np.isfinite(cand_c[0]):
        raise ValueError(f"no (w0, wa, wm) in the ranges gives {num_stages} stages; widen the ranges or drop it")
    b = cand_p[0]
    return Fit(float(np.exp(b[0])), float(np.exp(b[1])), float(b[2]), float(cand_c[0]))
