"""The best checkpoint, early stopping and the minival split of the Trainer (regnet_tf.train.best): atomic writes and
best.json, patience, the final evaluation and export from the best checkpoint, a resumed run that keeps the known
best and its patience count, and the evaluation split (minival when data.minival_shards > 0). Evaluations are
scripted (the Trainer's `evaluate` replaced) so that which step is best is known; the weights are real."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train.best import BestCheckpoint
from test_swa import _Killed, kill_before_save  # tests/ is on sys.path


def test_best_checkpoint_writes_atomically_and_counts_patience(tmp_path):
    v = tf.Variable(0.0)
    best = BestCheckpoint(str(tmp_path), tf.train.Checkpoint(v=v), patience=2)
    assert best.info is None and best.top1 == float("-inf")
    results = []
    for step, top1 in ((2, 10.0), (4, 30.0), (6, 20.0), (8, 30.0)):  # a tie is no improvement
        v.assign(float(step))
        results.append(best.update(step, step / 4, top1, "minival"))
    assert results == [True, True, False, False] and best.since_best == 2
    assert sorted(os.listdir(tmp_path)) == ["best"]  # no temporary directory left
    info = json.load(open(tmp_path / "best" / "best.json"))
    assert info == {"step": 4, "epoch": 1.0, "top1": 30.0, "split": "minival"}
    assert tf.train.load_checkpoint(str(tmp_path / "best" / "ckpt")).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE") == 4
    # stopping: recorded in best.json; a new object (a rerun) reads the best and the stop back
    logs = []
    assert best.after_evaluation(10, 2.5, 5.0, "minival", save=lambda: logs.append("saved"), log=logs.append)
    assert "saved" in logs and any("early stopping at step 10" in line for line in logs)
    again = BestCheckpoint(str(tmp_path), tf.train.Checkpoint(v=v))
    assert again.info["step"] == 4 and again.stopped_at == 10
    v.assign(-1.0)
    assert again.restore() == 4 and float(v.numpy()) == 4.0
    # a crash between the two renames leaves .best-old: it is read back
    os.replace(tmp_path / "best", tmp_path / ".best-old")
    assert BestCheckpoint(str(tmp_path), tf.train.Checkpoint(v=v)).info["step"] == 4


def _recipe(*extra):
    overrides = shortcut_overrides(data="demo", steps=12) + [
        "data.image_size=32", "train.global_batch_size=16", "train.eval_steps=1", "train.steps_per_loop=2",
        "train.checkpoint_every_steps=2", "train.keep_checkpoints=10", "schedule.warmup_epochs=0",
        "schedule.base_lr=0.05", "schedule.base_batch_size=16", "train.keep_best=true", *extra]
    spe = recipe_lib.load("demo", overrides).steps_per_epoch()
    return recipe_lib.load("demo", overrides + [f"train.eval_every_epochs={2 / spe!r}"])  # every 2 steps


def _scripted_trainer(r, model_dir, scores, calls, kill_before_save_at=None):
    """A Trainer whose evaluations return `scores` in turn (then 0) and record (step, split, weights)."""
    from regnet_tf.train.trainer import Trainer

    trainer = Trainer(r, model_dir, log=lambda s: calls.setdefault("log", []).append(s))
    scores = list(scores)

    def evaluate(steps=0, split="validation"):  # noqa: ARG001
        calls.setdefault("evals", []).append((int(trainer.step.numpy()), split))
        calls.setdefault("weights", {}).setdefault(int(trainer.step.numpy()), _weights(trainer))  # the first
        top1 = scores.pop(0) if scores else 0.0
        return {"top1": top1, "top5": 100.0, "loss": 1.0, "examples": 16}

    trainer.evaluate = evaluate
    kill_before_save(trainer, kill_before_save_at)
    return trainer


def _weights(trainer):
    return [v.numpy().copy() for v in trainer.model.weights]


def test_early_stopping_exports_the_best_checkpoint(demo_cache, tmp_path):
    model_dir = str(tmp_path / "run")
    calls = {}
    trainer = _scripted_trainer(_recipe("train.patience=2"), model_dir, [10.0, 30.0, 20.0, 25.0], calls)
    trainer.train(export=True)
    assert [s for s, _ in calls["evals"][:4]] == [2, 4, 6, 8]  # stopped after 2 evaluations without a new best
    assert any("early stopping at step 8" in line for line in calls["log"])
    assert any("best checkpoint: step 4" in line for line in calls["log"])
    assert int(trainer.step.numpy()) == 4  # the best checkpoint is restored: the final evaluation and export use it
    info = json.load(open(os.path.join(model_dir, "best", "best.json")))
    assert info["step"] == 4 and info["top1"] == 30.0 and info["split"] == "validation" and info["stopped_at"] == 8
    restored = _weights(trainer)  # the weights evaluated at step 4, not the last ones (step 8)
    assert all(np.array_equal(a, b) for a, b in zip(restored, calls["weights"][4]))
    assert not all(np.array_equal(a, b) for a, b in zip(restored, calls["weights"][8]))
    assert os.path.exists(os.path.join(model_dir, "export", "4", "saved_model.pb"))
    records = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    best = [r for r in records if r["split"] == "best"]
    assert len(best) == 1 and best[0]["step"] == 4 and best[0]["top1"] == 30.0
    assert records[-1]["split"] == "validation" and records[-1]["step"] == 4
    # a rerun of the stopped run trains no further
    again = {}
    rerun = _scripted_trainer(_recipe("train.patience=2"), model_dir, [], again)
    rerun.train(export=False)
    assert any("stopped early at step 8" in line for line in again["log"]) and int(rerun.step.numpy()) == 4


def test_resumed_run_keeps_the_known_best_and_its_patience(demo_cache, tmp_path):
    model_dir = str(tmp_path / "run")
    r = _recipe("train.patience=3")
    first = {}
    with pytest.raises(_Killed):  # killed at step 8 before its checkpoint (and evaluation): resumes from 6
        _scripted_trainer(r, model_dir, [10.0, 30.0, 20.0], first, kill_before_save_at=8).train(export=False)
    assert json.load(open(os.path.join(model_dir, "best", "best.json")))["step"] == 4
    second = {}
    trainer = _scripted_trainer(r, model_dir, [25.0, 28.0, 99.0], second)
    trainer.train(export=False)
    # the evaluation at 6 counts: 8 and 10 make 3 without a new best (the known 30.0 is kept) -> stop at 10
    assert [s for s, _ in second["evals"]] == [8, 10, 4]  # then the final evaluation of the best checkpoint
    assert any("early stopping at step 10" in line for line in second["log"])
    assert int(trainer.step.numpy()) == 4


def test_minival_split_for_evaluations_and_both_at_the_end(demo_cache, tmp_path):
    model_dir = str(tmp_path / "run")
    calls = {}
    trainer = _scripted_trainer(_recipe("data.minival_shards=1"), model_dir, [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
                                calls)
    trainer.train(export=False)
    # during training and the final-step candidate: minival; the report: minival and validation
    assert calls["evals"] == [(2, "minival"), (4, "minival"), (6, "minival"), (8, "minival"), (10, "minival"),
                              (12, "minival"), (12, "minival"), (12, "validation")]
    info = json.load(open(os.path.join(model_dir, "best", "best.json")))
    assert info["step"] == 12 and info["split"] == "minival"
    records = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    assert [(r["split"], r["step"]) for r in records if r["split"] != "train"][-3:] == \
        [("best", 12), ("minival", 12), ("validation", 12)]
    assert trainer.final_metrics.keys() == {"minival", "validation"}
    assert os.path.isdir(os.path.join(model_dir, "minival"))  # its TensorBoard scalars


def test_minival_end_to_end_with_the_data_split(demo_cache, tmp_path):
    """Real evaluations on the held-out demo shard (regnet_tf.data's "minival" split): during training and for the
    best checkpoint; the final report on minival and validation."""
    from regnet_tf.train.trainer import Trainer

    overrides = shortcut_overrides(data="demo", steps=4) + [
        "data.image_size=32", "train.global_batch_size=16", "train.eval_steps=2", "train.steps_per_loop=2",
        "schedule.warmup_epochs=0", "schedule.base_lr=0.05", "schedule.base_batch_size=16", "train.keep_best=true",
        "data.minival_shards=1"]
    spe = recipe_lib.load("demo", overrides).steps_per_epoch()
    r = recipe_lib.load("demo", overrides + [f"train.eval_every_epochs={2 / spe!r}"])
    lines = []
    trainer = Trainer(r, str(tmp_path / "run"), log=lines.append)
    trainer.train(export=False)
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    evals = [(x["split"], x["step"]) for x in records if x["split"] != "train"]
    assert evals[0] == ("minival", 2) and evals[-2:] == [("minival", trainer.step.numpy()),
                                                         ("validation", trainer.step.numpy())]
    assert all(x["examples"] == 32 for x in records if x["split"] in ("minival", "validation"))
    assert json.load(open(tmp_path / "run" / "best" / "best.json"))["split"] == "minival"
    assert any(line.startswith("final evaluation at step") and "on minival" in line for line in lines)
