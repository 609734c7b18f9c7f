"""SWA (regnet_tf.train.swa): the snapshot schedule and the host loop's stops, the equal-weight running average, the
precise BN recompute against an independent computation, and a tiny run on demo data that is interrupted and
resumed: its average is the running mean of exactly the snapshots the run kept (checkpointed), evaluation and export
use the averaged weights with their recomputed BN statistics."""

import json

import numpy as np
import pytest
import tensorflow as tf

import keras
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train import swa as swa_lib
from regnet_tf.train.cadence import Cadence


def _tiny_model():
    from regnet_tf import AnyNetSpec
    from regnet_tf.applications import build_model

    spec = AnyNetSpec(ds=(1, 1), ws=(8, 16), gs=(4, 4), block="Y", se_ratio=0.25, stem_w=8)
    return build_model(spec, classes=3, input_shape=(32, 32, 3), classifier_activation=None)


def test_snapshot_schedule_and_loop_stops():
    first, period = swa_lib.snapshot_steps(total=25, steps_per_epoch=10, start=0.5, every_epochs=0.5)
    assert (first, period) == (13, 5)
    c = Cadence(total=25, steps_per_epoch=10, steps_per_loop=4, swa_first=first, swa_period=period)
    stops, step = [], 0
    while step < c.total:
        step = c.next_stop(step)
        stops.append(step)
    assert stops == [4, 8, 10, 14, 15, 19, 20, 24, 25]  # a loop ends at each snapshot step
    assert [s for s in stops if c.swa_due(s)] == [15, 20, 25]  # multiples of 5 from step 13 on, and the last step
    # 90 epochs, the last 25%: one snapshot at the end of each epoch 68..90
    first, period = swa_lib.snapshot_steps(90 * 100, 100, 0.75, 1.0)
    assert [s for s in range(1, 9001) if swa_lib.snapshot_due(s, 9000, first, period)] == \
        [e * 100 for e in range(68, 91)]
    assert not Cadence(total=25, steps_per_epoch=10).swa_due(25)  # no SWA: never


def test_equal_weight_average_count_and_swap():
    model = _tiny_model()
    swa = swa_lib.SWA(model)
    kernel = model.trainable_variables[0]
    mean = next(v for v in model.non_trainable_variables if v.name == "moving_mean")
    rng = np.random.default_rng(0)
    snaps = []
    for _ in range(3):
        kernel.assign(rng.normal(size=kernel.shape).astype(np.float32))
        mean.assign(mean.numpy() + 1.0)  # BN statistics are not averaged
        snaps.append(kernel.numpy().copy())
        swa.update()
    assert int(swa.count.numpy()) == 3 and len(swa.averages) == len(model.trainable_variables)
    np.testing.assert_allclose(swa.averages[0].numpy(), np.mean(snaps, axis=0), rtol=1e-5, atol=1e-6)
    assert not swa.bn_current()
    raw_mean, stats = mean.numpy().copy(), [s.numpy().copy() for s in swa.bn_stats]
    swa.swap()
    np.testing.assert_allclose(kernel.numpy(), np.mean(snaps, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mean.numpy(), stats[swa._bn_vars.index(mean)])  # noqa: SLF001
    swa.swap()
    np.testing.assert_array_equal(kernel.numpy(), snaps[-1])
    np.testing.assert_array_equal(mean.numpy(), raw_mean)


def test_precise_bn_is_the_mean_of_the_per_batch_statistics():
    """Independent check: the inputs of every BN layer in training mode (a Keras sub-model), their per-batch mean
    and biased variance in float64, averaged over the batches."""
    keras.utils.set_random_seed(1)
    model = _tiny_model()
    swa = swa_lib.SWA(model)
    rng = np.random.default_rng(1)
    for v in model.trainable_variables:  # the "averaged" weights differ from the model's
        v.assign(v.numpy() + rng.normal(scale=0.05, size=v.shape).astype(np.float32))
    swa.update()
    for v in model.trainable_variables:
        v.assign(v.numpy() * 0.5)
    raw = [v.numpy().copy() for v in model.variables]
    layers = swa_lib.bn_layers(model)
    momenta = [layer.momentum for layer in layers]
    batches = [(rng.normal(size=(6, 32, 32, 3)).astype(np.float32) + i, np.zeros(6, np.int64)) for i in range(3)]
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))).batch(6)

    swa.recompute_bn(tf.distribute.get_strategy(), dataset, 3)
    assert swa.bn_current() and [layer.momentum for layer in layers] == momenta
    for v, before in zip(model.variables, raw):  # the model's own weights and statistics are untouched
        np.testing.assert_array_equal(v.numpy(), before)

    swa.swap()  # the averaged weights and the recomputed statistics (not used by the training-mode probe)
    got = [v.numpy().copy() for v in swa._bn_vars]  # noqa: SLF001
    probe = keras.Model(model.inputs[0], [layer.input for layer in layers])
    expected = [np.zeros(v.shape) for v in swa._bn_vars]  # noqa: SLF001
    for images, _ in batches:
        inputs = probe(images, training=True)
        for i, x in enumerate(inputs):
            x = np.asarray(x, np.float64)
            expected[2 * i] += x.mean(axis=(0, 1, 2)) / 3
            expected[2 * i + 1] += x.var(axis=(0, 1, 2)) / 3
    swa.swap()
    assert len(got) == 2 * len(layers) >= 4
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-5)
    # not what a momentum would give: the last batch's statistics alone differ
    assert not np.allclose(got[0], np.asarray(probe(batches[-1][0], training=True)[0]).mean(axis=(0, 1, 2)),
                           rtol=1e-3)


class _Killed(Exception):
    pass


def kill_before_save(trainer, step):
    """Makes `trainer.save()` raise _Killed at `step` (a kill between a loop and its checkpoint); None: never."""
    save = trainer.save

    def killing_save():
        if int(trainer.step.numpy()) == step:
            raise _Killed()
        return save()

    trainer.save = killing_save


def _recipe():
    overrides = shortcut_overrides(data="demo", steps=8) + [
        "data.image_size=32", "train.global_batch_size=16", "train.eval_steps=1", "train.steps_per_loop=2",
        "train.checkpoint_every_steps=2", "train.keep_checkpoints=10", "train.eval_every_epochs=0",
        "schedule.warmup_epochs=0", "schedule.base_lr=0.05", "schedule.base_batch_size=16",
        "data.deterministic=true", "data.seed=3", "swa.enabled=true", "swa.start=0.5", "swa.bn_examples=32"]
    r = recipe_lib.load("demo", overrides)
    spe = r.steps_per_epoch()
    return recipe_lib.load("demo", overrides + [f"swa.every_epochs={2 / spe!r}"])


def _recording_trainer(r, model_dir, records, kill_before_save_at=None):
    from regnet_tf.train.trainer import Trainer

    trainer = Trainer(r, model_dir, log=lambda s: records.setdefault("log", []).append(s))
    update = trainer.swa.update

    def recording_update():
        records.setdefault("snaps", []).append(
            (int(trainer.step.numpy()), [v.numpy().copy() for v in trainer.swa._weights]))  # noqa: SLF001
        return update()

    trainer.swa.update = recording_update
    kill_before_save(trainer, kill_before_save_at)
    return trainer


def _running_mean(snapshots):
    """The SWA formula in float32, in the same order: a_n = (a_{n-1} (n - 1) + w_n) / n."""
    avg = None
    for n, weights in enumerate(snapshots):
        if avg is None:
            avg = [w.copy() for w in weights]
            continue
        avg = [(a * np.float32(n) + w) / np.float32(n + 1) for a, w in zip(avg, weights)]
    return avg


def test_swa_run_interrupted_and_resumed(demo_cache, tmp_path):
    r = _recipe()
    # uninterrupted: snapshots at steps 4, 6, 8
    whole = {}
    a = _recording_trainer(r, str(tmp_path / "a"), whole)
    a.train(export=True)
    assert [s for s, _ in whole["snaps"]] == [4, 6, 8] and int(a.swa.count.numpy()) == 3
    for got, want in zip(a.swa.averages, _running_mean([w for _, w in whole["snaps"]])):
        np.testing.assert_array_equal(got.numpy(), want)  # the same float32 operations, in the same order
    assert a.swa.bn_current()  # the final evaluation recomputed BN for the average of 3 snapshots
    assert any("SWA: BN statistics recomputed on 2 training batches" in line for line in whole["log"])
    assert any("final evaluation at step 8 on validation" in line and "SWA of 3 snapshots" in line
               for line in whole["log"])
    train = [json.loads(x) for x in open(tmp_path / "a" / "metrics.jsonl") if '"train"' in x]
    assert [(t["step"], t["swa_snapshots"]) for t in train] == [(2, 0), (4, 1), (6, 2), (8, 3)]
    # the checkpoint holds the averages and the counts
    reader = tf.train.load_checkpoint(str(tmp_path / "a" / "checkpoints" / "ckpt-8"))
    assert int(reader.get_tensor("swa/count/.ATTRIBUTES/VARIABLE_VALUE")) == 3
    assert int(reader.get_tensor("swa/bn_count/.ATTRIBUTES/VARIABLE_VALUE")) == 3  # computed before the last save
    assert sum(line.startswith("SWA: BN statistics recomputed") for line in whole["log"]) == 1  # once for eval and export
    np.testing.assert_array_equal(reader.get_tensor("swa/averages/0/.ATTRIBUTES/VARIABLE_VALUE"),
                                  a.swa.averages[0].numpy())
    # the export holds the averaged weights with the recomputed BN statistics
    meta = json.load(open(tmp_path / "a" / "export" / "8" / "assets.extra" / "regnet_tf.json"))
    assert meta["metadata"]["averaged"] == "SWA of 3 snapshots"
    with a.ema_weights():
        swapped = [v.numpy().copy() for v in a.model.variables]
    np.testing.assert_array_equal(swapped[a.model.variables.index(a.swa._weights[0])],  # noqa: SLF001
                                  a.swa.averages[0].numpy())

    # killed at step 6 after its snapshot, before its checkpoint: resumes from 4 and redoes the snapshot of 6 once
    parts = {}
    b = _recording_trainer(r, str(tmp_path / "b"), parts, kill_before_save_at=6)
    with pytest.raises(_Killed):
        b.train(export=False)
    assert [s for s, _ in parts["snaps"]] == [4, 6]
    for x, y in zip(parts["snaps"][0][1], whole["snaps"][0][1]):  # same seed, deterministic data: same weights
        np.testing.assert_array_equal(x, y)
    resumed = {}
    c = _recording_trainer(r, str(tmp_path / "b"), resumed)
    c.train(export=False)
    assert any("resuming from step 4" in line for line in resumed["log"])
    assert [s for s, _ in resumed["snaps"]] == [6, 8] and int(c.swa.count.numpy()) == 3
    kept = [parts["snaps"][0][1]] + [w for _, w in resumed["snaps"]]
    for got, want in zip(c.swa.averages, _running_mean(kept)):
        np.testing.assert_array_equal(got.numpy(), want)  # the same float32 operations, in the same order
