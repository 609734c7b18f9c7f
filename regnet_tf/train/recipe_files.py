"""Where the recipes are and how their files combine: the recipes directory, the name index, YAML inheritance
(`base:`), recipe grids and `section.key=value` overrides. Works on plain dicts; `regnet_tf.train.recipe` turns
them into a validated `Recipe` (and re-exports `list_recipes`, `read_raw`, `apply_overrides`, ...).

A grid file (`<name>.grid.yaml`) is a recipe file plus a `grid:` section that makes it a family of recipes:

    grid:
      name: rs_scaling_d{depth}_w{width}_r{res}_e{epochs}    # one {axis} per axis
      axes:                      # axis -> value -> the recipe keys that value sets (merged like a child file)
        depth: {26: {model: {spec: {ds: [2, 2, 2, 2]}}}, 50: ...}
        ...
      rules:                     # then, in order, each rule whose `when` holds sets its keys (the last one wins)
        - when: {epochs: [350], res: [224, 320, 448]}
          set: {regularization: {drop_path_rate: 0.2}}
      points:                    # optional: extra keys of single points (e.g. the paper's number)
        rs_scaling_d101_w1.0_r224_e350: {paper_top1: ...}

`rs_scaling_d101_w1.5_r224_e350` then resolves to the file's keys, merged with its axis values and the matching
rules, in that order. Every axis value is a string in names and in `when` (YAML's 1.0 is "1.0").
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from typing import Dict, List

import yaml

GRID_SUFFIX = ".grid.yaml"


def recipes_dir() -> str:
    """`$REGNET_TF_RECIPES`, else the repository's `recipes/` (a source checkout), else the installed copy."""
    env = os.environ.get("REGNET_TF_RECIPES")
    if env:
        return env
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checkout = os.path.join(here, "recipes")
    if os.path.isdir(checkout):
        return checkout
    import importlib.util

    found = importlib.util.find_spec("regnet_tf.recipes")
    if found and found.submodule_search_locations:
        return list(found.submodule_search_locations)[0]
    raise FileNotFoundError("cannot find the recipes directory; set REGNET_TF_RECIPES to the repository's recipes/")


def recipe_index(root=None) -> Dict[str, str]:
    """{recipe name: path} of every recipe file (bases included, their names start with `_`; grids excluded)."""
    root = root or recipes_dir()
    index = {}
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")) and not f.endswith(GRID_SUFFIX):
                name = os.path.splitext(f)[0]
                if name in index:
                    raise ValueError(f"two recipes are named {name!r}: {index[name]} and {os.path.join(dirpath, f)}")
                index[name] = os.path.join(dirpath, f)
    return index


def list_recipes(pattern: str = "", grids: bool = False) -> List[str]:
    """Recipe names (bases excluded), sorted; `pattern` is a substring filter. `grids`: also every point of every
    grid (`list_grids` gives the grids themselves)."""
    names = [n for n in recipe_index() if not n.startswith("_")]
    if grids:
        names += [n for g in list_grids() for n in g.names()]
    return sorted(n for n in names if pattern in n)


def recipe_path(name: str) -> str:
    """A recipe name, or a path to a YAML file, -> its path."""
    if name.endswith((".yaml", ".yml")) and os.path.isfile(name):
        return name
    index = recipe_index()
    if name not in index:
        valid = list_recipes()
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        patterns = "; ".join(g.summary() for g in list_grids())
        raise ValueError(f"Unknown recipe {name!r}.{hint} Valid recipes ({len(valid)}): {', '.join(valid)}; recipe "
                         f"grids: {patterns} (python launch/train.py --list_recipes)")
    return index[name]


# ------------------------------------------------------------------------------------------------ grids


class Grid:
    """A `.grid.yaml` file: a name pattern over axes, the keys each axis value sets, rules, and point extras."""

    def __init__(self, path):
        self.path = path
        raw = _read_yaml(path)
        g = raw.pop("grid", None)
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not isinstance(g.get("axes"), dict):
            raise ValueError(f"{path}: a grid file needs `grid: {{name: <pattern with {{axis}}>, axes: {{...}}}}`")
        self.file, self.pattern = raw, g["name"]
        self.axes = {a: {str(k): v or {} for k, v in values.items()} for a, values in g["axes"].items()}
        self.rules = g.get("rules") or []
        self.points = {str(k): v for k, v in (g.get("points") or {}).items()}
        order = re.findall(r"{(\w+)}", self.pattern)
        if sorted(order) != sorted(self.axes):
            raise ValueError(f"{path}: the name pattern {self.pattern!r} must use each axis once: {sorted(self.axes)}")
        for rule in self.rules:
            unknown = set(rule.get("when") or {}) - set(self.axes)
            if unknown or not isinstance(rule.get("set"), dict):
                raise ValueError(f"{path}: a rule is {{when: {{axis: [values]}}, set: {{keys}}}} over the axes "
                                 f"{sorted(self.axes)}; got {rule}")
        self.order = order
        parts = re.split(r"({\w+})", self.pattern)
        self._regex = re.compile("".join(
            "(?P<%s>%s)" % (p[1:-1], "|".join(re.escape(v) for v in sorted(self.axes[p[1:-1]], key=len, reverse=True)))
            if p.startswith("{") else re.escape(p) for p in parts) + "$")
        self._loose = re.compile("".join("(?P<%s>.+?)" % p[1:-1] if p.startswith("{") else re.escape(p)
                                         for p in parts) + "$")
        off = [p for p in self.points if not self._regex.match(p)]
        if off:
            raise ValueError(f"{path}: `points` {off} are not names of the grid {self.pattern}")

    def names(self):
        return [self.name(dict(zip(self.axes, vs))) for vs in itertools.product(*self.axes.values())]

    def name(self, values):
        return self.pattern.format(**values)

    def summary(self):
        ranges = ", ".join(f"{a} in {{{', '.join(self.axes[a])}}}" for a in self.order)
        return f"{self.pattern} ({ranges})"

    def match(self, name):
        """The axis values of `name`, None if it is not this grid's; a ValueError for an off-grid name."""
        m = self._regex.match(name)
        if m:
            return m.groupdict()
        loose = self._loose.match(name)
        if not loose:
            return None
        bad = [f"{a}={v!r} (valid: {', '.join(self.axes[a])})" for a, v in loose.groupdict().items()
               if v not in self.axes[a]]
        raise ValueError(f"recipe {name!r} is off the grid {self.pattern}: {'; '.join(bad)}. The grid: "
                         f"{self.summary()} ({os.path.basename(self.path)})")

    def raw(self, values):
        """The recipe dict of one point (its base not yet resolved)."""
        raw = merge({}, self.file)
        for a in self.order:
            raw = merge(raw, self.axes[a][values[a]])
        for rule in self.rules:
            if all(values[a] in [str(v) for v in allowed] for a, allowed in (rule.get("when") or {}).items()):
                raw = merge(raw, rule["set"])
        return merge(raw, self.points.get(self.name(values), {}))


_GRIDS: Dict[str, tuple] = {}  # path -> (modification time, Grid): a grid file is parsed once while unchanged


def list_grids(root=None) -> List[Grid]:
    """The recipe grids under the recipes directory (files named `*.grid.yaml`)."""
    root = root or recipes_dir()
    grids = []
    for path in (os.path.join(d, f) for d, _, files in sorted(os.walk(root)) for f in sorted(files)
                 if f.endswith(GRID_SUFFIX)):
        mtime = os.path.getmtime(path)
        if _GRIDS.get(path, (None,))[0] != mtime:
            _GRIDS[path] = (mtime, Grid(path))
        grids.append(_GRIDS[path][1])
    return grids


def grid_point(name):
    """(grid, axis values) of a grid recipe name, or None; a ValueError for a name off a grid's axis values."""
    for grid in list_grids():
        values = grid.match(name)
        if values is not None:
            return grid, values
    return None


def _read_yaml(path):
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe file is a YAML mapping of sections; got {type(raw).__name__}")
    return raw


def read_raw(name: str, _seen=()) -> dict:
    """The merged YAML dict of a recipe or a grid point (its bases resolved), before validation."""
    point = None if name in recipe_index() or name.endswith((".yaml", ".yml")) else grid_point(name)
    if point:
        grid, values = point
        path, raw = grid.path, dict(grid.raw(values), name=name)
    else:
        path = recipe_path(name)
        raw = _read_yaml(path)
    if path in _seen:
        raise ValueError(f"recipe inheritance cycle: {' -> '.join(_seen + (path,))}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if base.endswith((".yaml", ".yml")) and not os.path.isabs(base):
        base = os.path.join(os.path.dirname(path), base)
    parent = read_raw(base, _seen + (path,))
    parent.pop("name", None)  # a grid point's name is its own
    return merge(parent, raw)


def merge(base: dict, child: dict) -> dict:
    """Sections merge key by key (the child wins); `model.spec` merges too; other values are replaced."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------------------ overrides


def apply_overrides(raw: dict, overrides) -> dict:
    """`section.key=value` strings (value parsed as YAML: 2, 1e-4, true, [0.5, 1.0], null) into a raw dict."""
    raw = merge({}, raw)
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.key=value (e.g. train.epochs=2)")
        path, value = item.split("=", 1)
        keys = path.strip().split(".")
        value = yaml.safe_load(value) if value.strip() else ""
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return raw
