"""PNG plots of a design-space population: error EDFs, a statistic vs error with the bootstrap band, width profiles,
parameter trends over flop regimes (Fig. 11) and error vs learning rate / weight decay (Figs. 21-22).

matplotlib is an optional extra (``pip install "regnet-tf[plot]"``), imported inside the functions only
(`regnet_tf.plotting`). Each function draws on its own figure and writes one PNG to ``path`` (any directory must
exist). `plot_trends` and `plot_hparams` return `Drawn(path, bands)`: the bootstrap numbers they drew, so that
reports can tabulate them and tests can check them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from regnet_tf import plotting
from regnet_tf.design import stats
from regnet_tf.zoo import to_anynet

REGNET_PARAMS = ("d", "w0", "wa", "wm", "g", "b")  # Fig. 11; "b" is the paper's bottleneck ratio 1 / spec b
ANYNET_PARAMS = ("depth", "first_width", "last_width")
HPARAMS = ("lr", "wd", "lr*wd")
LOG_PARAMS = frozenset({"w0", "wa", "flops", "params", "acts", "lr", "wd", "lr*wd"})


class Drawn(NamedTuple):
    """What a plot with bootstrap bands drew: the PNG path and the bands (see the function for their layout)."""

    path: str
    bands: dict


def plot_edfs(errors_by_name, path, complexity_by_name=None, k: int = 10, title: str = "") -> str:
    """Error EDFs of several populations on one plot, legend "[min|mean] name" as in the paper.

    ``complexity_by_name`` ({name: flops}) switches to the complexity-normalized EDF, with bins shared by all.
    """
    if not errors_by_name:
        raise ValueError("errors_by_name is empty; pass {name: errors} for at least one population")
    edges = None
    if complexity_by_name is not None:
        missing = set(errors_by_name) - set(complexity_by_name)
        if missing:
            raise ValueError(f"complexity_by_name lacks {sorted(missing)}; give flops for every population")
        edges = stats.complexity_bins([complexity_by_name[n] for n in errors_by_name], k)
    fig = plotting.figure((5.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for name, errors in errors_by_name.items():
        e = np.asarray(errors, dtype=np.float64)
        if edges is None:
            xs, f = stats.edf(e)
            label = stats.edf_label(e)
        else:
            w = stats.complexity_weights(complexity_by_name[name], edges=edges)
            xs, f = stats.normalized_edf(e, complexity_by_name[name], edges=edges)
            label = stats.edf_label(e, weights=w)
        ax.step(np.concatenate([[xs[0]], xs]), np.concatenate([[0.0], f]), where="post", label=f"{label} {name}")
    ax.set_xlabel("error")
    ax.set_ylabel("normalized cumulative prob." if edges is not None else "cumulative prob.")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    return plotting.save(fig, path)


def plot_statistic(values, errors, path, name: str, log: bool = False, seed: int = 0, **bootstrap_kw) -> str:
    """A statistic vs error scatter with the bootstrap's 95% band (shaded) and best value (black line), as Fig. 2."""
    fig = plotting.figure((5.0, 4.0))
    _band_panel(fig.add_subplot(1, 1, 1), values, errors, name, log, seed, bootstrap_kw)
    return plotting.save(fig, path)


def _band_panel(ax, values, errors, name, log, seed, bootstrap_kw) -> stats.Bootstrap:
    """Error vs ``values`` on ``ax`` with the bootstrap band and best line; returns the bootstrap."""
    x, e = stats.finite_pair(values, errors, name, "errors")
    if log and np.any(x <= 0):
        raise ValueError(f"{name} has values <= 0, which a log axis cannot show; pass log=False")
    b = stats.bootstrap(x, e, seed=seed, **bootstrap_kw)
    ax.axvspan(b.lo, b.hi, color="tab:blue", alpha=0.25, lw=0)
    ax.axvline(b.best, color="black", lw=1.5)
    ax.scatter(x, e, s=10, alpha=0.6, color="tab:gray")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel("error")
    ax.set_title(f"{name}: best {b.best:.3g} [{b.lo:.3g}, {b.hi:.3g}]", fontsize=10)
    ax.grid(alpha=0.3)
    return b


def block_widths(spec_or_name) -> np.ndarray:
    """Per-block widths of an AnyNet/RegNet spec or registry name (`regnet_tf.zoo.to_anynet`)."""
    spec = to_anynet(spec_or_name)
    return np.repeat(np.asarray(spec.ws, dtype=np.float64), np.asarray(spec.ds))


def plot_widths(specs_with_errors, path, top: int = 5, fit: bool = True) -> str:
    """Per-block width profiles (log y) of the ``top`` lowest-error models, as Fig. 8.

    ``specs_with_errors``: (per-block widths, error) pairs; `block_widths` gives an AnyNet/RegNet spec's. With
    ``fit`` each profile gets its quantized linear fit (dashed) and the legend its e_fit.
    """
    pairs = sorted(specs_with_errors, key=lambda p: float(p[1]))[: int(top)]
    if not pairs:
        raise ValueError("specs_with_errors is empty; pass (spec, error) pairs")
    fig = plotting.figure((5.5, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for i, (widths, err) in enumerate(pairs):
        w = stats.finite_vector(widths, "per-block widths")
        j = np.arange(w.size)
        color = f"C{i % 10}"
        label = f"error {float(err):.2f}"
        if fit:
            f = stats.fit_quantized_linear(w)
            ax.plot(j, stats.quantized_linear_widths(f.w0, f.wa, f.wm, w.size), "--", color=color, lw=1)
            label += f", e_fit {f.e_fit:.3f}"
        ax.plot(j, w, "-", color=color, lw=2, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("block index j")
    ax.set_ylabel("width w_j")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return plotting.save(fig, path)


# ---- Populations over flop regimes (Fig. 11) and hyperparameters (Figs. 21-22) ---- #


def record_value(record, name) -> float:
    """A sweep record's value of parameter ``name``: a RegNet spec field (d, w0, wa, wm, g), "b" (the paper's
    bottleneck ratio, 1 / the spec's multiplier), flops / params / acts, lr / wd / "lr*wd" (``record["hparams"]``),
    or depth / first_width / last_width of the per-block widths (any spec kind)."""
    spec = record["spec"]
    if name == "b" and spec.get("kind") == "regnet":
        return 1.0 / float(spec["b"])
    if name in ("d", "w0", "wa", "wm", "g") and spec.get("kind") == "regnet":
        return float(spec[name])
    if name in ("flops", "params", "acts"):
        return float(record["complexity"][name])
    if name in HPARAMS:
        h = record.get("hparams") or {}
        if "lr" not in h or "wd" not in h:
            raise ValueError(f"record {record.get('index')} has no hparams lr and wd")
        return float(h["lr"]) * float(h["wd"]) if name == "lr*wd" else float(h[name])
    if name in ANYNET_PARAMS:
        from regnet_tf.design import sweep

        w = block_widths(sweep.spec_from_dict(spec))
        return float({"depth": w.size, "first_width": w[0], "last_width": w[-1]}[name])
    raise ValueError(f"unknown parameter {name!r} for a {spec.get('kind')} spec; valid: "
                     f"{', '.join(REGNET_PARAMS + ('flops', 'params', 'acts') + HPARAMS + ANYNET_PARAMS)}")


def _default_params(records):
    """Fig. 11's parameters for RegNet specs (AnyNet depth/width statistics otherwise), those that vary; all of
    them if none varies (e.g. one model per regime)."""
    regnet = all(r["spec"].get("kind") == "regnet" for r in records)
    names = REGNET_PARAMS if regnet else ANYNET_PARAMS
    varying = [n for n in names if len({record_value(r, n) for r in records}) > 1]
    return varying or list(names)


def plot_trends(records_by_regime, path, params=None, seed: int = 0, title: str = "", **bootstrap_kw) -> Drawn:
    """Parameter trends over flop regimes, as Fig. 11: per parameter a panel, x the regimes in the given order, the
    bootstrap's 95% range of the best models' value per regime shaded blue, the likely best (median) as a black
    line, every model a faint point.

    ``records_by_regime``: ordered {regime label: sweep records}; an empty regime keeps its place on the x axis but
    gets no band. ``params``: parameter names (`record_value`), default the RegNet parameters d, w0, wa, wm, g and
    b = 1 / spec b that vary. Returns ``Drawn(path, bands)`` with bands = {param: [(regime, lo, best, hi), ...]}
    (regimes with records only, in order). ``bootstrap_kw`` goes to `stats.bootstrap` (frac, repeats, alpha).
    """
    regimes = [(str(k), list(v or [])) for k, v in dict(records_by_regime).items()]
    every = [r for _, rs in regimes for r in rs]
    if not every:
        raise ValueError("records_by_regime holds no records; pass {regime: sweep records} with at least one")
    names = list(params) if params is not None else _default_params(every)
    if not names:
        raise ValueError("params is empty; pass parameter names such as ('d', 'w0', 'wa', 'wm', 'g', 'b')")
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = plotting.figure((3.3 * cols, 2.9 * rows + (0.3 if title else 0.0)))
    rng = np.random.default_rng(seed)
    bands = {}
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs, out = [], []
        for j, (regime, rs) in enumerate(regimes):
            if not rs:
                continue
            v = stats.finite_vector([record_value(r, name) for r in rs], name)
            e = stats.finite_vector([r["error"] for r in rs], "errors")
            b = stats.bootstrap(v, e, seed=seed, **bootstrap_kw)
            ax.scatter(j + rng.uniform(-0.12, 0.12, v.size), v, s=6, alpha=0.25, color="tab:gray", lw=0)
            xs.append(j)
            out.append((regime, b.lo, b.best, b.hi))
        lo, best, hi = (np.array([t[k] for t in out]) for k in (1, 2, 3))
        if len(xs) == 1:  # one regime: a bar instead of a band
            ax.fill_between([xs[0] - 0.25, xs[0] + 0.25], lo[0], hi[0], color="tab:blue", alpha=0.3, lw=0)
        else:
            ax.fill_between(xs, lo, hi, color="tab:blue", alpha=0.3, lw=0)
        ax.plot(xs, best, "-o", color="black", lw=1.5, ms=3)
        if name in LOG_PARAMS and all(record_value(r, name) > 0 for r in every):
            ax.set_yscale("log")
        ax.set_xticks(range(len(regimes)))
        ax.set_xticklabels([k for k, _ in regimes], fontsize=8, rotation=30 if len(regimes) > 4 else 0)
        ax.set_xlim(-0.5, len(regimes) - 0.5)
        ax.set_title(f"{name} (1 / bottleneck multiplier)" if name == "b" else name, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        bands[name] = out
    if title:
        fig.suptitle(title, fontsize=11)
    return Drawn(plotting.save(fig, path), bands)


def plot_hparams(records, path, seed: int = 0, title: str = "", **bootstrap_kw) -> Drawn:
    """Error vs learning rate, weight decay and lr*wd (log x), as Fig. 21 (top) / Fig. 22: per panel the models, the
    bootstrap's 95% band of the best models' value and the best value (black line), as `plot_statistic`.

    Needs ``record["hparams"] = {"lr": ..., "wd": ...}`` in every record (a population that samples them per
    model). Returns ``Drawn(path, bands)`` with bands = {"lr" | "wd" | "lr*wd": stats.Bootstrap}.
    """
    records = list(records)
    if not records:
        raise ValueError("records is empty; pass the sweep records of a population")
    lacking = [r.get("index") for r in records if not {"lr", "wd"} <= set(r.get("hparams") or {})]
    if lacking:
        raise ValueError(f"{len(lacking)} of {len(records)} records (e.g. model {lacking[0]}) lack 'hparams' "
                         "{'lr', 'wd'}: sweep a population that samples the learning rate and weight decay per "
                         "model (launch/sweep.py --study figure_21; each record then stores them)")
    errors = [r["error"] for r in records]
    fig = plotting.figure((11.0, 3.6 + (0.3 if title else 0.0)))
    bands = {name: _band_panel(fig.add_subplot(1, 3, i + 1), [record_value(r, name) for r in records], errors,
                               name, True, seed, bootstrap_kw) for i, name in enumerate(HPARAMS)}
    if title:
        fig.suptitle(title, fontsize=11)
    return Drawn(plotting.save(fig, path), bands)
