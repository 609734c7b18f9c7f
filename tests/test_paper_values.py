"""Every paper-derived recipe and study value, held against tests/data/paper_values.yaml (transcribed from the papers).

One test per entry of the table (id `<recipe or pattern>:<key>`), so a recipe edit that drifts from the paper fails
with the table, section and quote that give the value. Entries marked `deviation: N` are values the paper leaves
open; the test holds the recipe to the choice docs/RECIPES.md documents as item N. Complexity entries hold the
papers' flops / params / acts against `regnet_tf.complexity` at the printed precision; where a paper's number differs
from ours (`ours:`), the last tests check the explanation docs/DEVIATIONS.md gives. A test checks that each quote
occurs in the paper's text (../shared/papers), when the papers are there. Entries with `study:` hold the RegNet
paper's design-space studies (`regnet_tf.design.studies`: populations, counts, epochs, regimes, changes) the same way;
`reading:` marks a value only a figure shows (our choice, listed in docs/DESIGN_SPACES.md).

Pure Python: recipe.load and regnet_tf.complexity import no TensorFlow.
"""

import dataclasses
import fnmatch
import functools
import glob
import math
import os
import re

import pytest
import yaml

import regnet_tf
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
TARGETS = ("recipe", "recipes", "pattern", "study")
FIELDS = {"key", "value", "source", "quote", "error", "deviation", "note", "ours", "population", "reading"}
COMPLEXITY = {  # key -> (regnet_tf.complexity field, divisor giving the paper's unit)
    "complexity.gmacs": ("flops", 1e9),  # RegNet and fast-scaling papers: "flops (B)" = multiply-adds
    "complexity.gflops": ("flops", 0.5e9),  # Revisiting ResNets: "FLOPs (B)" = 2 x multiply-adds
    "complexity.params_m": ("params", 1e6),
    "complexity.acts_m": ("acts", 1e6),
}


def _entries():
    with open(TABLE, encoding="utf-8") as f:
        entries = yaml.safe_load(f)
    assert isinstance(entries, list) and entries, f"{TABLE} must be a non-empty list of entries"
    return entries


ENTRIES = _entries()
RECIPE_ENTRIES = [e for e in ENTRIES if "study" not in e]
STUDY_ENTRIES = [e for e in ENTRIES if "study" in e]


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
    if key in COMPLEXITY:  # the recipe's model at its training resolution, in the paper's unit
        field, unit = COMPLEXITY[key]
        return regnet_tf.complexity(r.spec(), r.data.image_size)[field] / unit
    node = r.to_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"recipe {r.name!r} has no key {key!r} (stops at {part!r})")
        node = node[part]
    return node


def _printed(value):
    """The number of decimals a paper value is printed with (YAML keeps 4.0 a float, 36 an int)."""
    return 0 if isinstance(value, int) else len(repr(float(value)).split(".")[1])


def _as_printed(actual, like):
    """`actual` rounded as the paper prints `like` (complexity tables give 1 or 2 significant decimals)."""
    return round(actual, _printed(like))


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
        if "ours" in entry:
            assert entry["key"] in COMPLEXITY, f"{where}: `ours` goes with a complexity key {sorted(COMPLEXITY)}"
            assert entry["ours"] != entry["value"] and "DEVIATIONS.md" in entry.get("note", ""), (
                f"{where}: `ours` records a difference: it differs from value and the note names docs/DEVIATIONS.md")
        if entry["key"] in ("complexity.gmacs", "complexity.gflops"):
            flops_are_macs = not entry["source"].startswith("Revisiting ResNets,")
            assert (entry["key"] == "complexity.gmacs") == flops_are_macs, (
                f"{where}: Revisiting ResNets reports FLOPs (complexity.gflops), the other papers multiply-adds")
    assert len(set(_ids(ENTRIES))) == len(ENTRIES)


def _documented_deviations():
    with open(os.path.join(REPO, "docs", "RECIPES.md"), encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("## Deviations and choices", 1)[-1]
    return {int(n) for n in re.findall(r"^(\d+)\. \*\*", section, flags=re.M)}


# ------------------------------------------------------------------------------- every entry vs. the recipes

@pytest.mark.parametrize("entry", RECIPE_ENTRIES, ids=_ids(RECIPE_ENTRIES))
def test_recipe_keeps_paper_value(entry):
    expected = entry["value"]
    wrong = []
    for name in _names(entry):
        r = _recipe_or_fail(name)
        actual = _value(r, entry["key"])
        if entry["key"] == "paper_top1":
            ok = actual is not None and actual == expected  # exactly: 100 - error, rounded to 0.1
        elif entry["key"] in COMPLEXITY:  # at the paper's printed precision; `ours`: a documented difference
            actual = _as_printed(actual, expected)
            ok = _same(actual, entry.get("ours", expected))
        else:
            ok = _same(actual, expected)
        if not ok:
            wrong.append(f"{name}: {actual!r}")
    why = f"docs/RECIPES.md deviation {entry['deviation']}" if "deviation" in entry else "the paper"
    if "ours" in entry:
        expected, why = entry["ours"], f"ours, where the paper prints {expected!r}: {entry['note']}; the paper"
    assert not wrong, (f"{entry['key']} should be {expected!r} ({why}: {entry['source']}: \"{entry['quote']}\"); "
                       f"found {', '.join(wrong)}")


# ------------------------------------------------------------------------------- every entry vs. the studies

def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _study_value(population, key):
    """A population's value for a study key (tests/data/paper_values.yaml's header lists them)."""
    if key in ("samples", "epochs", "regimes", "resolutions", "models", "recipe", "space"):
        return _plain(getattr(population, key))
    if key.startswith("changes."):
        changes = dict(population.changes)
        field = key[len("changes."):]
        assert field in changes, f"{population.label} changes no {field!r} (its changes: {changes})"
        return _plain(changes[field])
    if key.startswith("hparams."):
        ranges = {name: [lo, hi] for name, lo, hi in population.hparams}
        assert key[len("hparams."):] in ranges, f"{population.label} samples no {key[len('hparams.'):]}"
        return ranges[key[len("hparams."):]]
    if key.startswith("design_space@"):  # design_space@3.2GF.g_widths: the regime may hold a dot
        regime, field = key[len("design_space@"):].rsplit(".", 1)
        space = population.design_space(regime)
        assert field in {f.name for f in dataclasses.fields(space)}, f"{space.name} has no field {field!r}"
        return _plain(getattr(space, field))
    raise KeyError(f"unknown study key {key!r}")


@pytest.mark.parametrize("entry", STUDY_ENTRIES, ids=_ids(STUDY_ENTRIES))
def test_study_keeps_paper_value(entry):
    from regnet_tf.design import studies

    study = studies.get_study(entry["study"])
    labels = entry.get("population", [p.label for p in study.populations])
    labels = [labels] if isinstance(labels, str) else labels
    by_label = {p.label: p for p in study.populations}
    assert set(labels) <= set(by_label), f"{study.name} has no population {sorted(set(labels) - set(by_label))}"
    wrong = [f"{label}: {_study_value(by_label[label], entry['key'])!r}" for label in labels
             if not _same(_study_value(by_label[label], entry["key"]), entry["value"])]
    why = f"our reading ({entry['reading']})" if "reading" in entry else "the paper"
    assert not wrong, (f"{study.name} {entry['key']} should be {entry['value']!r} ({why}: {entry['source']}: "
                       f"\"{entry['quote']}\"); found {', '.join(wrong)}")
    if "reading" in entry:  # a value the text does not give is said to be ours, in the study and in the docs
        assert study.reading, f"{study.name} has a value of our reading but no Study.reading"
        with open(os.path.join(REPO, "docs", "DESIGN_SPACES.md"), encoding="utf-8") as f:
            assert study.name in f.read(), f"docs/DESIGN_SPACES.md does not list {study.name}'s reading"


def test_every_study_population_has_its_values_in_the_table():
    """Each population's count, epochs and regimes (or models) are in the table, quoted or marked as our reading."""
    from regnet_tf.design import studies

    held = set()
    for e in STUDY_ENTRIES:
        study = studies.get_study(e["study"])
        labels = e.get("population", [p.label for p in study.populations])
        held |= {(study.name, label, e["key"]) for label in ([labels] if isinstance(labels, str) else labels)}
    missing = [f"{s.name} {p.label}: {key}" for s in studies.STUDIES.values() for p in s.populations
               for key in ("samples", "epochs", "models" if p.models else "regimes")
               if (s.name, p.label, key) not in held]
    assert not missing, "no paper_values.yaml entry for " + "; ".join(missing)


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


# ------------------------------------------------------------- complexity: where the papers and our count differ

STEM_POOL_ACTS = 56 * 56 * 64  # the ResNet stem's 3x3 s2 max pool output at 224 px


def _complexity_entries(source, key):
    return [e for e in ENTRIES if e["source"] == source and e["key"] == key]


def test_regnet_table3_acts_leave_out_the_stem_max_pool():
    """RegNet Table 3 counts "the output tensors of all conv layers"; our count (pycls's, and the fast-scaling paper's
    Table 8: ResNet50 11.3 M, ResNeXt50 14.6 M) also counts the stem max pool's output, 0.20 M at 224 px."""
    entries = _complexity_entries("RegNet, Table 3", "complexity.acts_m")
    assert sorted(e["recipe"] for e in entries) == sorted(f"{m}_{d}_dds" for m in ("resnet", "resnext")
                                                           for d in (50, 101, 152))
    for entry in entries:
        r = _recipe_or_fail(entry["recipe"])
        assert r.data.image_size == 224
        acts = regnet_tf.complexity(r.spec(), 224)["acts"]
        assert round((acts - STEM_POOL_ACTS) / 1e6, 1) == entry["value"] != round(acts / 1e6, 1), entry["recipe"]


def test_efficientnet_tables_disagree_only_where_deviations_says():
    """RegNet Table 4 and fast-scaling Table 5 list the same EfficientNets at the same resolutions: our models are
    Table 5's (no `ours` there); Table 4 differs for B2-B5 (docs/DEVIATIONS.md, "Paper tables")."""
    keys = ("complexity.gmacs", "complexity.params_m", "complexity.acts_m")
    table5 = [e for k in keys for e in _complexity_entries("Fast and Accurate Model Scaling, Table 5", k)]
    table4 = [e for k in keys for e in _complexity_entries("RegNet, Table 4", k)]
    assert len(table5) == len(table4) == 18 and not any("ours" in e for e in table5)
    differs = sorted((e["recipe"][len("efficientnet_"):-len("_dds")], e["key"].split(".")[1]) for e in table4
                     if "ours" in e)
    assert differs == [("b2", "params_m"), ("b3", "params_m"), ("b4", "acts_m"), ("b4", "gmacs"),
                       ("b4", "params_m"), ("b5", "gmacs"), ("b5", "params_m")]
    for e in table4:  # the recipes train the fast-scaling paper's models at the same resolution
        b = e["recipe"][len("efficientnet_"):-len("_dds")]
        assert _load(e["recipe"]).data.image_size == _load(f"fast_scaling_efficientnet_{b}_1x").data.image_size


def _resnet_d_as_written_gflops(spec, resolution):
    """Revisiting ResNets 4.1 read literally: the max pool "is removed and the downsampling occurs in the first 3x3
    convolution in the next bottleneck block" - no stem conv in its place, and that block's first 1x1 conv then runs
    at the stem's resolution. In FLOPs (2 x multiply-adds), as Table 7."""
    no_pool = regnet_tf.complexity(spec.replace(replace_stem_pool=False), resolution)["flops"]  # a max pool: 0 flops
    half = (resolution - 1) // 2 + 1
    quarter = (half - 1) // 2 + 1
    return 2 * (no_pool + spec.stem_w * spec.ws[0] * (half * half - quarter * quarter)) / 1e9


def test_table7_flops_count_the_stem_conv_that_replaces_the_max_pool():
    """Ours (as the TF reference code): a stride-2 3x3 conv in place of the max pool. Where Table 7's printed FLOPs
    tell the two readings apart (ResNet-RS-50 and -101 at 160 px), they give ours."""
    rows = _complexity_entries("Revisiting ResNets, Table 7", "complexity.gflops")
    rows = [e for e in rows if e["recipe"].startswith("resnet_rs_")]
    assert len(rows) == 11
    told_apart = {}
    for e in rows:
        r = _recipe_or_fail(e["recipe"])
        assert r.spec().replace_stem_pool
        ours = _as_printed(2 * regnet_tf.complexity(r.spec(), r.data.image_size)["flops"] / 1e9, e["value"])
        as_written = _as_printed(_resnet_d_as_written_gflops(r.spec(), r.data.image_size), e["value"])
        if ours != as_written:
            told_apart[e["recipe"]] = (ours == e["value"], as_written == e["value"])
    assert told_apart == {"resnet_rs_50_160": (True, False), "resnet_rs_101_160": (True, False)}
