"""Every paper-derived recipe value, held against tests/data/paper_values.yaml (transcribed from the papers).

One test per entry of the table (id `<recipe or pattern>:<key>`), so a recipe edit that drifts from the paper fails
with the table, section and quote that give the value. Entries marked `deviation: N` are values the paper leaves
open; the test holds the recipe to the choice docs/RECIPES.md documents as item N. A last test checks that each
quote occurs in the paper's text (../shared/papers), when the papers are there.

Pure Python: recipe.load imports no TensorFlow.
"""

import fnmatch
import functools
import glob
import math
import os
import re

import pytest
import yaml

from regnet_tf.train import recipe

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TABLE = os.path.join(HERE, "data", "paper_values.yaml")
PAPERS_DIR = os.path.join(os.path.dirname(REPO), "shared", "papers")
PAPERS = {  # the source's leading paper name -> the paper's text file (prefix) under PAPERS_DIR
    "Revisiting ResNets": "004_",
    "Fast and Accurate Model Scaling": "002_",
    "RegNet": "000_",
}
TARGETS = ("recipe", "recipes", "pattern")
FIELDS = {"key", "value", "source", "quote", "error", "deviation", "note"}


def _entries():
    with open(TABLE, encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    assert isinstance(entries, list) and entries, f"{TABLE} must be a non-empty list of entries"
    return entries


ENTRIES = _entries()


def _target(entry):
    (kind,) = [k for k in TARGETS if k in entry]
    return kind, entry[kind]


def _entry_id(entry):
    kind, target = _target(entry)
    if kind == "recipes":
        target = target[0] if len(target) == 1 else f"{target[0]}+{len(target) - 1}"
    return f"{target}:{entry['key']}"


def _ids(entries):
    ids, seen = [], {}
    for entry in entries:
        base = _entry_id(entry)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return ids


@functools.lru_cache(maxsize=None)
def _load(name):
    return recipe.load(name)


@functools.lru_cache(maxsize=None)
def _listed():
    return tuple(recipe.list_recipes())


def _names(entry):
    kind, target = _target(entry)
    if kind == "recipe":
        return [target]
    if kind == "recipes":
        return list(target)
    names = [n for n in _listed() if fnmatch.fnmatchcase(n, target)]
    assert names, f"pattern {target!r} matches no recipe"
    return names


def _value(r, key):
    """The recipe's value for a table key: a derived value or a Recipe.to_dict() path."""
    if key == "peak_lr":
        return r.peak_lr()
    if key == "paper_top1":
        return r.paper_top1
    if key.startswith("spec."):
        return getattr(r.spec(), key[len("spec."):])
    node = r.to_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"recipe {r.name!r} has no key {key!r} (stops at {part!r})")
        node = node[part]
    return node


def _same(actual, expected):
    if isinstance(expected, (list, tuple)):
        return (isinstance(actual, (list, tuple)) and len(actual) == len(expected)
                and all(_same(a, e) for a, e in zip(actual, expected)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=0.0)
    return actual == expected


def _recipe_or_fail(name):
    try:
        return _load(name)
    except ValueError as e:
        if any(m in str(e).lower() for m in ("unknown recipe", "off the grid")):
            pytest.fail(f"recipe {name!r} does not exist (the paper value needs it): {str(e).splitlines()[0]}")
        raise


# ------------------------------------------------------------------------------------------ the table itself

def test_table_entries_are_well_formed():
    deviations = _documented_deviations()
    for i, entry in enumerate(ENTRIES):
        where = f"entry {i} ({entry})"
        assert sum(k in entry for k in TARGETS) == 1, f"{where}: give one of {TARGETS}"
        assert set(entry) - set(TARGETS) <= FIELDS, f"{where}: unknown fields {set(entry) - set(TARGETS) - FIELDS}"
        assert {"key", "value", "source", "quote"} <= set(entry), f"{where}: key, value, source and quote are required"
        assert isinstance(entry["quote"], str) and entry["quote"].strip(), where
        assert any(entry["source"].startswith(p + ",") for p in PAPERS), f"{where}: source starts with one of {list(PAPERS)}"
        if "error" in entry:
            assert entry["key"] == "paper_top1", f"{where}: `error` goes with paper_top1"
            assert entry["value"] == round(100 - entry["error"], 1), f"{where}: value must be 100 - error"
        if entry["key"] == "paper_top1":
            assert isinstance(entry["value"], float) and round(entry["value"], 1) == entry["value"], where
        if "deviation" in entry:
            assert entry["deviation"] in deviations, (f"{where}: docs/RECIPES.md has no deviation item "
                                                      f"{entry['deviation']}")
    assert len(set(_ids(ENTRIES))) == len(ENTRIES)


def _documented_deviations():
    with open(os.path.join(REPO, "docs", "RECIPES.md"), encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("## Deviations and choices", 1)[-1]
    return {int(n) for n in re.findall(r"^(\d+)\. \*\*", section, flags=re.M)}


# ------------------------------------------------------------------------------- every entry vs. the recipes

@pytest.mark.parametrize("entry", ENTRIES, ids=_ids(ENTRIES))
def test_recipe_keeps_paper_value(entry):
    expected = entry["value"]
    wrong = []
    for name in _names(entry):
        r = _recipe_or_fail(name)
        actual = _value(r, entry["key"])
        if entry["key"] == "paper_top1":
            ok = actual is not None and actual == expected  # exactly: 100 - error, rounded to 0.1
        else:
            ok = _same(actual, expected)
        if not ok:
            wrong.append(f"{name}: {actual!r}")
    why = f"docs/RECIPES.md deviation {entry['deviation']}" if "deviation" in entry else "the paper"
    assert not wrong, (f"{entry['key']} should be {expected!r} ({why}: {entry['source']}: \"{entry['quote']}\"); "
                       f"found {', '.join(wrong)}")


# --------------------------------------------------------------------------------- the quotes vs. the papers

def _normalise(text):
    return re.sub(r"\s+", " ", text).strip()


def _paper_text(prefix):
    files = sorted(glob.glob(os.path.join(PAPERS_DIR, prefix + "*.txt")))
    assert files, f"no paper {prefix}*.txt in {PAPERS_DIR}"
    with open(files[0], encoding="utf-8") as f:
        return _normalise(f.read())


@pytest.mark.skipif(not os.path.isdir(PAPERS_DIR), reason=f"the papers are not at {PAPERS_DIR}")
def test_quotes_occur_in_the_papers():
    texts = {p: _paper_text(prefix) for p, prefix in PAPERS.items()}
    # OCR'd two-column text breaks words at line ends ("mo- mentum"): a quote may be written either way
    joined = {p: re.sub(r"(?<=\w)- (?=\w)", "", t) for p, t in texts.items()}
    missing = []
    for entry in ENTRIES:
        paper = next(p for p in PAPERS if entry["source"].startswith(p + ","))
        quote = _normalise(entry["quote"])
        if quote not in texts[paper] and quote not in joined[paper]:
            missing.append(f"{_entry_id(entry)}: {quote!r} not in {paper}")
    assert not missing, "\n".join(missing)
