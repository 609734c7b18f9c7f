"""The results collection (`regnet_tf.studies.collect`, `launch/collect.py`): run directories into one CSV, the study
grids' figures with the paper's points, report.html; a real tiny run of an rs_scaling point on the demo data, the
others written here (a recipe.yaml as launch/train.py writes it, a metrics.jsonl of known values)."""

import csv
import json
import os
import random
import subprocess
import sys

import pytest
import yaml
from PIL import Image

import conftest
import regnet_tf
from regnet_tf.studies import collect
from regnet_tf.train import recipe as recipe_lib

FAST_BASE = "fast_scaling_regnetz_005_2x"  # the unscaled base of the fast_scaled_regnetz_005_*_2x points
FAST_POINTS = [f"fast_scaled_regnetz_005_{s}_x{f}_2x" for s in ("w", "dWr") for f in (2, 8)]
RS_POINTS = [f"rs_scaling_d{d}_w{w}_r128_e10" for d in (26, 50) for w in ("0.25", "0.5")]


def write_run(directory, name, top1=None, overrides=(), steps=None):
    """A run directory as launch/train.py leaves it: recipe.yaml, and with `top1` a metrics.jsonl whose final
    evaluation (eval split, then validation) is at `steps` (default: the recipe's last step)."""
    r = recipe_lib.load(name, list(overrides))
    os.makedirs(directory)
    with open(os.path.join(directory, "recipe.yaml"), "w", encoding="utf-8") as f:
        f.write(r.to_yaml())
    if top1 is not None:
        step = r.total_steps() if steps is None else steps
        split = "minival" if r.data.minival_shards > 0 else "validation"
        records = [{"split": "train", "step": step, "time": 1.0, "loss": 2.0, "top1": 1.0, "epoch": 1.0}]
        if split == "minival":  # the trainer's final evaluation: the eval split, then validation (once)
            records.append({"split": split, "step": step, "time": 2.0, "top1": top1, "top5": top1 + 10})
        records.append({"split": "validation", "step": step, "time": 3.0, "top1": top1 - 1, "top5": top1 + 9})
        with open(os.path.join(directory, "metrics.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(x) + "\n" for x in records)
    return r


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Synthetic runs: the fast_scaled points and their base, rs_scaling points (one on the demo data), a run of
    another recipe, a run without metrics, nested one level deeper."""
    root = tmp_path_factory.mktemp("study")
    rng = random.Random(0)
    top1 = {}
    for name in [FAST_BASE, *FAST_POINTS, *RS_POINTS, "demo"]:
        top1[name] = round(rng.uniform(60, 80), 2)
        write_run(str(root / "runs" / name), name, top1[name])
    write_run(str(root / "runs" / "more" / "unfinished"), "rs_scaling_d101_w1.0_r128_e10")
    return root, top1


def by_recipe(rows):
    return {os.path.basename(r["run"]): r for r in rows}


def test_import_has_no_tensorflow():
    code = "import regnet_tf.studies.collect, regnet_tf.cli.collect, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=conftest.REPO, timeout=60)


def test_rows_and_csv(study, tmp_path):
    root, top1 = study
    rows = collect.collect([str(root / "runs")])
    runs = by_recipe(rows)
    assert len(rows) == 11 and set(runs) == {FAST_BASE, *FAST_POINTS, *RS_POINTS, "demo", "unfinished"}
    for name, row in runs.items():
        r = recipe_lib.load(row["recipe"])
        cx = regnet_tf.complexity(r.spec(), r.data.image_size, r.data.num_classes)
        assert (row["flops"], row["params"], row["acts"]) == (cx["flops"], cx["params"], cx["acts"]), name
        assert row["image_size"] == r.data.image_size and row["total_steps"] == r.total_steps()
    fast = runs["fast_scaled_regnetz_005_dWr_x8_2x"]
    assert fast["grid"] == collect.FAST and fast["eval_split"] == "validation" and fast["finished"]
    assert {k: fast[k] for k in ("base", "strategy", "factor", "schedule")} == {
        "base": "regnetz_005", "strategy": "dWr", "factor": "8", "schedule": "2x"}
    assert fast["top1"] == fast["validation_top1"] == top1[fast["recipe"]] - 1 and fast["minival_top1"] is None
    assert fast["error"] == pytest.approx(100 - fast["top1"]) and fast["model"] == "regnetz_005 x8 dWr"
    assert fast["paper_top1"] == 82.8 and fast["paper_error"] == pytest.approx(17.2) and "Table" in fast["paper_ref"]
    rs = runs["rs_scaling_d50_w0.5_r128_e10"]
    assert {k: rs[k] for k in ("depth", "width", "res", "epochs")} == {"depth": "50", "width": "0.5", "res": "128",
                                                                        "epochs": "10"}
    assert rs["eval_split"] == "minival" and rs["top1"] == rs["minival_top1"] == top1[rs["recipe"]]
    assert rs["validation_top1"] == rs["top1"] - 1 and rs["error"] == pytest.approx(100 - rs["top1"])
    assert rs["paper_top1"] is None and rs["steps"] == rs["total_steps"] and rs["finished"]
    assert runs["demo"]["grid"] == "" and runs["demo"]["finished"]  # another recipe: in the table, in no figure
    unfinished = runs["unfinished"]
    assert not unfinished["finished"] and unfinished["steps"] == 0 and unfinished["error"] is None
    path = collect.write_csv(rows, str(tmp_path / "runs.csv"))
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    header = list(table[0])
    assert header[:3] == ["run", "recipe", "grid"] and set(collect.COLUMNS) <= set(header)
    assert {"base", "strategy", "factor", "schedule", "depth", "width", "res", "epochs"} <= set(header)
    line = next(t for t in table if t["recipe"] == "fast_scaled_regnetz_005_dWr_x8_2x")
    assert int(line["flops"]) == fast["flops"] and float(line["error"]) == pytest.approx(fast["error"])
    assert line["depth"] == "" and next(t for t in table if t["run"].endswith("unfinished"))["error"] == ""


def test_report_draws_the_grids_and_the_paper_points(study, tmp_path):
    root, _ = study
    rows = collect.collect([str(root / "runs")])
    paths = collect.report(rows, str(tmp_path / "out"))
    figures = {"fast_scaled_regnetz_005_2x", "fast_scaled_dWr_2x", "rs_scaling_e10", "rs_scaling_depth_vs_width"}
    assert set(paths) == {"csv", "paper_points", "report"} | figures
    for name in figures:
        with Image.open(paths[name]) as image:
            colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert image.size[0] > 500 and len(colors) > 20, name  # drawn, not one colour
    with open(paths["paper_points"], newline="", encoding="utf-8") as f:
        drawn = list(csv.DictReader(f))
    per_figure = {}
    for p in drawn:
        per_figure.setdefault(p["figure"], {})[p["recipe"]] = float(p["error"])
    paper = {FAST_BASE: 21.3, "fast_scaled_regnetz_005_dWr_x8_2x": 17.2, "fast_scaled_regnetz_005_dWr_x32_2x": 16.1}
    assert per_figure == {name: pytest.approx(paper) for name in ("fast_scaled_regnetz_005_2x", "fast_scaled_dWr_2x")}
    x32 = recipe_lib.load("fast_scaled_regnetz_005_dWr_x32_2x")
    point = next(p for p in drawn if p["recipe"] == x32.name)
    assert int(point["flops"]) == regnet_tf.complexity(x32.spec(), x32.data.image_size, 1000)["flops"]
    page = open(paths["report"], encoding="utf-8").read()
    assert all(f"src='{name}.png'" in page for name in figures) and collect.RS_NO_PAPER in page
    assert "unfinished" in page and collect.DEMO_NOTE in page  # the run of the demo recipe is on the demo data


def test_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"empty holds no runs \(no recipe.yaml"):
        collect.find_runs([str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="missing is not a directory"):
        collect.find_runs([str(tmp_path / "missing")])
    write_run(str(tmp_path / "runs" / "cut"), "demo", 50.0)
    with open(tmp_path / "runs" / "cut" / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"split": "valid')  # a run killed while writing a line
    (row,) = collect.collect([str(tmp_path / "runs")])
    assert row["finished"] and row["error"] == pytest.approx(51.0)  # demo evaluates on validation: 50 - 1
    out = conftest.run_launcher("collect.py", "--out", str(tmp_path / "out"))
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith("error: give the run directories")


def test_collects_a_real_tiny_run(study, tiny_run, tmp_path):
    """The suite's tiny run (a real launch/train.py run of the demo recipe on the demo data, built once) with a
    synthetic rs_scaling point, through `python launch/collect.py runs/a runs/b --out DIR`: the real run's row is
    what its recipe.yaml and metrics.jsonl say."""
    real = tiny_run
    out = conftest.run_launcher("collect.py", real, str(study[0] / "runs" / RS_POINTS[1]), "--out",
                                str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "out" / "runs.csv", newline="", encoding="utf-8") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    row = rows[real]
    records = [json.loads(line) for line in open(os.path.join(real, "metrics.jsonl"), encoding="utf-8")]
    final = [r for r in records if r["split"] == "validation"][-1]
    with open(os.path.join(real, "recipe.yaml"), encoding="utf-8") as f:
        r = recipe_lib.from_dict(yaml.safe_load(f))
    flops = regnet_tf.complexity(r.spec(), r.data.image_size, r.data.num_classes)["flops"]
    assert row["finished"] == "True" and row["eval_split"] == "validation" and row["steps"] == str(final["step"])
    assert float(row["error"]) == pytest.approx(100 - final["top1"]) and row["data"] == "demo"
    assert int(row["flops"]) == flops and row["image_size"] == "32" and row["num_classes"] == "10"
    assert row["grid"] == "" and rows[str(study[0] / "runs" / RS_POINTS[1])]["depth"] == "26"
    assert "2 runs (2 finished, 0 unfinished)" in out.stdout
    assert {"rs_scaling_e10.png", "rs_scaling_depth_vs_width.png", "report.html"} <= set(os.listdir(tmp_path / "out"))
    assert collect.DEMO_NOTE in open(tmp_path / "out" / "report.html", encoding="utf-8").read()
