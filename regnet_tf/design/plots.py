"""PNG plots of a design-space population: error EDFs, a statistic vs error with the bootstrap band, width profiles.

matplotlib is an optional extra (``pip install "regnet-tf[plot]"``), imported inside the functions only
(`regnet_tf.plotting`). Each function draws on its own figure and writes one PNG to ``path`` (any directory must
exist).
"""

from __future__ import annotations

import numpy as np

from regnet_tf import plotting
from regnet_tf.design import stats
from regnet_tf.zoo import to_anynet


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
    x, e = stats.finite_pair(values, errors, "values", "errors")
    b = stats.bootstrap(x, e, seed=seed, **bootstrap_kw)
    fig = plotting.figure((5.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.axvspan(b.lo, b.hi, color="tab:blue", alpha=0.25, lw=0)
    ax.axvline(b.best, color="black", lw=1.5)
    ax.scatter(x, e, s=10, alpha=0.6, color="tab:gray")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel("error")
    ax.set_title(f"{name}: best {b.best:.3g} [{b.lo:.3g}, {b.hi:.3g}]", fontsize=10)
    ax.grid(alpha=0.3)
    return plotting.save(fig, path)


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
