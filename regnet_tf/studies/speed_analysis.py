"""The speed study's analysis: what the timed rows (`regnet_tf.studies.speed`) say next to the papers' claims.

- `correlations`: Pearson r of time per image with flops, params and acts, per scaling strategy, per base model and
  pooled, beside the fast-scaling paper's Figure 2 values (flops 0.81, params 0.56, acts 0.99 across strategies).
- `table4`: EfficientNet / RegNetY time ratios beside the RegNet paper's V100 ratios (Table 4).
- `table7_speedups`: the ResNet-RS / EfficientNet pairs of Revisiting ResNets Table 7 (its 1.7x-3.3x) beside ours.
- `activation_exponents`: exact, no timing: acts ~ flops^b per family (RegNet paper, Figures 12 and 18: square root
  for RegNet, linear for EfficientNet).
- `pareto`: time per image against the papers' top-1, per family.
- `format_*`: the tables the command prints.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from regnet_tf import zoo
from regnet_tf.studies import paper
from regnet_tf.studies.speed import MODES

METRICS = ("flops", "params", "acts")


def pearson(x, y) -> Optional[float]:
    """Pearson's r of two equal-length sequences; None for fewer than 3 points or a constant sequence."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"pearson needs two 1-D sequences of one length; got shapes {x.shape} and {y.shape}")
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    xc, yc = x - x.mean(), y - y.mean()
    return float(np.clip((xc @ yc) / math.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))


def _paper_value(metric, scope, base):
    """The paper's Figure 2 value for our group: EfficientNet-B0 has all three metrics; other bases only acts."""
    if scope == "across strategies":
        c = paper.paper_r(metric, scope) if base == "efficientnet_b0" else paper.paper_r(metric, "one base model")
    else:
        c = paper.paper_r(metric, scope)
    return (c.bound + f"{c.r:.2f}") if c else ""


def correlations(rows, mode="train"):
    """Pearson r of ``<mode>_ms_per_image`` with flops, params and acts, per group of models.

    Groups: each (base, strategy) line (the base counted in each of its strategies), each base across its
    strategies, all models across bases ("across models"), and for unscaled sets each family and all models.
    Groups of fewer than 3 models are left out. Returns dicts: mode, scope, group, metric, n, r (None for a constant
    metric), paper (the paper's value, e.g. "=0.81").
    """
    key = f"{mode}_ms_per_image"
    rows = [r for r in rows if r.get(key) is not None]
    groups = []  # (scope, group, base, rows)
    bases = list(dict.fromkeys(r["base"] for r in rows if r.get("strategy")))
    for base in bases:
        own = [r for r in rows if r["base"] == base]
        for strategy in dict.fromkeys(r["strategy"] for r in own if r["strategy"]):
            groups.append(("one strategy", f"{base} {strategy}", base,
                           [r for r in own if r["strategy"] in (strategy, "")]))
        groups.append(("across strategies", base, base, own))
    scaled = [r for r in rows if r["base"] in bases]
    if len(bases) > 1:
        groups.append(("across models", "all bases", "", scaled))
    rest = [r for r in rows if r["base"] not in bases]
    if rest:
        for family in dict.fromkeys(r["family"] for r in rest):
            groups.append(("one family", family, "", [r for r in rest if r["family"] == family]))
        if len({r["family"] for r in rest}) > 1:
            groups.append(("across models", "all models", "", rest))
    out = []
    for scope, group, base, members in groups:
        if len(members) < 3:  # r of two points is +-1: no group
            continue
        t = [r[key] for r in members]
        for metric in METRICS:
            out.append({"mode": mode, "scope": scope, "group": group, "metric": metric, "n": len(members),
                        "r": pearson([r[metric] for r in members], t), "paper": _paper_value(metric, scope, base)})
    return out


def format_correlations(corr) -> str:
    """One line per group: r with flops, params and acts, the paper's value in brackets."""
    lines = [f"{'mode':5s}  {'scope':17s}  {'group':28s}  {'n':>3s}  {'r flops':>14s}  {'r params':>14s}  "
             f"{'r acts':>14s}"]
    seen = {}
    for c in corr:
        seen.setdefault((c["mode"], c["scope"], c["group"], c["n"]), {})[c["metric"]] = c
    for (mode, scope, group, n), by in seen.items():
        cells = []
        for metric in METRICS:
            c = by[metric]
            text = "-" if c["r"] is None else f"{c['r']:.3f}"
            cells.append((text + (f" [{c['paper']}]" if c["paper"] else "")).rjust(14))
        lines.append(f"{mode:5s}  {scope:17s}  {group:28s}  {n:3d}  " + "  ".join(cells))
    return "\n".join(lines)


def table4(rows):
    """The RegNet paper's Table 4 pairs found in ``rows``: our EfficientNet/RegNetY time ratios beside the paper's.

    Inference is ms per 64 images (our per-image time x 64); training is ms per image (the paper: hours for 100
    epochs, i.e. per image too). A ratio above 1: the RegNetY is faster.
    """
    by_name = {r["name"]: r for r in rows}
    out = []
    for en, rg in paper.TABLE4:
        a, b = by_name.get(en.model), by_name.get(rg.model)
        if a is None or b is None:
            continue
        row = {"efficientnet": en.model, "regnet": rg.model, "en_gmacs": a["flops"] / 1e9,
               "regnet_gmacs": b["flops"] / 1e9,
               "en_acts_m": a["acts"] / 1e6, "regnet_acts_m": b["acts"] / 1e6,
               "paper_infer_ratio": en.infer_ms / rg.infer_ms, "paper_train_ratio": en.train_hours / rg.train_hours}
        for mode in MODES:
            ta, tb = a.get(f"{mode}_ms_per_image"), b.get(f"{mode}_ms_per_image")
            scale = 64 if mode == "infer" else 1
            row[f"en_{mode}_ms"] = None if ta is None else ta * scale
            row[f"regnet_{mode}_ms"] = None if tb is None else tb * scale
            row[f"{mode}_ratio"] = None if ta is None or tb is None else ta / tb
        out.append(row)
    return out


def table7_speedups(rows, mode="train"):
    """Revisiting ResNets Table 7's printed speedups (ResNet-RS over the EfficientNet of about its top-1) beside ours:
    the EfficientNet's time per image over the ResNet-RS's, in ``mode``."""
    by_name = {r["name"]: r for r in rows}
    en_rows = {row.model: row for row in paper.TABLE7 if row.recipe is None}
    out = []
    for row in paper.TABLE7:
        if not row.vs or row.recipe not in by_name or row.vs not in by_name:
            continue
        rs, en = by_name[row.recipe], by_name[row.vs]
        t_rs, t_en = rs.get(f"{mode}_ms_per_image"), en.get(f"{mode}_ms_per_image")
        out.append({"resnet_rs": row.recipe, "efficientnet": row.vs, "top1": row.top1, "en_top1": en_rows[row.vs].top1,
                    "ours": None if not t_rs or t_en is None else t_en / t_rs,
                    "paper_v100": en_rows[row.vs].v100_s / row.v100_s,
                    "paper_tpu": en_rows[row.vs].tpu_ms / row.tpu_ms})
    return out


def fit_power(x, y):
    """(b, a) of the least-squares fit log y = a + b log x (y ~ e^a x^b)."""
    lx, ly = np.log(np.asarray(x, dtype=np.float64)), np.log(np.asarray(y, dtype=np.float64))
    if lx.size < 2 or np.ptp(lx) == 0:
        raise ValueError("a power fit needs at least two different x values")
    b, a = np.polyfit(lx, ly, 1)
    return float(b), float(a)


ACTIVATION_FAMILIES = {  # the RegNet paper's Figure 18: RegNetY vs EfficientNet (and RegNetX) over their zoos
    "RegNetX": tuple(n for n in zoo.list_models("regnetx_")),
    "RegNetY": tuple(n for n in zoo.list_models("regnety_")),
    "EfficientNet": tuple(f"efficientnet_b{i}" for i in range(8)),
}


def activation_exponents(families=None):
    """Exact, no timing: per family, the exponent b of acts ~ flops^b over its models at their registered resolutions
    (the RegNet paper: square root for RegNet, linear for EfficientNet). {family: {"b", "a", "points"}}."""
    out = {}
    for family, names in (families or ACTIVATION_FAMILIES).items():
        points = [(n, zoo.complexity(n)) for n in names]
        b, a = fit_power([c["flops"] for _, c in points], [c["acts"] for _, c in points])
        out[family] = {"b": b, "a": a, "points": [(n, c["flops"], c["acts"]) for n, c in points]}
    return out


def pareto(rows, mode="train"):
    """The rows with a paper top-1 and a time, per family, sorted by time: {family: [(time per image, top1, name)]}."""
    key = f"{mode}_ms_per_image"
    out = {}
    for r in rows:
        if r.get("top1") is not None and r.get(key) is not None:
            out.setdefault(r["family"], []).append((r[key], r["top1"], r["name"]))
    return {f: sorted(v) for f, v in out.items()}


# ---------------------------------------------------------------------------------------------------- printing


def _text_table(header, cells) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *cells)]
    line = lambda cs: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                for i, (c, w) in enumerate(zip(cs, widths))).rstrip()
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(c) for c in cells])


def _ms(v):
    return "-" if v is None else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def format_models(rows) -> str:
    """The per-model table: complexity, median ms per image (train, infer) with the rounds' spread, paper top-1."""
    cells = []
    for r in rows:
        spread = {m: "-" if r.get(f"{m}_ms_min") is None else
                  f"{r[f'{m}_ms_min']:.0f}-{r[f'{m}_ms_max']:.0f}" for m in MODES}
        cells.append([r["name"], r["resolution"], f"{r['flops'] / 1e9:.3f}", f"{r['params'] / 1e6:.2f}",
                      f"{r['acts'] / 1e6:.2f}", _ms(r.get("train_ms_per_image")), spread["train"],
                      _ms(r.get("infer_ms_per_image")), spread["infer"], "-" if r.get("top1") is None else r["top1"]])
    return _text_table(["model", "px", "GMACs", "params M", "acts M", "train ms/img", "train ms/step min-max",
                        "infer ms/img", "infer ms/step min-max", "paper top-1"], cells)


def format_table4(t4) -> str:
    """EfficientNet / RegNetY ratios beside the RegNet paper's (Table 4, V100); '' without pairs."""
    if not t4:
        return ""
    r = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
    return _text_table(["EfficientNet / RegNetY", "GMACs", "acts M", "infer ms/64 img", "infer ratio", "paper",
                        "train ms/img", "train ratio", "paper"],
                       [[f"{t['efficientnet']} / {t['regnet']}", f"{t['en_gmacs']:.2f} / {t['regnet_gmacs']:.2f}",
                         f"{t['en_acts_m']:.1f} / {t['regnet_acts_m']:.1f}",
                         f"{_ms(t['en_infer_ms'])} / {_ms(t['regnet_infer_ms'])}", r(t["infer_ratio"]),
                         r(t["paper_infer_ratio"]), f"{_ms(t['en_train_ms'])} / {_ms(t['regnet_train_ms'])}",
                         r(t["train_ratio"]), r(t["paper_train_ratio"])] for t in t4])


def format_table7(rows) -> str:
    """ResNet-RS speedups over EfficientNet beside Revisiting ResNets Table 7's; '' without its pairs."""
    cells = []
    for mode in MODES:
        for t in table7_speedups(rows, mode):
            cells.append([f"{t['resnet_rs']} ({t['top1']}) vs {t['efficientnet']} ({t['en_top1']})", mode,
                          "-" if t["ours"] is None else f"{t['ours']:.2f}x", f"{t['paper_v100']:.2f}x",
                          f"{t['paper_tpu']:.2f}x"])
    return _text_table(["ResNet-RS vs EfficientNet (top-1)", "mode", "ours", "paper V100", "paper TPUv3"],
                       cells) if cells else ""
