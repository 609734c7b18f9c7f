"""Population sweeps (`regnet_tf.design.sweep`, `launch/sweep.py`): a deterministic plan, one atomic record per
model, resume without retraining, and shards over hosts that together give exactly the unsharded set."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from regnet_tf.design import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--data", "demo", "--set", "data.image_size=32", "--set", "train.global_batch_size=8", "--set",
        "train.steps=2", "--set", "train.eval_steps=1", "--set", "train.eval_every_epochs=0"]
SWEEP = ["--space", "regnetx", "--regime", "400MF", "--samples", "4", "--seed", "3", *TINY]


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


def test_two_shards_give_the_unsharded_set_and_resume_without_retraining(tmp_path):
    env = dict(os.environ, REGNET_TF_DATA=str(tmp_path / "data"), TF_CPP_MIN_LOG_LEVEL="3")
    out = str(tmp_path / "sweep")

    def launch(*args):
        return subprocess.Popen([sys.executable, os.path.join(REPO, "launch", "sweep.py"), *SWEEP, "--out", out,
                                 *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)

    shards = [launch("--shard", "0/2"), launch("--shard", "1/2")]  # two hosts at once, one --out
    for p in shards:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    records = sweep.load_records(out)
    unsharded = sweep.make_plan("regnetx", "400MF", 4, seed=3, recipe="regnet_design_space")
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    assert [r["spec"] for r in records] == unsharded["specs"]
    for r in records:
        assert 0 <= r["error"] <= 100 and r["steps"] == 2 and r["complexity"]["flops"] > 0
    assert not [p for p in os.listdir(os.path.join(out, "records")) if not p.endswith(".json")]  # no temp files

    stamps = {p: os.path.getmtime(os.path.join(out, "records", p)) for p in os.listdir(os.path.join(out, "records"))}
    again = launch()
    out_text, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert "0 to train" in out_text
    assert stamps == {p: os.path.getmtime(os.path.join(out, "records", p)) for p in stamps}

    other = subprocess.run([sys.executable, os.path.join(REPO, "launch", "sweep.py"), *SWEEP, "--out", out,
                            "--seed", "4"], capture_output=True, text=True, env=env, cwd=REPO)
    assert other.returncode == 1 and "holds another sweep" in other.stderr.strip().splitlines()[-1]
    with open(os.path.join(out, "plan.json")) as f:
        assert json.load(f)["seed"] == 3

    # the analysis: real PNG plots and an HTML report with the best models
    analysis = str(tmp_path / "analysis")
    done = subprocess.run([sys.executable, os.path.join(REPO, "launch", "analyze_sweep.py"), out, "--out", analysis],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("edf.png", "widths.png", "flops.png"):
        assert_real_plot(os.path.join(analysis, name))
    with open(os.path.join(analysis, "report.html")) as f:
        page = f.read()
    assert "<img src='edf.png'>" in page and page.count("<tr>") == 5  # header + 4 models
    empty = subprocess.run([sys.executable, os.path.join(REPO, "launch", "analyze_sweep.py"), str(tmp_path)],
                           capture_output=True, text=True, env=env, cwd=REPO)
    assert empty.returncode == 1 and "holds no sweep records" in empty.stderr


def assert_real_plot(path):
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] >= 300 and im.size[1] >= 200
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.std() > 5, f"{path} looks blank"


def test_search_writes_the_best_model_as_a_recipe(tmp_path):
    from regnet_tf.train import recipe as recipe_lib

    env = dict(os.environ, REGNET_TF_DATA=str(tmp_path / "data"), TF_CPP_MIN_LOG_LEVEL="3")
    out = str(tmp_path / "search")
    done = subprocess.run([sys.executable, os.path.join(REPO, "launch", "search.py"), "--space", "regnety",
                           "--flops", "400e6", "--samples", "2", *TINY, "--out", out], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = sweep.load_records(out)
    top = min(records, key=lambda r: r["error"])
    assert all(360e6 <= r["complexity"]["flops"] <= 400e6 for r in records)
    recipe = recipe_lib.load(os.path.join(out, "best.yaml"))
    assert recipe.model.kind == "regnet" and recipe.spec() == sweep.spec_from_dict(top["spec"]).resolved()
    assert recipe.train.epochs == 10  # the base recipe's setup (regnet_design_space)
