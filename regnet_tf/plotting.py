"""Shared plotting and report helpers: a matplotlib figure without pyplot, a PNG writer, a small HTML page.

matplotlib is an optional extra (``pip install "regnet-tf[plot]"``), imported inside `figure` only. A figure has its
own Agg canvas: no pyplot, no global backend or rcParams change. Used by the design-space report
(`regnet_tf.design.plots`), the speed study and the results collection (`regnet_tf.studies`).
"""

from __future__ import annotations

import html
import os


def figure(size=(5.0, 4.0)):
    """A `matplotlib.figure.Figure` of ``size`` inches at 100 dpi on an Agg canvas; ImportError naming the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('plotting needs matplotlib: pip install "regnet-tf[plot]" (or pip install matplotlib)') from e
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path) -> str:
    """Writes ``fig`` as a PNG to ``path`` (its directory must exist); returns the path."""
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    return str(path)


def html_table(header, rows) -> str:
    """An HTML table of strings (escaped)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(path, title: str, body: str) -> str:
    """A self-contained HTML page (``body`` is HTML) with the reports' style; images are referenced by file name."""
    style = "body{font-family:sans-serif;margin:2em} td,th{padding:2px 8px;text-align:left} img{max-width:720px}"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}"
            f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return str(path)


def images_html(paths) -> str:
    """``{name: png path}`` as headed <img> tags (file names relative to the page)."""
    return "".join(f"<h2>{html.escape(k)}</h2><img src='{html.escape(os.path.basename(p))}'>" for k, p in paths.items())
