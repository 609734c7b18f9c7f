"""The analysis of one or more sweeps: PNG plots and an HTML report that shows them with a table of the best models.

    paths = analyze(["sweeps/anynetx_a", "sweeps/anynetx_b"], "sweeps/report")

Plots (matplotlib, the ``plot`` extra): ``edf.png`` (error EDFs of every sweep, the paper's "[min|mean]" legend),
``edf_normalized.png`` (complexity-normalized EDFs, when several sweeps are compared), ``<statistic>.png`` per
statistic of the first sweep (error vs the statistic, with the empirical bootstrap's 95% band and best value:
flops, params, acts, and for RegNet-parameterised sweeps d, w0, wa, wm, or for AnyNet sweeps depth and width
statistics) and ``widths.png`` (per-block width profiles of the best models with their quantized linear fits).
"""

from __future__ import annotations

import html
import os

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
    return {k: v for k, v in out.items() if len(set(v)) > 1}


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
                                               log=name in ("flops", "params", "acts", "w0", "wa"))
    widths = [(plots.block_widths(sweep.spec_from_dict(r["spec"])), r["error"]) for r in first]
    paths["widths"] = plots.plot_widths(widths, os.path.join(out_dir, "widths.png"))
    summary = "".join(f"<li>{html.escape(n)}: {len(rs)} models, error min {min(r['error'] for r in rs):.2f}%, "
                      f"mean {np.mean([r['error'] for r in rs]):.2f}%</li>" for n, rs in populations.items())
    body = (f"<ul>{summary}</ul><h2>best models of {html.escape(first_name)}</h2>{_table(first, top)}"
            f"{plotting.images_html(paths)}")
    paths["report"] = plotting.write_html(os.path.join(out_dir, "report.html"), "Sweep report", body)
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


__all__ = ["analyze", "best_recipe", "stats"]
