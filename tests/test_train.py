"""Training: schedules, weight decay, EMA, the loss, the host loop's cadence; end-to-end runs of launch/train.py on
the demo data (RegNet and ResNet-RS), Mirrored over 2 logical CPUs, MultiWorker over 2 local processes, SIGKILL +
resume, the NaN guard, export / eval, and the launcher's errors (one `error:` line, --verbose, a truncated TFRecord,
--data_dir on the demo recipe). Runs are tiny: 32 px, batch 16, a few steps."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import conftest
import keras
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.data.records import make_example
from regnet_tf.train import TrainingError, evaluate, optim
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train.cadence import Cadence
from regnet_tf.train.recipe import ScheduleConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "launch", "train.py")
TINY = conftest.TINY


@pytest.fixture(scope="session")
def env(demo_cache):
    """Subprocess environment with the run's demo-data cache (tests/conftest.py: generated once, shared)."""
    e = dict(os.environ, REGNET_TF_DATA=demo_cache, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    e.pop("TF_CONFIG", None)
    return e


def run(script, *args, env, timeout=420, **kwargs):
    return conftest.run_launcher(script, *args, env=env, timeout=timeout, **kwargs)


def checkpoint_steps(model_dir):
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    return sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths) if state else []


# ---------------------------------------------------------------------------------------------- components


def test_cosine_schedule_with_warmup():
    lr = optim.LearningRate(ScheduleConfig(name="cosine", warmup_epochs=2), peak=1.6, total_steps=100,
                            steps_per_epoch=10)
    end = 1.6 * 0.5 * (1 + np.cos(np.pi * 20 / 100))  # the cosine spans the warmup too (TF Model Garden)
    np.testing.assert_allclose([float(lr(s)) for s in (0, 10, 20, 60, 100)],
                               [0.0, end / 2, end, 1.6 * 0.5 * (1 + np.cos(np.pi * 0.6)), 0.0], rtol=1e-5, atol=1e-7)
    pycls = optim.LearningRate(ScheduleConfig(name="cosine", warmup_epochs=1, warmup_start=0.1, min_lr=0.5),
                               peak=1.0, total_steps=40, steps_per_epoch=10)
    start = 0.5 + 0.5 * 0.5 * (1 + np.cos(np.pi * 10 / 40))
    np.testing.assert_allclose([float(pycls(0)), float(pycls(40))], [0.1 * start, 0.5], rtol=1e-5)


def test_step_exponential_constant_schedules():
    step = optim.LearningRate(ScheduleConfig(name="step", boundaries=(30, 60, 80), warmup_epochs=5), 1.6, 900, 10)
    np.testing.assert_allclose([float(step(s)) for s in (0, 25, 50, 299, 300, 600, 800, 899)],
                               [0, 0.8, 1.6, 1.6, 0.16, 0.016, 0.0016, 0.0016], rtol=1e-5, atol=1e-8)
    exp = optim.LearningRate(ScheduleConfig(name="exponential", final_lr=0.02), 2.0, 1000, 10)
    np.testing.assert_allclose([float(exp(0)), float(exp(500)), float(exp(1000))], [2.0, 2.0 * 0.02 ** 0.5, 0.04],
                               rtol=1e-5)
    const = optim.LearningRate(ScheduleConfig(name="constant"), 0.3, 10, 10)
    assert float(const(7)) == pytest.approx(0.3)


def _tiny_model():
    from regnet_tf.applications import build_model
    from regnet_tf import AnyNetSpec

    spec = AnyNetSpec(ds=(1, 1), ws=(8, 16), gs=(4, 4), block="Y", se_ratio=0.25, stem_w=8)
    return build_model(spec, classes=3, input_shape=(32, 32, 3), classifier_activation=None)


def test_weight_decay_selection_and_l2():
    model = _tiny_model()
    kernels = optim.decayed_variables(model)
    assert kernels and all(v.name in ("kernel", "depthwise_kernel") for v in kernels)
    assert not any(v.name in ("gamma", "beta", "bias") for v in kernels)
    everything = optim.decayed_variables(model, decay_all=True)
    assert len(everything) == len(model.trainable_variables) > len(kernels)
    expected = 4e-5 * sum(float(np.sum(v.numpy() ** 2)) / 2 for v in kernels)
    assert float(optim.l2_loss(kernels, 4e-5)) == pytest.approx(expected, rel=1e-5)
    # decoupled: the optimizer decays the kernels only
    opt = optim.make_optimizer(recipe_lib.OptimizerConfig(weight_decay=0.1, weight_decay_mode="decoupled"), 0.5, model)
    opt.build(model.trainable_variables)
    before = {id(v): v.numpy().copy() for v in model.trainable_variables}
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    kernel_ids = {id(v) for v in kernels}
    for v in model.trainable_variables:
        if id(v) in kernel_ids:
            np.testing.assert_allclose(v.numpy(), before[id(v)] * (1 - 0.5 * 0.1), rtol=1e-5, atol=1e-7)
        else:
            np.testing.assert_array_equal(v.numpy(), before[id(v)])


def test_cross_entropy_label_smoothing_and_topk():
    logits = tf.constant([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    labels = tf.constant([0, 1])
    ours = optim.cross_entropy(labels, logits, 3, label_smoothing=0.1)
    ref = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction=None)(
        tf.one_hot(labels, 3), logits)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    soft = tf.constant([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]])  # MixUp labels: argmax is the class for accuracy
    assert float(evaluate.topk_correct(soft, logits, 1)) == 2.0
    assert float(evaluate.topk_correct(labels, logits, 1)) == 1.0
    assert float(evaluate.topk_correct(labels, logits, 5)) == 2.0  # k is capped at the number of classes


def test_ema_averages_every_variable_with_dynamic_decay():
    model = _tiny_model()
    ema = optim.EMA(model, decay=0.9, dynamic=True)
    mean = next(v for v in model.non_trainable_variables if v.name == "moving_mean")
    kernel = model.trainable_variables[0]
    m0, k0 = mean.numpy().copy(), kernel.numpy().copy()
    mean.assign(m0 + 1.0)
    kernel.assign(k0 + 1.0)
    ema.update()  # t = 0: dynamic decay min(0.9, 1 / 10) = 0.1
    i_mean = [id(v) for v in ema._model_vars].index(id(mean))
    np.testing.assert_allclose(ema.averages[i_mean].numpy(), 0.1 * m0 + 0.9 * (m0 + 1), rtol=1e-6)
    np.testing.assert_allclose(ema.averages[0].numpy(), 0.1 * k0 + 0.9 * (k0 + 1), rtol=1e-6, atol=1e-6)
    assert float(ema.current_decay()) == pytest.approx(2 / 11)
    fixed = optim.EMA(model, decay=0.9, dynamic=False)
    assert float(fixed.current_decay()) == pytest.approx(0.9)
    averaged = ema.averages[0].numpy().copy()
    ema.swap()
    np.testing.assert_allclose(kernel.numpy(), averaged)
    ema.swap()
    np.testing.assert_allclose(kernel.numpy(), k0 + 1.0)


def test_cadence_of_the_host_loop():
    """Loops never cross an epoch end or a checkpoint step; checkpoints at epoch ends (or every N steps) and at the
    end; evaluations every epoch but not at the end (the final one is separate); logs every N steps and at the end."""
    def walk(cadence, step=0):
        stops = []
        while step < cadence.total:
            step = cadence.next_stop(step)
            stops.append(step)
        return stops

    c = Cadence(total=25, steps_per_epoch=10, steps_per_loop=4, eval_every_epochs=1.0, log_every=6)
    stops = walk(c)
    assert stops == [4, 8, 10, 14, 18, 20, 24, 25]
    assert [s for s in stops if c.checkpoint_due(s)] == [10, 20, 25]
    assert [s for s in stops if c.eval_due(s)] == [10, 20]
    assert [s for s in stops if c.log_due(s)] == [8, 14, 20, 25]
    c = Cadence(total=25, steps_per_epoch=10, steps_per_loop=4, checkpoint_every=3)
    stops = walk(c)
    assert stops == [3, 6, 9, 10, 12, 15, 18, 20, 21, 24, 25]
    assert [s for s in stops if c.checkpoint_due(s)] == [3, 6, 9, 12, 15, 18, 21, 24, 25]
    assert not any(c.eval_due(s) for s in stops) and all(c.log_due(s) for s in stops)
    assert walk(Cadence(total=250, steps_per_epoch=200)) == [100, 200, 250]  # default loop: min(100, an epoch)


def test_resnet_rs_recipe_trains_in_process(env, monkeypatch, tmp_path):
    """ResNet-RS-50's recipe (BN momentum 0 + EMA of every variable, RandAugment, label smoothing, dropout) for a
    few steps on demo data, with a narrow one-block-per-stage network of the recipe's architecture (ResNet-D stem
    and shortcuts, SE, dropout): finite loss, EMA updated, BN statistics averaged, evaluation with the EMA
    weights."""
    from regnet_tf.train.trainer import Trainer

    monkeypatch.setenv("REGNET_TF_DATA", env["REGNET_TF_DATA"])
    overrides = shortcut_overrides(data="demo", steps=3) + [
        "data.image_size=32", "train.global_batch_size=8", "train.eval_steps=1", "train.steps_per_loop=3",
        "schedule.warmup_epochs=0", "schedule.base_lr=0.01", "schedule.base_batch_size=8",
        # a one-block-per-stage ResNet-RS, 8-64 wide: the recipe, not the network, is under test
        "model.spec.ds=[1, 1, 1, 1]", "model.spec.ws=[8, 16, 32, 64]", "model.spec.stem_w=16"]
    r = recipe_lib.load("resnet_rs_50_160", overrides)
    assert r.spec().bn_momentum == 0.0 and r.ema.decay == 0.9999 and r.data.randaug_layers == 2
    assert r.spec().se_ratio == 0.25 and r.spec().resnetd_shortcut and r.spec().replace_stem_pool
    assert r.spec().ds == (1, 1, 1, 1) and r.spec().dropout == 0.25
    trainer = Trainer(r, str(tmp_path / "rs"), log=lambda s: None)
    metrics = trainer.train(export=False)
    assert int(trainer.step.numpy()) == 3 and int(trainer.ema.num_updates.numpy()) == 3
    assert metrics["examples"] == 8 and 0.0 <= metrics["top1"] <= 100.0 and np.isfinite(metrics["loss"])
    mean = next(v for v in trainer.model.non_trainable_variables if v.name == "moving_mean")
    i = [id(v) for v in trainer.ema._model_vars].index(id(mean))
    assert not np.allclose(trainer.ema.averages[i].numpy(), mean.numpy())  # averaged, not the last batch's
    assert checkpoint_steps(str(tmp_path / "rs")) == [3]
    lines = [json.loads(line) for line in open(tmp_path / "rs" / "metrics.jsonl")]
    assert [line["split"] for line in lines] == ["train", "validation"] and lines[0]["step"] == 3


# ------------------------------------------------------------------------------------------------ end to end


def test_train_export_and_eval_a_regnet(env, tiny_run, tmp_path):
    """The tiny run (tests/conftest.py: the README's main job, 6 steps in loops of 3) wrote what a run writes; then
    launch/export.py and launch/eval.py on its checkpoint and on the SavedModel give the same top-1."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run, model_dir)  # a copy: the commands below must not change the shared run
    with open(os.path.join(os.path.dirname(tiny_run), "stdout.txt"), encoding="utf-8") as f:
        stdout = f.read()
    assert "--- resolved recipe ---" in stdout and "complexity:" in stdout and "GMACs" in stdout
    assert "final evaluation at step 6" in stdout and "exported SavedModel" in stdout
    assert "loss:" in stdout and "images/s" in stdout  # the Keras progress bar
    assert checkpoint_steps(model_dir) == [3, 6]
    records = [json.loads(line) for line in open(os.path.join(model_dir, "metrics.jsonl"))]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [3, 6]
    assert {"loss", "lr", "top1", "top5", "images_per_sec", "epoch"} <= set(train[0])
    assert records[-1]["split"] == "validation" and records[-1]["examples"] == 16
    for split in ("train", "validation"):
        assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(model_dir, split)))
    saved = os.path.join(model_dir, "export", "6")
    assert os.path.exists(os.path.join(saved, "saved_model.pb"))
    assert os.path.exists(os.path.join(saved, "assets", "label_map.txt"))

    # the export command to another directory (its `main` in this process: tests/conftest.py run_command; the
    # process of launch/export.py runs in test_export.py), then the eval command on the checkpoint (in this process)
    # and launch/eval.py on the SavedModel (a process: the export loads without the objects that wrote it)
    from regnet_tf.cli import eval as eval_command
    from regnet_tf.cli import export as export_command

    again = str(tmp_path / "serving" / "1")
    out = conftest.run_command(export_command, "--model_dir", model_dir, "--export_dir", again)
    assert "exported step 6 of demo" in out and again in out
    assert os.path.exists(os.path.join(again, "saved_model.pb"))
    with pytest.raises(FileExistsError, match="overwrite"):  # a user error: one `error:` line from the launcher
        conftest.run_command(export_command, "--model_dir", model_dir, "--export_dir", again)
    assert os.path.exists(os.path.join(again, "saved_model.pb"))  # the refused export left the first one
    # the whole split on both paths: the same images whatever order the readers interleave the files in
    ckpt = conftest.run_command(eval_command, "--model_dir", model_dir, "--batch_size", "200", "--steps", "5")
    served = run("eval.py", "--saved_model", again, "--data", "demo", "--batch_size", "200", "--steps", "5", env=env)
    assert served.returncode == 0, served.stderr[-3000:]
    top1 = [float(text.split("top-1 ")[1].split("%")[0]) for text in (ckpt, served.stdout)]
    assert "(1000 images)" in ckpt and "(1000 images)" in served.stdout
    assert top1[0] == pytest.approx(top1[1], abs=2.0)  # same weights, same preprocessing (in the graph)


def test_mirrored_over_two_logical_cpus(env, tmp_path):
    out = run("train.py", "--recipe", "demo", *TINY, "--steps", "4", "--set", "train.steps_per_loop=2",
              "--strategy", "mirrored", "--num_cpu_devices", "2", "--noexport", "--model_dir", str(tmp_path / "m"),
              env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MirroredStrategy with 2 replica(s)" in out.stdout
    assert "final evaluation at step 4" in out.stdout
    assert checkpoint_steps(str(tmp_path / "m")) == [4]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_two_local_processes(env, tmp_path):
    ports = [_free_port(), _free_port()]
    model_dir = str(tmp_path / "mw")
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        procs.append(subprocess.Popen(
            [sys.executable, TRAIN, "--recipe", "demo", *TINY, "--steps", "4", "--set", "train.steps_per_loop=2",
             "--strategy", "multi_worker", "--noexport", "--model_dir", model_dir],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env=dict(env, TF_CONFIG=json.dumps(tf_config))))
    try:
        outs = [p.communicate(timeout=420) for p in procs]
    finally:
        for p in procs:  # bounded: never leave a worker waiting for its peer
            if p.poll() is None:
                p.kill()
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-3000:]
        assert "MultiWorkerMirroredStrategy with 2 replica(s)" in stdout
    assert checkpoint_steps(model_dir) == [4]
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "metrics.jsonl", "recipe.yaml", "train", "validation"]


def test_sigkill_and_resume(env, tmp_path):
    """Kill -9 mid-run, restart with the same model_dir: it resumes from the last checkpoint and ends at the same
    step as an uninterrupted run; every kept checkpoint loads."""
    model_dir = str(tmp_path / "k")
    args = [sys.executable, TRAIN, "--recipe", "demo", *TINY, "--steps", "30", "--set", "train.steps_per_loop=1",
            "--set", "train.checkpoint_every_steps=2", "--set", "train.keep_checkpoints=3", "--noexport",
            "--model_dir", model_dir]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and p.poll() is None and (max(checkpoint_steps(model_dir), default=0) < 6):
            time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    killed_at = max(checkpoint_steps(model_dir), default=0)
    assert 0 < killed_at < 30, f"the run was not killed mid-way: {p.stderr.read()[-2000:]}"
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env, timeout=420)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = int(out.stdout.split("resuming from step ")[1].split()[0])
    assert resumed >= killed_at
    assert "final evaluation at step 30" in out.stdout
    steps = checkpoint_steps(model_dir)
    assert steps[-1] == 30 and len(steps) <= 3
    for s in steps:  # no checkpoint is corrupt
        reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints", f"ckpt-{s}"))
        assert int(reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == s


def test_sigterm_saves_a_checkpoint_and_exits(env, tmp_path, monkeypatch):
    """Preemption: SIGTERM mid-run saves a checkpoint of the current step (between loops) and exits with 128 + 15;
    the rerun resumes from it."""
    model_dir = str(tmp_path / "term")
    args = [sys.executable, TRAIN, "--recipe", "demo", *TINY, "--steps", "200", "--set", "train.steps_per_loop=1",
            "--set", "train.checkpoint_every_steps=50", "--noexport", "--model_dir", model_dir]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    deadline = time.time() + 300
    try:  # wait for the first loops (the metrics log gets a line per loop), then preempt
        path = os.path.join(model_dir, "metrics.jsonl")
        while time.time() < deadline and p.poll() is None and \
                not (os.path.exists(path) and len(open(path).read().splitlines()) >= 3):
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    saved = int(stdout.split("received signal 15: saved ")[1].split(" at step ")[1].split(";")[0])
    assert 3 <= saved < 200 and max(checkpoint_steps(model_dir)) == saved  # the SIGTERM save is the last one
    # the rerun (in this process: what it prints is the point, not the process) finds the run finished at its step
    from regnet_tf.cli import train as train_command

    monkeypatch.setenv("REGNET_TF_DATA", env["REGNET_TF_DATA"])
    rerun = args[args.index(TRAIN) + 1:]
    rerun[rerun.index("--steps") + 1] = "1"
    out = conftest.run_command(train_command, *rerun)
    assert f"model_dir already holds the final step {saved}" in out


def _tiny_trainer(env, monkeypatch, model_dir, *overrides, shortcuts=()):
    """An in-process Trainer of the demo recipe with `TINY`'s values (launch/train.py's shortcut flags given as
    `shortcut_overrides` keyword arguments): what a short launcher run builds, without a process."""
    from regnet_tf.train.trainer import Trainer

    monkeypatch.setenv("REGNET_TF_DATA", env["REGNET_TF_DATA"])
    tiny = [a for a in TINY if a not in ("--data", "demo", "--set")]
    r = recipe_lib.load("demo", shortcut_overrides(data="demo", **dict(shortcuts)) + tiny + list(overrides))
    logs = []
    return Trainer(r, model_dir, log=logs.append), logs


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(env, monkeypatch, tmp_path):
    model_dir = str(tmp_path / "nan")
    trainer, _ = _tiny_trainer(env, monkeypatch, model_dir, "train.steps_per_loop=1", "train.checkpoint_every_steps=1",
                               "schedule.base_lr=1e30", shortcuts={"steps": 20})
    with pytest.raises(TrainingError) as e:
        trainer.train(export=False)
    message = str(e.value)  # the launcher prints it as its one `error:` line (tests/test_train.py::test_launcher_errors)
    assert "not finite" in message and "at step" in message and "last good checkpoint" in message
    bad = int(message.split("(not finite) at step ")[1].split()[0])
    assert checkpoint_steps(model_dir) and max(checkpoint_steps(model_dir)) == bad - 1


def _command_error(*args):
    """The `error:` line launch/train.py prints for ``args`` (its `main` in this process: tests/conftest.py
    run_command): the error must be a user error, which `cli.run` prints as this one line and exit status 1."""
    from regnet_tf import cli
    from regnet_tf.cli import train as train_command

    with pytest.raises(Exception) as e:
        conftest.run_command(train_command, *args)
    assert cli.is_user_error(e.value), repr(e.value)
    return cli.error_line(e.value)


def test_launcher_errors(env, tmp_path):
    """In processes, the errors found before TensorFlow loads (a user error without --verbose is one `error:` line,
    no traceback) and --list_recipes; in this process (`_command_error`), the ones after it loads: no data,
    --strategy tpu without --tpu."""
    out = run("train.py", "--recipe", "resnet_rs_152_244", env=env)
    assert out.returncode == 1 and "Unknown recipe" in out.stderr and "resnet_rs_152_224" in out.stderr
    assert "Traceback" not in out.stderr and len(_error_lines(out.stderr)) == 1  # without --verbose: one line
    assert out.stderr.strip().splitlines()[-1].startswith("error: ")
    line = _command_error("--recipe", "resnet_rs_152_224", "--model_dir", str(tmp_path / "x"))
    assert "data_dir" in line and "train-00000" in line and "--data demo" in line
    assert not os.path.exists(tmp_path / "x")
    out = run("train.py", "--recipe", "demo", "--set", "train.epoch=2", env=env)
    assert out.returncode != 0 and "did you mean 'epochs'" in out.stderr
    line = _command_error("--recipe", "demo", "--strategy", "tpu", "--steps", "1", "--model_dir", str(tmp_path / "t"))
    assert "--tpu" in line and not os.path.exists(tmp_path / "t")
    out = run("train.py", "--list_recipes", env=env)
    assert out.returncode == 0 and "resnet_rs_152_224" in out.stdout and "82.8" in out.stdout
    assert len(out.stdout.splitlines()) == len(recipe_lib.list_recipes()) + len(recipe_lib.list_grids())
    assert "grid: rs_scaling_d{depth}_w{width}_r{res}_e{epochs} (depth in {26, 50" in out.stdout


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_training(env, monkeypatch, tmp_path, precision):
    """mixed_bfloat16 (TPU's policy, also on CPU) and mixed_float16 with dynamic loss scaling (GPU's policy), from the
    launcher's --mixed_precision flag, trained in-process."""
    assert f"runtime.mixed_precision={precision}" in shortcut_overrides(mixed_precision=precision)
    try:
        trainer, logs = _tiny_trainer(env, monkeypatch, str(tmp_path / precision), "train.steps_per_loop=2",
                                      shortcuts={"steps": 2, "mixed_precision": precision})
        assert trainer.policy == f"mixed_{precision}"
        metrics = trainer.train(export=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert any(f"precision mixed_{precision}" in line for line in logs) and int(trainer.step.numpy()) == 2
    assert np.isfinite(metrics["loss"])
    if precision == "float16":
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)


def _write_records(path, labels, seed):
    """A TFRecord file of small JPEGs (label k stored as k + 1, as ImageNet's)."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(path) as w:
        for k in labels:
            pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
            w.write(make_example(tf.io.encode_jpeg(pixels).numpy(), k + 1, 24, 24))


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_truncated_tfrecord_is_one_error_line_and_data_dir_picks_the_source(env, tmp_path):
    """A truncated shard stops training with one `error:` line naming the file and the record index (no graph
    traceback; --verbose prints it). `--data_dir` without `--data` on the demo recipe reads the directory's TFRecords;
    a directory without data is a one-line error saying to add --data."""
    data = tmp_path / "data"
    data.mkdir()
    _write_records(str(data / "validation-00000-of-00001"), [0, 1, 2] * 4, seed=0)
    shard = str(data / "train-00000-of-00001")
    _write_records(shard, [0, 1, 2] * 10, seed=1)
    with open(shard, "rb") as f:
        content = f.read()
    with open(shard, "wb") as f:
        f.write(content[:-40])  # the last record (index 29) is cut
    args = ["--recipe", "demo", *TINY[2:], "--data_dir", str(data), "--set", "data.num_classes=3",
            "--set", "data.num_train_examples=30", "--set", "data.num_eval_examples=12", "--set",
            "data.shuffle_buffer=4", "--steps", "20", "--set", "train.steps_per_loop=1", "--noexport"]
    # the line the launcher prints without --verbose (its `main` in this process; the process without --verbose
    # printing only its `error:` line is test_launcher_errors'), then launch/train.py --verbose in a process
    line = _command_error(*args, "--data", "tfrecord", "--model_dir", str(tmp_path / "t1"))
    assert line.startswith(f"error: Truncated or corrupted TFRecord file {shard}: cannot read record index 29")
    assert "{{node" not in line and "Graph execution error" not in line

    verbose = run("train.py", *args, "--verbose", "--model_dir", str(tmp_path / "t2"), env=env)  # no --data
    assert verbose.returncode == 1 and "source: tfrecord" in verbose.stdout  # picked from the directory
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1] == line and len(_error_lines(verbose.stderr)) == 1

    empty = tmp_path / "empty"  # in this process: what the launcher prints as its one line (as `out` above)
    empty.mkdir()
    line = _command_error("--recipe", "demo", "--data_dir", str(empty))
    assert "add --data tfrecord|folder|tfds" in line and str(empty) in line
