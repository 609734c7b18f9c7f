"""The analysis of one or more sweeps: PNG plots and an HTML report that shows them with a table of the best models.

    paths = analyze(["sweeps/anynetx_a", "sweeps/anynetx_b"], "sweeps/report")

Plots (matplotlib, the ``plot`` extra): ``edf.png`` (error EDFs of every sweep, the paper's "[min|mean]" legend),
``edf_normalized.png`` (complexity-normalized EDFs, when several sweeps are compared), ``<statistic>.png`` per
statistic of the first sweep (error vs the statistic, with the empirical bootstrap's 95% band and best value:
flops, params, acts, and for RegNet-parameterised sweeps d, w0, wa, wm, or for AnyNet sweeps depth and width
statistics) and ``widths.png`` (per-block width profiles of the best models with their quantized linear fits).

`analyze_study` reports a study of several populations, each swept in several flop regimes: one EDF plot per regime
with every population (``edf_<regime>.png``), and by kind the parameter trends over the regimes of Fig. 11
(``trends_<population>.png``) or error vs learning rate and weight decay of Figs. 21-22
(``hparams_<population>_<regime>.png``), error vs resolution for a population that samples it
(``resolution_<population>_<regime>.png``), with a summary table and the bootstrap ranges in ``report.html``.
"""

from __future__ import annotations

import html
import os
import re

import numpy as np

from regnet_tf import plotting
from regnet_tf.design import plots, stats, sweep


def _statistics(records):
    """{name: values} of the statistics plotted against error (those that vary in the population)."""
    out = {k: [r["complexity"][k] for r in records] for k in ("flops", "params", "acts")}
    specs = [r["spec"] for r in records]
    if specs and all(s["kind"] == "regnet" for s in specs):
        out.update({k: [s[k] for s in specs] for k in ("d", "w0", "wa", "wm", "g")})
    else:
        resolved = [sweep.spec_from_dict(s).resolved() for s in specs]
        out.update({"depth": [sum(s.ds) for s in resolved], "last_width": [s.ws[-1] for s in resolved],
                    "first_width": [s.ws[0] for s in resolved]})
    for k in ("lr", "wd", "resolution"):  # sampled per model (the studies of Figures 14, 21 and 22)
        if records and all(k in (r.get("hparams") or {}) for r in records):
            out[k] = [r["hparams"][k] for r in records]
    return {k: v for k, v in out.items() if len(set(v)) > 1}


def _anynet_like(records) -> bool:
    """Whether every record's spec is an AnyNet / RegNet (their block widths can be drawn), not a fixed EfficientNet
    or ResNet of a Figure 22-like sweep."""
    return all(r["spec"]["kind"] in ("anynet", "regnet") for r in records)


def _table(records, top=10):
    rows = "".join(
        f"<tr><td>{r['index']}</td><td>{r['error']:.2f}</td><td>{r['complexity']['flops'] / 1e6:.0f}</td>"
        f"<td>{r['complexity']['params'] / 1e6:.2f}</td><td>{r['epochs']:.2f}</td>"
        f"<td><code>{html.escape(str({k: v for k, v in r['spec'].items() if k != 'kind'}))}</code></td></tr>"
        for r in sorted(records, key=lambda r: r["error"])[:top])
    return ("<table><tr><th>model</th><th>error %</th><th>MF</th><th>params (M)</th><th>epochs</th><th>spec</th>"
            f"</tr>{rows}</table>")


def analyze(sweep_dirs, out_dir, top=10) -> dict:
    """Writes the plots and ``report.html`` into ``out_dir``; returns {name: path}. ValueError for a sweep
    directory without records."""
    populations = {}
    for d in sweep_dirs:
        records = sweep.load_records(d)
        if not records:
            raise ValueError(f"{d} holds no sweep records (records/*.json): run launch/sweep.py --out {d} first")
        populations[os.path.basename(os.path.normpath(d)) or d] = records
    os.makedirs(out_dir, exist_ok=True)
    paths = {"edf": plots.plot_edfs({n: [r["error"] for r in rs] for n, rs in populations.items()},
                                    os.path.join(out_dir, "edf.png"), title="error EDF")}
    if len(populations) > 1:
        flops = {n: [r["complexity"]["flops"] for r in rs] for n, rs in populations.items()}
        paths["edf_normalized"] = plots.plot_edfs({n: [r["error"] for r in rs] for n, rs in populations.items()},
                                                  os.path.join(out_dir, "edf_normalized.png"), flops,
                                                  title="flops-normalized error EDF")
    first_name, first = next(iter(populations.items()))
    errors = [r["error"] for r in first]
    if len(first) >= 2:
        for name, values in _statistics(first).items():
            paths[name] = plots.plot_statistic(values, errors, os.path.join(out_dir, f"{name}.png"), name,
                                               log=name in ("flops", "params", "acts", "w0", "wa", "lr", "wd"))
    if _anynet_like(first):
        widths = [(plots.block_widths(sweep.spec_from_dict(r["spec"])), r["error"]) for r in first]
        paths["widths"] = plots.plot_widths(widths, os.path.join(out_dir, "widths.png"))
    summary = "".join(f"<li>{html.escape(n)}: {len(rs)} models, error min {min(r['error'] for r in rs):.2f}%, "
                      f"mean {np.mean([r['error'] for r in rs]):.2f}%</li>" for n, rs in populations.items())
    body = (f"<ul>{summary}</ul><h2>best models of {html.escape(first_name)}</h2>{_table(first, top)}"
            f"{plotting.images_html(paths)}")
    paths["report"] = plotting.write_html(os.path.join(out_dir, "report.html"), "Sweep report", body)
    return paths


STUDY_KINDS = ("edf", "trends", "hparams")


def _slugs(labels) -> dict:
    """{label: file-name-safe slug}, unique (a suffix _2, _3, ... for labels that would collide)."""
    out, used = {}, set()
    for label in labels:
        base = re.sub(r"[^A-Za-z0-9.-]+", "_", str(label)).strip("_.") or "x"
        slug, k = base, 1
        while slug in used:
            k += 1
            slug = f"{base}_{k}"
        used.add(slug)
        out[label] = slug
    return out


def _fmt_band(lo, best, hi) -> tuple:
    return f"{best:.3g}", f"[{lo:.3g}, {hi:.3g}]"


def analyze_study(title, populations, kind, out_dir, top=10, seed=0, **bootstrap_kw) -> dict:
    """Writes a study's plots and ``report.html`` into ``out_dir``; returns {name: path} (name = the file's stem,
    "report" for the page).

    ``populations``: ordered {population label: {regime label: sweep records}} (`sweep.load_records` of each sweep).
    ``kind``: "edf" (one EDF plot per regime, every population side by side: ``edf_<regime>.png``), "trends" (those,
    plus `plots.plot_trends` per population: ``trends_<population>.png``) or "hparams" (those, plus
    `plots.plot_hparams` per population and regime: ``hparams_<population>_<regime>.png``). A population whose models
    each have their own resolution (``record["hparams"]["resolution"]``, Figure 14) also gets error vs resolution
    with the bootstrap (``resolution_<population>_<regime>.png``). The page has a table of
    models, min and mean error per population and regime (empty ones as "no records yet"), the plots, the bootstrap
    ranges drawn and the ``top`` best models of each population. ValueError when there are no records at all.
    ``seed`` and ``bootstrap_kw`` (frac, repeats, alpha) go to the bootstrap.
    """
    if kind not in STUDY_KINDS:
        raise ValueError(f"unknown study kind {kind!r}; valid: {', '.join(STUDY_KINDS)}")
    pops = {str(p): {str(g): list(rs or []) for g, rs in dict(by_regime or {}).items()}
            for p, by_regime in dict(populations).items()}
    if not any(rs for by_regime in pops.values() for rs in by_regime.values()):
        raise ValueError(f"the study {title!r} has no records yet: run launch/sweep.py --study NAME --out DIR (or "
                         "--space SPACE --regime REGIME --out DIR for each population and regime) first")
    os.makedirs(out_dir, exist_ok=True)
    regimes = list(dict.fromkeys(g for by_regime in pops.values() for g in by_regime))
    pslug, gslug = _slugs(pops), _slugs(regimes)
    paths, band_rows = {}, []
    for g in regimes:
        errors = {p: [r["error"] for r in by_regime[g]] for p, by_regime in pops.items() if by_regime.get(g)}
        if errors:
            name = f"edf_{gslug[g]}"
            paths[name] = plots.plot_edfs(errors, os.path.join(out_dir, name + ".png"), title=f"error EDF, {g}")
    for p, by_regime in pops.items():
        if kind == "trends" and any(by_regime.values()):
            name = f"trends_{pslug[p]}"
            drawn = plots.plot_trends(by_regime, os.path.join(out_dir, name + ".png"), seed=seed,
                                      title=f"{p}: parameter trends", **bootstrap_kw)
            paths[name] = drawn.path
            band_rows += [(p, g, param, *_fmt_band(lo, best, hi))
                          for param, rows in drawn.bands.items() for g, lo, best, hi in rows]
        for g, rs in by_regime.items():  # Figure 14 (middle): a resolution per model -> error vs resolution
            if len(rs) >= 2 and all("resolution" in (r.get("hparams") or {}) for r in rs):
                name = f"resolution_{pslug[p]}_{gslug[g]}"
                paths[name] = plots.plot_statistic([r["hparams"]["resolution"] for r in rs], [r["error"] for r in rs],
                                                   os.path.join(out_dir, name + ".png"), "resolution", seed=seed,
                                                   **bootstrap_kw)
        if kind == "hparams":
            for g, rs in by_regime.items():
                if rs:
                    name = f"hparams_{pslug[p]}_{gslug[g]}"
                    drawn = plots.plot_hparams(rs, os.path.join(out_dir, name + ".png"), seed=seed,
                                               title=f"{p}, {g}", **bootstrap_kw)
                    paths[name] = drawn.path
                    band_rows += [(p, g, param, *_fmt_band(b.lo, b.best, b.hi)) for param, b in drawn.bands.items()]
    summary = []
    for p, by_regime in pops.items():
        for g, rs in (by_regime.items() if by_regime else [("-", [])]):
            e = [r["error"] for r in rs]
            summary.append((p, g, len(rs), f"{min(e):.2f}", f"{np.mean(e):.2f}") if rs else
                           (p, g, 0, "no records yet", ""))
    body = plotting.html_table(["population", "regime", "models", "min error %", "mean error %"], summary)
    body += plotting.images_html(paths)
    if band_rows:
        body += ("<h2>bootstrap: the best models' value (median) and 95% range</h2>"
                 + plotting.html_table(["population", "regime", "parameter", "best", "95% range"], band_rows))
    for p, by_regime in pops.items():
        every = [r for rs in by_regime.values() for r in rs]
        if every:
            body += f"<h2>best models of {html.escape(p)}</h2>{_table(every, top)}"
    paths["report"] = plotting.write_html(os.path.join(out_dir, "report.html"), title, body)
    return paths


def best_recipe(record, base_recipe: str) -> str:
    """A ready recipe file (YAML text) that trains the model of a sweep record with ``base_recipe``'s setup."""
    import yaml

    spec = {k: v for k, v in record["spec"].items() if k != "kind"}
    doc = {"base": base_recipe,
           "description": f"best of a random search: model {record['index']} of {record['space']}, error "
                          f"{record['error']:.2f}% after {record['epochs']:.2f} epochs, "
                          f"{record['complexity']['flops'] / 1e6:.0f} MF",
           "model": {"name": "", "kind": record["spec"]["kind"], "spec": spec}}  # name "": not the base's model
    return yaml.safe_dump(doc, sort_keys=False)


__all__ = ["STUDY_KINDS", "analyze", "analyze_study", "best_recipe", "stats"]
