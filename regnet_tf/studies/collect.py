"""The results of training runs in one table, and the study grids' figures drawn from it (`launch/collect.py`).

    rows = collect(["runs/a", "runs/b"])      # run directories, or directories holding them at any depth
    write_csv(rows, "out/runs.csv")
    paths = report(rows, "out")              # runs.csv, paper_points.csv, the plots that apply, report.html

A run is a directory holding `recipe.yaml` (the resolved recipe) and `metrics.jsonl` (launch/train.py's records).
One row per run: its grid and axis values, model, complexity (multiply-adds, params, acts of the spec trained at the
trained resolution and class count), steps done, the last top-1/top-5 of minival and validation, the eval split's
error (minival when the recipe holds minival out, as the trainer evaluates, else validation), the paper's number.

Figures: `fast_scaled_<base>_<schedule>.png` (fast-scaling paper, Figures 4-7: error vs flops and vs activations, one
line per strategy through the factors, starting at a run of the unscaled base recipe when there is one),
`fast_scaled_dWr_<schedule>.png` (Figures 8-9: dWr per base), `rs_scaling_e<epochs>.png` (Revisiting ResNets,
Figure 2: error vs flops, log-log, coloured by depth / width / resolution, with a power-law fit) and
`rs_scaling_depth_vs_width.png` (Figure 3: depth scaling vs width scaling per resolution and epoch budget, vs flops
where the paper plots TPU latency). Paper points are the recipes' `paper_top1`; the ResNet-RS paper gives no
per-point numbers for its scaling grid, so none are drawn there. Plots use finished runs only. No TensorFlow.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os

import yaml

from regnet_tf import files, plotting, zoo
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train.recipe_files import grid_point, list_grids

FAST = "fast_scaled_{base}_{strategy}_x{factor}_{schedule}"
RS = "rs_scaling_d{depth}_w{width}_r{res}_e{epochs}"
SPLITS = ("minival", "validation")
COLUMNS = ("run", "recipe", "grid", "data", "model", "image_size", "num_classes", "train_epochs", "steps",
           "total_steps", "finished", "eval_split", "top1", "top5", "error", "minival_top1", "minival_top5",
           "validation_top1", "validation_top5", "flops", "params", "acts", "paper_top1", "paper_error", "paper_ref")
RS_NO_PAPER = "no paper points: Revisiting ResNets gives its scaling grid as plots only (Figures 2-3)"
DEMO_NOTE = "DEMO: tiny runs on the demo data, not ImageNet and not the results of the papers"


def find_runs(paths):
    """The run directories (holding recipe.yaml) at or below each path, in order; errors name a path without any."""
    runs = []
    for path in paths:
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{path} is not a directory: give run directories (the --model_dir of "
                                    "launch/train.py) or directories holding them")
        found = sorted(d for d, _, files in os.walk(path) if "recipe.yaml" in files)
        if not found:
            raise ValueError(f"{path} holds no runs (no recipe.yaml in it or below): give the --model_dir of "
                             "launch/train.py runs, or a directory holding them")
        runs += found
    return list(dict.fromkeys(runs))


def read_metrics(model_dir):
    """The records of model_dir/metrics.jsonl ([] without it); a line cut short by a killed run is skipped."""
    path = os.path.join(model_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "split" in record:
                records.append(record)
    return records


def read_run(model_dir) -> dict:
    """One run's row (the keys of `COLUMNS` plus its grid's axes)."""
    path = os.path.join(model_dir, "recipe.yaml")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a recipe (a YAML mapping written by launch/train.py)")
    try:
        r = recipe_lib.from_dict(raw, name=raw.get("name", ""))
    except ValueError as e:
        raise ValueError(f"{path}: not a recipe this version reads ({e})") from e
    try:
        point = grid_point(r.name)
    except ValueError:  # a name off a grid's axis values: a run of a recipe file of its own
        point = None
    grid, axes = point or (None, {})
    s = r.model.scale
    row = {"run": model_dir, "recipe": r.name, "grid": grid.pattern if grid else "", **axes, "data": r.data.source,
           "model": f"{s['base']} x{s['factor']:g} {s['strategy']}" if s else r.model.name or r.model.kind,
           "image_size": r.data.image_size, "num_classes": r.data.num_classes, "train_epochs": r.train.epochs,
           "total_steps": r.total_steps(), "eval_split": "minival" if r.data.minival_shards > 0 else "validation"}
    row.update(zoo.complexity(r.spec(), r.data.image_size, r.data.num_classes))
    records = read_metrics(model_dir)
    row["steps"] = max((int(x.get("step", 0)) for x in records), default=0)
    for split in SPLITS:
        last = [x for x in records if x["split"] == split]
        for key in ("top1", "top5"):
            row[f"{split}_{key}"] = last[-1].get(key) if last else None
    row["top1"], row["top5"] = row[f"{row['eval_split']}_top1"], row[f"{row['eval_split']}_top5"]
    row["error"] = None if row["top1"] is None else round(100.0 - row["top1"], 6)
    row["finished"] = _finished(model_dir, records, row)
    row["paper_top1"], row["paper_ref"] = r.paper_top1, r.paper_ref
    row["paper_error"] = None if r.paper_top1 is None else round(100.0 - r.paper_top1, 6)
    return row


def _finished(model_dir, records, row):
    """The final evaluation is written: a validation record at the last step (at the early stop with patience);
    with minival, only the final evaluation writes validation."""
    steps = [int(x.get("step", 0)) for x in records if x["split"] == "validation"]
    if not steps or row["eval_split"] != "validation":
        return bool(steps)
    try:
        with open(os.path.join(model_dir, "best", "best.json"), encoding="utf-8") as f:
            stopped = json.load(f).get("stopped_at")
    except (OSError, ValueError):
        stopped = None
    return max(steps) >= (stopped or row["total_steps"])


def collect(paths):
    """The rows of every run at or below `paths`."""
    return [read_run(d) for d in find_runs(paths)]


def columns(rows):
    """`COLUMNS` with the grids' axis columns after `grid`."""
    axes = list(dict.fromkeys(k for row in rows for k in row if k not in COLUMNS))
    return [*COLUMNS[:3], *axes, *COLUMNS[3:]]


def write_csv(rows, path, header=None):
    """The rows as CSV (empty cells for missing values), written atomically; returns the path."""
    return files.write_csv(rows, path, header or columns(rows))


# ------------------------------------------------------------------------------------------------ plots


def _done(rows, pattern):
    return [r for r in rows if r["grid"] == pattern and r["finished"] and r["error"] is not None]


def _title(title, rows):
    return title + (f"\n{DEMO_NOTE}" if any(r["data"] == "demo" for r in rows) else "")


@functools.lru_cache(maxsize=None)
def _paper_point(name, label):
    """A recipe's paper number at the complexity of its model (ImageNet's 1000 classes), or None."""
    try:
        r = recipe_lib.load(name)
    except (ValueError, FileNotFoundError):
        return None
    if r.paper_top1 is None:
        return None
    cx = zoo.complexity(r.spec(), r.data.image_size, r.data.num_classes)
    return {"label": label, "recipe": name, "flops": cx["flops"], "acts": cx["acts"], "params": cx["params"],
            "error": round(100.0 - r.paper_top1, 6), "paper_ref": r.paper_ref}


def fast_scaled_paper_points(base, schedule, strategies=None):
    """The paper's points of a base and schedule: the unscaled base (its fast_scaling_* recipe), EfficientNet-B1..B5
    for base efficientnet_b0 (the original compound scaling), and the grid points that carry `paper_top1`."""
    todo = [(f"fast_scaling_{base}_{schedule}", f"paper: {base} unscaled")]
    if base == "efficientnet_b0":
        todo += [(f"fast_scaling_efficientnet_b{i}_{schedule}", "paper: EfficientNet-B1..B5 (original)")
                 for i in range(1, 6)]
    grid = next(g for g in list_grids() if g.pattern == FAST)
    for name in grid.points:
        v = grid.match(name)
        if (v["base"], v["schedule"]) == (base, schedule) and (strategies is None or v["strategy"] in strategies):
            todo.append((name, f"paper: {base} {v['strategy']}"))
    return [p for p in (_paper_point(*t) for t in todo) if p]


MARKERS = {"unscaled": "*", "original": "s"}
UNITS = (("flops", 1e9, "flops (B multiply-adds)"), ("acts", 1e6, "activations (M)"))


def _figure(series, paper, title, path, panels=UNITS):
    """Panels of error vs each of `panels`: `series` [(label, rows in line order, style)] as lines, `paper` as
    markers."""
    fig = plotting.figure((5.2 * len(panels), 4.4))
    for i, (key, unit, xlabel) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for label, pts, style in series:
            ax.plot([p[key] / unit for p in pts], [p["error"] for p in pts], label=label, **style)
        for label in dict.fromkeys(p["label"] for p in paper):
            pts = [p for p in paper if p["label"] == label]
            marker = next((m for k, m in MARKERS.items() if k in label), "D")
            ax.scatter([p[key] / unit for p in pts], [p["error"] for p in pts], marker=marker, s=70, zorder=3,
                       facecolors="none", edgecolors="black", label=label)
        _log(ax)
        ax.set(xlabel=xlabel, ylabel="top-1 error (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return plotting.save(fig, path)


def _color(i):
    return f"C{i % 10}"


def _log(ax, y=False):
    """Log x (and y) axes labelled 0.5, 2, 30 (not 5e-01); minor ticks labelled where an axis spans under a decade."""
    from matplotlib import ticker

    class Plain(ticker.LogFormatter):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    ax.set_xscale("log")
    if y:
        ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis)[:2 if y else 1]:
        for set_formatter in (axis.set_major_formatter, axis.set_minor_formatter):
            set_formatter(Plain(labelOnlyBase=False, minor_thresholds=(1.6, 0.5)))


def plot_fast_scaled(rows, out_dir):
    """The fast_scaled_* grid's figures: ({name: png path}, [the paper points drawn, with their figure])."""
    done, paths, drawn = _done(rows, FAST), {}, []
    if not done:
        return paths, drawn
    grid = next(g for g in list_grids() if g.pattern == FAST)
    order = list(grid.axes["strategy"])

    def line(base, schedule, points):  # by factor, from a finished run of the unscaled base recipe (factor 1)
        start = [r for r in rows if r["recipe"] == f"fast_scaling_{base}_{schedule}" and r["finished"]][-1:]
        return start + sorted(points, key=lambda r: float(r["factor"]))

    def draw(name, series, paper, title, group):
        paths[name] = _figure(series, paper, _title(title, group), os.path.join(out_dir, f"{name}.png"))
        drawn.extend(dict(p, figure=name) for p in paper)

    for base, schedule in sorted({(r["base"], r["schedule"]) for r in done}):
        group = [r for r in done if (r["base"], r["schedule"]) == (base, schedule)]
        series = [(s, line(base, schedule, [r for r in group if r["strategy"] == s]), dict(marker="o", color=_color(i)))
                  for i, s in enumerate(order) if any(r["strategy"] == s for r in group)]
        draw(f"fast_scaled_{base}_{schedule}", series, fast_scaled_paper_points(base, schedule),
             f"{base} scaled ({schedule} schedule): error vs flops and activations per strategy", group)
    for schedule in sorted({r["schedule"] for r in done if r["strategy"] == "dWr"}):
        group = [r for r in done if r["strategy"] == "dWr" and r["schedule"] == schedule]
        bases = sorted({r["base"] for r in group})
        series = [(f"{b} dWr", line(b, schedule, [r for r in group if r["base"] == b]),
                   dict(marker="o", color=_color(i))) for i, b in enumerate(bases)]
        paper = [p for b in bases for p in fast_scaled_paper_points(b, schedule, strategies=("dWr",))]
        draw(f"fast_scaled_dWr_{schedule}", series, paper, f"fast scaling (dWr) per base, {schedule} schedule", group)
    return paths, drawn


def plot_rs_scaling(rows, out_dir):
    """The rs_scaling_* grid's figures: ({name: png path}, []: the paper publishes no per-point numbers)."""
    done, paths = _done(rows, RS), {}
    for epochs in sorted({r["epochs"] for r in done}, key=int):
        group = [r for r in done if r["epochs"] == epochs]
        fig = plotting.figure((15, 4.4))
        for i, axis in enumerate(("depth", "width", "res")):
            ax = fig.add_subplot(1, 3, i + 1)
            for j, value in enumerate(sorted({r[axis] for r in group}, key=float)):
                pts = [r for r in group if r[axis] == value]
                ax.scatter([p["flops"] / 1e9 for p in pts], [p["error"] for p in pts], color=_color(j),
                           label=f"{axis} {value}")
            _power_law(ax, group)
            _log(ax, y=True)
            ax.set(xlabel="flops (B multiply-adds)", ylabel=f"top-1 error (%), "
                   f"{group[0]['eval_split']}", title=f"by {axis}")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
        fig.suptitle(_title(f"ResNet scaling, {epochs} epochs (Revisiting ResNets, Figure 2 reading)\n"
                            f"{RS_NO_PAPER}", group), fontsize=9)
        paths[f"rs_scaling_e{epochs}"] = plotting.save(fig, os.path.join(out_dir, f"rs_scaling_e{epochs}.png"))
    if done:
        paths["rs_scaling_depth_vs_width"] = _depth_vs_width(done, out_dir)
    return paths, []


def _power_law(ax, group):
    """The least-squares line of log error on log flops (the paper's power law), over the points drawn."""
    pts = [(math.log(r["flops"]), math.log(r["error"])) for r in group if r["error"] > 0]
    if len({x for x, _ in pts}) < 2:
        return
    n, sx, sy = len(pts), sum(x for x, _ in pts), sum(y for _, y in pts)
    slope = (n * sum(x * y for x, y in pts) - sx * sy) / (n * sum(x * x for x, _ in pts) - sx * sx)
    xs = [min(x for x, _ in pts), max(x for x, _ in pts)]
    ax.plot([math.exp(x) / 1e9 for x in xs], [math.exp((sy - slope * sx) / n + slope * x) for x in xs], "k--",
            lw=0.8, label=f"power law, slope {slope:.3f}")


def _depth_vs_width(done, out_dir):
    """Figure 3: per epoch budget and resolution, depth scaling (width fixed, depth up) and width scaling (depth
    fixed, width up) from the paper's start, depth 101 at width 1.0, else the smallest depth and width run."""
    budgets = sorted({r["epochs"] for r in done}, key=int)
    fig = plotting.figure((max(6.5, 5.2 * len(budgets)), 4.6))
    for i, epochs in enumerate(budgets):
        ax = fig.add_subplot(1, len(budgets), i + 1)
        for j, res in enumerate(sorted({r["res"] for r in done if r["epochs"] == epochs}, key=int)):
            pts = [r for r in done if (r["epochs"], r["res"]) == (epochs, res)]
            at = {(r["depth"], r["width"]) for r in pts}
            d0, w0 = ("101", "1.0") if ("101", "1.0") in at else (min((r["depth"] for r in pts), key=int),
                                                                   min((r["width"] for r in pts), key=float))
            for axis, fixed, style in (("depth", ("width", w0), "-"), ("width", ("depth", d0), "--")):
                start = d0 if axis == "depth" else w0
                line = sorted((r for r in pts if r[fixed[0]] == fixed[1] and float(r[axis]) >= float(start)),
                              key=lambda r: float(r[axis]))
                if line:
                    ax.plot([r["flops"] / 1e9 for r in line], [r["error"] for r in line], style, marker="o",
                            color=_color(j), label=f"r{res}: {axis} scaling ({fixed[0]} {fixed[1]})")
        _log(ax)
        ax.set(xlabel="flops (B multiply-adds; the paper plots TPU latency)",
               ylabel="top-1 error (%)", title=f"{epochs} epochs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(_title(f"depth vs width scaling (Revisiting ResNets, Figure 3 reading)\n{RS_NO_PAPER}", done),
                 fontsize=9)
    return plotting.save(fig, os.path.join(out_dir, "rs_scaling_depth_vs_width.png"))


# ------------------------------------------------------------------------------------------------ report


PAPER_COLUMNS = ("figure", "label", "recipe", "flops", "params", "acts", "error", "paper_ref")
SHOWN = ("recipe", "model", "image_size", "steps", "finished", "eval_split", "error", "flops", "acts", "paper_error")


def report(rows, out_dir) -> dict:
    """Writes runs.csv, paper_points.csv, the plots that apply and report.html into `out_dir`; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"csv": write_csv(rows, os.path.join(out_dir, "runs.csv"))}
    fast, drawn = plot_fast_scaled(rows, out_dir)
    rs, _ = plot_rs_scaling(rows, out_dir)
    paths["paper_points"] = write_csv(drawn, os.path.join(out_dir, "paper_points.csv"), PAPER_COLUMNS)
    images = {**fast, **rs}
    unfinished = [r["run"] for r in rows if not r["finished"]]
    fmt = {"flops": lambda v: f"{v / 1e9:.3f} GF", "acts": lambda v: f"{v / 1e6:.2f} M"}
    table = plotting.html_table(SHOWN, [[fmt.get(k, str)(r[k]) if r.get(k) is not None else "" for k in SHOWN]
                                        for r in rows])
    notes = [f"{len(rows)} runs, {len(rows) - len(unfinished)} finished; the plots use finished runs only. The full "
             f"table: runs.csv; the paper points drawn: paper_points.csv ({len(drawn)})."]
    if unfinished:
        notes.append(f"unfinished (no final evaluation yet): {', '.join(unfinished)}")
    if rs:
        notes.append(RS_NO_PAPER + ".")
    if any(r["data"] == "demo" for r in rows):
        notes.append(DEMO_NOTE + ".")
    body = "".join(f"<p>{html.escape(n)}</p>" for n in notes) + table + plotting.images_html(images)
    paths.update(images)
    paths["report"] = plotting.write_html(os.path.join(out_dir, "report.html"), "Study grids: collected runs", body)
    return paths


__all__ = ["COLUMNS", "collect", "columns", "fast_scaled_paper_points", "find_runs", "plot_fast_scaled",
           "plot_rs_scaling", "read_metrics", "read_run", "report", "write_csv"]
