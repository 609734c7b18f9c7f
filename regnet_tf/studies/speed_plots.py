"""The speed study's plots, CSV files and HTML report (`regnet_tf.studies.speed` measures and analyses).

    paths = speed_plots.report(rows, "out/", rounds_rows)

Files: ``models.csv`` (one row per model: complexity, train and inference ms, the environment), ``rounds.csv`` (every
timed round), ``correlations.csv``, ``table4.csv`` and ``table7.csv`` (when the set holds the papers' pairs),
``exponents.csv`` (acts ~ flops^b per family, exact); plots ``runtime_<mode>.png`` (time per image against flops,
params and acts, a best-fit line and r per group: Figure 2 of the fast-scaling paper), ``acts_vs_flops.png``
(Figures 12 and 18 of the RegNet paper, analytic) and ``pareto_<mode>.png`` (time per image against the papers'
top-1, per family: Revisiting ResNets Figures 1 and 4); ``report.html`` shows them all with the tables.
"""

from __future__ import annotations

import os

import numpy as np

from regnet_tf import plotting
from regnet_tf.studies import speed, speed_analysis

LABELS = {"flops": "GMACs (multiply-adds)", "params": "params (M)", "acts": "activations (M)"}
UNITS = {"flops": 1e9, "params": 1e6, "acts": 1e6}


def _series(rows):
    """(label, rows) per plotted line: each strategy of each base (with the base), or each family."""
    scaled = [r for r in rows if r.get("strategy")]
    if not scaled:
        return [(f, [r for r in rows if r["family"] == f]) for f in dict.fromkeys(r["family"] for r in rows)]
    out = []
    many = len({r["base"] for r in scaled}) > 1
    for base in dict.fromkeys(r["base"] for r in scaled):
        for strategy in dict.fromkeys(r["strategy"] for r in scaled if r["base"] == base):
            members = [r for r in rows if r["base"] == base and r.get("strategy") in (strategy, "")]
            out.append((f"{base} {strategy}" if many else strategy, members))
    return out


def plot_runtime(rows, path, mode="train", title="") -> str:
    """Time per image against flops, params and acts (three panels), a least-squares line and Pearson r per series."""
    key = f"{mode}_ms_per_image"
    rows = [r for r in rows if r.get(key) is not None]
    if not rows:
        raise ValueError(f"no {mode} times to plot: time the models with mode {mode!r}")
    fig = plotting.figure((13.5, 4.2))
    for j, metric in enumerate(speed_analysis.METRICS):
        ax = fig.add_subplot(1, 3, j + 1)
        for i, (label, members) in enumerate(_series(rows)):
            x = np.array([r[metric] / UNITS[metric] for r in members])
            y = np.array([r[key] for r in members])
            order = np.argsort(x)
            r = speed_analysis.pearson(x, y)
            ax.scatter(x, y, s=18, color=f"C{i % 10}", label=f"{label} (r={r:.2f})" if r is not None else label)
            if x.size >= 2 and np.ptp(x) > 0:
                k, c = np.polyfit(x, y, 1)
                ax.plot(x[order], k * x[order] + c, "-", lw=1, color=f"C{i % 10}")
        pooled = speed_analysis.pearson([r[metric] for r in rows], [r[key] for r in rows])
        ax.set_title(f"all: r={pooled:.2f}" if pooled is not None else "", fontsize=10)
        ax.set_xlabel(LABELS[metric])
        ax.set_ylabel(f"{mode} ms per image")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return plotting.save(fig, path)


def plot_acts_vs_flops(exponents, path) -> str:
    """Activations against flops (log-log) per family, with the fitted power law
    (`speed_analysis.activation_exponents`)."""
    fig = plotting.figure((5.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for i, (family, e) in enumerate(exponents.items()):
        flops = np.array([p[1] for p in e["points"]], dtype=np.float64)
        acts = np.array([p[2] for p in e["points"]], dtype=np.float64)
        ax.scatter(flops / 1e9, acts / 1e6, s=18, color=f"C{i}")
        xs = np.geomspace(flops.min(), flops.max(), 50)
        ax.plot(xs / 1e9, np.exp(e["a"]) * xs ** e["b"] / 1e6, "-", color=f"C{i}",
                label=f"{family}: acts ~ flops^{e['b']:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GMACs (multiply-adds), registered resolution")
    ax.set_ylabel("activations (M)")
    ax.set_title("exact counts (RegNet paper, Figures 12 and 18)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return plotting.save(fig, path)


def plot_pareto(rows, path, mode="train", device="") -> str:
    """Measured time per image (log x) against the papers' top-1, one line per family."""
    points = speed_analysis.pareto(rows, mode)
    if not points:
        raise ValueError("no model with both a time and a paper top-1: use --set table4, table7 or pareto_regnet, "
                         "or recipes that carry paper_top1")
    fig = plotting.figure((6.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, (family, pts) in enumerate(points.items()):
        t, top1, names = zip(*pts)
        ax.plot(t, top1, "o-", color=f"C{i}", ms=4, label=family)
        for x, y, n in pts:
            ax.annotate(n.replace("fast_scaling_", "").replace("fast_scaled_", ""), (x, y), fontsize=6,
                        xytext=(3, -8), textcoords="offset points")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # loaded already by plotting.figure

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 10, 20, 50, 100, ... as plain numbers
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{mode} ms per image, measured{f' ({device})' if device else ''}")
    ax.set_ylabel("top-1 % (the papers')")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return plotting.save(fig, path)


def _fmt(v, spec="{:.3g}"):
    return "-" if v is None else spec.format(v) if isinstance(v, float) else str(v)


def report(rows, out_dir, rounds_rows=None, title="Speed study") -> dict:
    """Writes the CSV files, the plots that apply and ``report.html`` into ``out_dir``; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    p = lambda name: os.path.join(out_dir, name)  # noqa: E731
    paths = {"models": speed.write_csv(rows, p("models.csv"))}
    if rounds_rows:
        paths["rounds"] = speed.write_csv(rounds_rows, p("rounds.csv"))
    modes = [m for m in speed.MODES if any(r.get(f"{m}_ms_per_image") is not None for r in rows)]
    corr = [c for m in modes for c in speed_analysis.correlations(rows, m)]
    if corr:
        paths["correlations"] = speed.write_csv(corr, p("correlations.csv"))
    t4 = speed_analysis.table4(rows)
    t7 = [{"mode": m, **x} for m in modes for x in speed_analysis.table7_speedups(rows, m)]
    if t4:
        paths["table4"] = speed.write_csv(t4, p("table4.csv"))
    if t7:
        paths["table7"] = speed.write_csv(t7, p("table7.csv"))
    exps = speed_analysis.activation_exponents()
    paths["exponents"] = speed.write_csv(
        [{"family": f, "b": e["b"], "models": len(e["points"])} for f, e in exps.items()], p("exponents.csv"))
    images = {}
    device = rows[0].get("device") or ""
    for m in modes:
        images[f"runtime_{m}"] = plot_runtime(rows, p(f"runtime_{m}.png"), m, f"{m}, {device}")
        if speed_analysis.pareto(rows, m):
            images[f"pareto_{m}"] = plot_pareto(rows, p(f"pareto_{m}.png"), m, device)
    images["acts_vs_flops"] = plot_acts_vs_flops(exps, p("acts_vs_flops.png"))
    paths.update(images)
    env = {k: rows[0].get(k) for k in ("device", "tensorflow", "keras", "threads", "precision", "xla", "load", "date")}
    body = "<p>" + ", ".join(f"{k}: {v}" for k, v in env.items()) + "</p>"
    body += "<h2>models</h2>" + plotting.html_table(
        ["model", "px", "GMACs", "params M", "acts M", "train ms/img", "infer ms/img", "paper top-1"],
        [[r["name"], r["resolution"], f"{r['flops'] / 1e9:.3f}", f"{r['params'] / 1e6:.2f}", f"{r['acts'] / 1e6:.2f}",
          _fmt(r.get("train_ms_per_image")), _fmt(r.get("infer_ms_per_image")), _fmt(r.get("top1"))] for r in rows])
    if corr:
        body += "<h2>Pearson r of time per image (paper, Figure 2)</h2>" + plotting.html_table(
            ["mode", "scope", "group", "metric", "n", "r", "paper"],
            [[c["mode"], c["scope"], c["group"], c["metric"], c["n"], _fmt(c["r"], "{:.3f}"), c["paper"] or "-"]
             for c in corr])
    if t4:
        body += "<h2>EfficientNet / RegNetY time ratios (RegNet paper, Table 4: V100)</h2>" + plotting.html_table(
            ["EfficientNet", "RegNetY", "infer ratio", "paper", "train ratio", "paper"],
            [[t["efficientnet"], t["regnet"], _fmt(t["infer_ratio"], "{:.2f}x"), f"{t['paper_infer_ratio']:.2f}x",
              _fmt(t["train_ratio"], "{:.2f}x"), f"{t['paper_train_ratio']:.2f}x"] for t in t4])
    if t7:
        body += "<h2>ResNet-RS speedups over EfficientNet (Revisiting ResNets, Table 7)</h2>" + plotting.html_table(
            ["mode", "ResNet-RS", "EfficientNet", "ours", "paper V100", "paper TPUv3"],
            [[t["mode"], t["resnet_rs"], t["efficientnet"], _fmt(t["ours"], "{:.2f}x"), f"{t['paper_v100']:.2f}x",
              f"{t['paper_tpu']:.2f}x"] for t in t7])
    body += "<h2>acts ~ flops^b (exact)</h2>" + plotting.html_table(
        ["family", "b", "models"], [[f, f"{e['b']:.3f}", len(e["points"])] for f, e in exps.items()])
    body += plotting.images_html(images)
    paths["report"] = plotting.write_html(p("report.html"), title, body)
    return paths
