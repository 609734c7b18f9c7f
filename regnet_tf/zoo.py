"""The model zoo table: every registered model with its default resolution and exact complexity."""

from __future__ import annotations

from regnet_tf.counter import complexity
from regnet_tf.models.registry import get_entry, list_models, unknown_name_error

COLUMNS = ("model", "factory", "paper name", "resolution", "GMACs", "params (M)", "acts (M)")


def rows(pattern: str = ""):
    """One dict per registered model matching ``pattern`` (substring or wildcard), in registry order."""
    names = list_models(pattern)
    if pattern and not names:
        raise unknown_name_error("model filter", pattern, list_models())
    out = []
    for name in names:
        e = get_entry(name)
        cx = complexity(name, e.resolution)
        out.append({"model": name, "factory": e.factory, "paper name": e.paper_name, "resolution": e.resolution,
                    "flops": cx["flops"], "params": cx["params"], "acts": cx["acts"]})
    return out


def format_table(rows_, markdown: bool = False) -> str:
    cells = [[r["model"], r["factory"], r["paper name"], str(r["resolution"]), f"{r['flops'] / 1e9:.3f}",
              f"{r['params'] / 1e6:.2f}", f"{r['acts'] / 1e6:.2f}"] for r in rows_]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(COLUMNS)]
    fmt = lambda cs: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cs, widths)))  # noqa: E731
    return "\n".join([fmt(COLUMNS), fmt(["-" * w for w in widths])] + [fmt(c) for c in cells])
