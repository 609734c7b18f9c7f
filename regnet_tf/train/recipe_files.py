"""Where the recipes are and how their files combine: the recipes directory, the name index, YAML inheritance
(`base:`) and `section.key=value` overrides. Works on plain dicts; `regnet_tf.train.recipe` turns them into a
validated `Recipe` (and re-exports `list_recipes`, `read_raw`, `apply_overrides`, ...).
"""

from __future__ import annotations

import difflib
import os
from typing import Dict, List

import yaml


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


def _index(root=None) -> Dict[str, str]:
    """{recipe name: path} of every recipe file (bases included, their names start with `_`)."""
    root = root or recipes_dir()
    index = {}
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")):
                name = os.path.splitext(f)[0]
                if name in index:
                    raise ValueError(f"two recipes are named {name!r}: {index[name]} and {os.path.join(dirpath, f)}")
                index[name] = os.path.join(dirpath, f)
    return index


def list_recipes(pattern: str = "") -> List[str]:
    """Recipe names (bases excluded), sorted; `pattern` is a substring filter."""
    return sorted(n for n in _index() if not n.startswith("_") and pattern in n)


def recipe_path(name: str) -> str:
    """A recipe name, or a path to a YAML file, -> its path."""
    if name.endswith((".yaml", ".yml")) and os.path.isfile(name):
        return name
    index = _index()
    if name not in index:
        valid = list_recipes()
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Valid recipes ({len(valid)}): {', '.join(valid)} "
                         f"(python launch/train.py --list_recipes)")
    return index[name]


def read_raw(name: str, _seen=()) -> dict:
    """The merged YAML dict of a recipe (its bases resolved), before validation."""
    path = recipe_path(name)
    if path in _seen:
        raise ValueError(f"recipe inheritance cycle: {' -> '.join(_seen + (path,))}")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe file is a YAML mapping of sections; got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if base.endswith((".yaml", ".yml")) and not os.path.isabs(base):
        base = os.path.join(os.path.dirname(path), base)
    return merge(read_raw(base, _seen + (path,)), raw)


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
