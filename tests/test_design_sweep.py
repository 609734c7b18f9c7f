"""Population sweeps (`regnet_tf.design.sweep`, `launch/sweep.py`): a deterministic plan, one atomic record per
model, resume without retraining, and shards over hosts that together give exactly the unsharded set."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import build_once
from regnet_tf.design import report, sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--data", "demo", "--set", "data.image_size=32", "--set", "train.global_batch_size=8", "--set",
        "train.steps=2", "--set", "train.eval_steps=1", "--set", "train.eval_every_epochs=0"]
SWEEP = ["--space", "regnetx", "--regime", "400MF", "--samples", "2", "--seed", "1", *TINY]  # one per shard
# (seed 1: two shallow samples, 9 and 6 blocks, quick to train)


def test_plan_is_deterministic_in_the_seed_and_round_trips():
    a = sweep.make_plan("regnetx", "400MF", 3, seed=1, recipe="regnet_design_space")
    assert a == sweep.make_plan("regnetx", "400MF", 3, seed=1, recipe="regnet_design_space")
    assert a["specs"] != sweep.make_plan("regnetx", "400MF", 3, seed=2, recipe="regnet_design_space")["specs"]
    spec = sweep.spec_from_dict(a["specs"][0])
    assert sweep.spec_to_dict(spec) == a["specs"][0] and spec.kind == "regnet"
    recipe = sweep.model_recipe({**a, "overrides": ["train.steps=3"]}, 0)
    assert recipe.spec() == spec.resolved() or recipe.spec() == spec
    assert recipe.train.steps == 3


@pytest.mark.parametrize("text", ["1", "2/2", "-1/3", "a/b"])
def test_bad_shards(text):
    with pytest.raises(ValueError, match="shard"):
        sweep.parse_shard(text)


def _launch(script, *args, env):
    return subprocess.Popen([sys.executable, os.path.join(REPO, "launch", script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


@pytest.fixture(scope="session")
def swept(tmp_path_factory, demo_cache):
    """A sweep of 2 models trained by two shards at once into one --out (two hosts), built once per pytest run; the
    tests work on copies of it."""
    env = dict(os.environ, REGNET_TF_DATA=demo_cache, TF_CPP_MIN_LOG_LEVEL="3")

    def make(directory):
        shards = [_launch("sweep.py", *SWEEP, "--out", str(directory / "sweep"), "--shard", f"{i}/2", env=env)
                  for i in range(2)]
        for p in shards:
            _, err = p.communicate(timeout=900)
            assert p.returncode == 0, err[-3000:]

    return str(build_once(tmp_path_factory, "sweep", make) / "sweep")


def _copy(swept, tmp_path):
    out = str(tmp_path / "sweep")
    shutil.copytree(swept, out)  # copy2: the record files keep their modification times
    return out


def test_two_shards_give_the_unsharded_set_and_resume_without_retraining(swept, tmp_path, demo_cache):
    env = dict(os.environ, REGNET_TF_DATA=demo_cache, TF_CPP_MIN_LOG_LEVEL="3")
    out = _copy(swept, tmp_path)
    records = sweep.load_records(out)
    unsharded = sweep.make_plan("regnetx", "400MF", 2, seed=1, recipe="regnet_design_space")
    assert [r["index"] for r in records] == [0, 1]
    assert [r["spec"] for r in records] == unsharded["specs"]
    for r in records:
        assert 0 <= r["error"] <= 100 and r["steps"] == 2 and r["complexity"]["flops"] > 0
    assert not [p for p in os.listdir(os.path.join(out, "records")) if not p.endswith(".json")]  # no temp files

    stamps = {p: os.path.getmtime(os.path.join(out, "records", p)) for p in os.listdir(os.path.join(out, "records"))}
    again = _launch("sweep.py", *SWEEP, "--out", out, env=env)
    out_text, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert "0 to train" in out_text
    assert stamps == {p: os.path.getmtime(os.path.join(out, "records", p)) for p in stamps}

    # another population in the same --out is refused (the command's one-line error: tests/test_train.py)
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.open_sweep(out, sweep.make_plan("regnetx", "400MF", 2, seed=2, recipe="regnet_design_space"))
    with open(os.path.join(out, "plan.json")) as f:
        assert json.load(f)["seed"] == 1

    # the analysis: real PNG plots and an HTML report with the best models
    analysis = str(tmp_path / "analysis")
    done = subprocess.run([sys.executable, os.path.join(REPO, "launch", "analyze_sweep.py"), out, "--out", analysis],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("edf.png", "widths.png", "flops.png"):
        assert_real_plot(os.path.join(analysis, name))
    with open(os.path.join(analysis, "report.html")) as f:
        page = f.read()
    assert "<img src='edf.png'>" in page and page.count("<tr>") == 3  # header + 2 models
    with pytest.raises(ValueError, match="holds no sweep records"):
        report.analyze([str(tmp_path)], str(tmp_path / "empty"))


def test_a_regime_is_its_bounds_however_written(tmp_path):
    plan = sweep.make_plan("regnetx", "400MF", 1, seed=0, recipe="regnet_design_space")
    sweep.open_sweep(str(tmp_path), plan)
    for same in ("360MF-400MF", [360e6, 400e6]):
        sweep.open_sweep(str(tmp_path), {**plan, "regime": same})
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.open_sweep(str(tmp_path), {**plan, "regime": "800MF"})


def assert_real_plot(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= 300 and im.size[1] >= 200
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.std() > 5, f"{path} looks blank"


def test_search_writes_the_best_model_as_a_recipe(swept, tmp_path, demo_cache):
    """launch/search.py at the sweep's budget (400e6: the regime 360-400 MF) in the sweep's directory: its models are
    trained already, so the search trains none and writes the best one as a recipe."""
    from regnet_tf.train import recipe as recipe_lib

    env = dict(os.environ, REGNET_TF_DATA=demo_cache, TF_CPP_MIN_LOG_LEVEL="3")
    out = _copy(swept, tmp_path)
    done = subprocess.run([sys.executable, os.path.join(REPO, "launch", "search.py"), "--space", "regnetx",
                           "--flops", "400e6", "--samples", "2", "--seed", "1", *TINY, "--out", out],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 to train" in done.stdout
    records = sweep.load_records(out)
    top = min(records, key=lambda r: r["error"])
    assert len(records) == 2 and all(360e6 <= r["complexity"]["flops"] <= 400e6 for r in records)
    assert f"best of 2: model {top['index']}" in done.stdout
    recipe = recipe_lib.load(os.path.join(out, "best.yaml"))
    assert recipe.model.kind == "regnet" and recipe.spec() == sweep.spec_from_dict(top["spec"]).resolved()
    assert recipe.train.epochs == 10  # the base recipe's setup (regnet_design_space)
