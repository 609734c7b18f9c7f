"""Fine-tuning (issue 20): weights from a run, a file or the table; the head; the frozen phase; per-stage rates;
the recipes; the command line; and a short fine-tune beating the same run from scratch."""

from __future__ import annotations

import json
import os
import shutil

import keras
import numpy as np
import pytest

from conftest import build_once, run_launcher
from regnet_tf.applications import build_model
from regnet_tf.data import demo
from regnet_tf.models.anynet import AnyNetSpec
from regnet_tf.train import TrainingError, finetune
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train.evaluate import load_run
from regnet_tf.train.trainer import Trainer
from regnet_tf.weights import core, pretrained

SHAPES4 = ("disk", "square", "triangle", "ring")
SMALL = ["data.image_size=32", "train.eval_every_epochs=0", "schedule.warmup_epochs=0", "runtime.seed=1",
         "data.deterministic=true", "data.seed=1", "schedule.base_lr=0.02", "regularization.label_smoothing=0",
         "data.source=folder"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A user's folder of 4 classes (demo shapes, 12 images each: 10%, rounded, at least 1, held out per class)."""
    return demo.write_folder(tmp_path_factory.mktemp("photos") / "photos", SHAPES4, per_class=12, seed=5,
                             min_size=32, max_size=40)


@pytest.fixture(scope="session")
def transfer(tmp_path_factory):
    """(a run pre-trained on 3 demo classes, a 2-class folder of the same images): 64 images per class, their own
    validation set (a task on which a trained network beats a fresh one with certainty: ~80-90% vs chance after 60
    steps), trained in-process for 60 steps (~10 s), once per pytest run (`build_once`). Read it, never write it."""

    def make(root):
        images = root / "images"
        demo.write_folder(images, ("disk", "stripes", "checkerboard"), per_class=64, seed=7, min_size=32, max_size=40)
        for task, classes in (("source", ("disk", "stripes", "checkerboard")), ("target", ("disk", "stripes"))):
            for split in ("train", "validation"):
                for c in classes:
                    shutil.copytree(images / c, root / task / split / c)
        r = recipe_lib.load("demo", SMALL + [f"data.data_dir={root / 'source'}", "train.steps=60",
                                             "train.global_batch_size=32", "schedule.base_batch_size=32"])
        metrics = Trainer(r, str(root / "pretrain"), log=lambda s: None).train(export=False)
        assert metrics["top1"] > 60, metrics  # 3 classes: chance is 33%

    root = build_once(tmp_path_factory, "finetune_transfer", make)
    return str(root / "pretrain"), str(root / "target")


def ft_recipe(src, data_dir, *extra):
    """The demo recipe fine-tuned from run `src` on the folder `data_dir` at 32 px (batch 8: 16 steps per epoch)."""
    return recipe_lib.load("demo", SMALL + [f"finetune.weights={src}", f"data.data_dir={data_dir}",
                                            "train.global_batch_size=8", "schedule.base_batch_size=8", *extra])


def source_weights(src):
    """{layer name: weights} of a run's last checkpoint, read independently of `finetune` (a Trainer restore)."""
    t = Trainer(load_run(src), src, log=lambda s: None)
    t.restore_or_fail()
    return {layer.name: [w.numpy() for w in layer.weights] for layer in t.model.layers if layer.weights}


def layer_weights(model):
    return {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers if layer.weights}


# ---------------------------------------------------------------------------------------------- in-process runs


def test_frozen_phase_beats_scratch_then_unfrozen_from_a_run(transfer, tmp_path):
    src, target = transfer
    want = source_weights(src)
    out, logs = str(tmp_path / "ft"), []
    batch16 = ["train.global_batch_size=16", "schedule.base_batch_size=16"]  # 128 images: 8 steps per epoch
    # all 12 steps in the frozen phase (freeze_steps = min(total, ...)), BN in inference mode (Keras's convention)
    t = Trainer(ft_recipe(src, target, "train.steps=12", "finetune.freeze_epochs=100", *batch16), out, log=logs.append)
    assert t.num_classes == 2 and t.plan.freeze_steps == 12
    fine_tuned = t.train(export=False)
    loaded = [s for s in logs if s.startswith("fine-tuning from")]
    assert loaded and "loaded 24 layers" in loaded[0] and "predictions (shapes" in loaded[0], logs
    got = layer_weights(t.model)
    assert got.keys() == want.keys()
    for name in want:
        if name == "predictions":  # a new classifier: 2 classes instead of the run's 3
            assert got[name][0].shape == (256, 2) and want[name][0].shape == (256, 3)
        else:  # kernels, BN gamma/beta and moving statistics: bit-equal to the source after the frozen phase
            for a, b in zip(got[name], want[name]):
                np.testing.assert_array_equal(a, b, err_msg=name)
    record = json.loads((tmp_path / "ft" / finetune.RECORD).read_text())
    assert record["weights"] == src and "last checkpoint: step 60" in record["source"]
    assert record["classes"] == ["checkerboard", "disk", "stripes"]

    # the same 12 steps from random initialization (seeded, deterministic data): a linear probe of the pre-trained
    # run's features on its own images beats it with certainty (measured 84-94% vs 52-63% top-1, loss 0.22-0.36 vs
    # 0.66-0.71)
    r = recipe_lib.load("demo", SMALL + [f"data.data_dir={target}", "train.steps=12", *batch16])
    scratch = Trainer(r, str(tmp_path / "scratch"), log=lambda s: None).train(export=False)
    assert fine_tuned["top1"] > scratch["top1"] + 10 and fine_tuned["loss"] < scratch["loss"] - 0.15, (
        fine_tuned, scratch)

    # resumed with 2 more steps: the phase ends at step 12, every layer trains, the loaded weights are not reloaded
    logs.clear()
    t2 = Trainer(ft_recipe(src, target, "train.steps=14", "finetune.freeze_epochs=1.5", *batch16), out,
                 log=logs.append)
    assert t2.plan.freeze_steps == 12
    t2.train(export=False)
    assert not [s for s in logs if s.startswith("fine-tuning from") and "loaded" in s], logs
    after = layer_weights(t2.model)
    assert not np.array_equal(after["s1_b1_a"][0], want["s1_b1_a"][0])  # the backbone trained after step 12
    # other weights on a run that has checkpoints: it keeps what it started from, and says so
    logs.clear()
    t3 = Trainer(ft_recipe("imagenet", target, "train.steps=14"), out, log=logs.append)
    assert t3.init == t2.init and any(s.startswith("note: this run started from") for s in logs), logs


def test_plan_stages_multipliers_and_bn_modes():
    spec = AnyNetSpec(ds=(1, 1), ws=(8, 16), stem_w=8, block="VR", head_w=32)
    model = build_model(spec, classes=3, input_shape=(32, 32, 3))
    assert [finetune.stage_of(n, 2) for n in ("stem_conv", "s1_b1_a", "s2_b1_b_bn", "head_conv", "predictions")] == [
        0, 1, 2, 2, None]
    r = recipe_lib.load("demo", ["finetune.weights=x.weights.h5", "finetune.freeze_epochs=1",
                                 "finetune.stage_lr_decay=0.5", "finetune.head_lr_multiplier=10"])
    plan = finetune.Plan.of(r, spec, steps_per_epoch=10, total_steps=100)
    assert plan.freeze_steps == 10 and plan.frozen(9) and not plan.frozen(10)
    m = {v.path: plan.multiplier(v) for v in model.trainable_variables}
    assert m["stem_conv/kernel"] == 0.125 and m["s1_b1_a/kernel"] == 0.25 and m["s2_b1_a/kernel"] == 0.5
    assert m["head_conv/kernel"] == 0.5 and m["predictions/kernel"] == 10
    frozen = plan.set_phase(model, frozen=True)
    assert {v.path for v in frozen} == {"predictions/kernel", "predictions/bias"}
    assert not any(layer.trainable for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert len(plan.set_phase(model, frozen=False)) == len(model.trainable_variables) > 2
    plan.config = r.finetune.__class__(**{**vars(r.finetune), "freeze_bn": "always"})
    variables = plan.set_phase(model, frozen=False)
    assert not any("_bn/" in v.path for v in variables) and any("_bn/" in v.path for v in model.variables)


def test_converted_weights_carry_their_input_adapter_into_training_and_export(photos, tmp_path):
    spec = AnyNetSpec(ds=(1, 1), ws=(8, 16), stem_w=8, block="VR")
    config = core.WeightsConfig(model="", source="timm", input_mean=(0.5, 0.5, 0.5), input_std=(0.5, 0.5, 0.5),
                                input_size=40, classes=7)
    from regnet_tf.models.common import keras_model

    model = keras_model(spec, keras.Input((None, None, 3)), weights_config=config, classes=7)
    path = core.save(model, str(tmp_path / "w.weights.h5"), config)
    r = recipe_lib.load("demo", [f"finetune.weights={path}", "data.image_size=weights", "model.spec.ds=[1, 1]",
                                 "model.spec.ws=[8, 16]", "model.spec.ss=[2, 2]", "model.spec.stem_w=8",
                                 "data.source=folder", f"data.data_dir={photos}"])
    assert r.data.image_size == 40  # the weights' eval resolution
    t = Trainer(r, str(tmp_path / "ft"), log=lambda s: None)
    assert t.model.get_layer("input_adapter") is not None
    loaded, initialized = finetune.load(t.model, t.init, finetune.class_names(t.recipe.data), log=lambda s: None)
    assert "s1_b1_a" in loaded and initialized[0].startswith("predictions (shapes")
    np.testing.assert_array_equal(t.model.get_layer("s1_b1_a").kernel.numpy(), model.get_layer("s1_b1_a").kernel.numpy())
    again = Trainer(r, str(tmp_path / "ft"), log=lambda s: None)  # a resumed run, eval and export read the record
    assert again.init == t.init and again.init.config == config and again.model.get_layer("input_adapter") is not None


# ------------------------------------------------------------------------------------------ errors and recipes


def test_mismatch_outside_the_head_names_the_layers(tmp_path):
    a = build_model(AnyNetSpec(ds=(1, 1), ws=(8, 16), stem_w=8, block="VR"), classes=3, input_shape=(32, 32, 3))
    b = build_model(AnyNetSpec(ds=(1, 1), ws=(8, 24), stem_w=8, block="VR"), classes=3, input_shape=(32, 32, 3))
    path = str(tmp_path / "a.weights.h5")
    a.save_weights(path)
    init = finetune.Init(path, path, None, path)
    with pytest.raises(TrainingError, match=r"shapes that differ .*s2_b1_a") as e:
        finetune.load(b, init, log=lambda s: None)
    assert "\n" not in str(e.value)
    loaded, initialized = finetune.load(a, init, log=lambda s: None)  # same model, same classes: everything loads
    assert "predictions" in loaded and not initialized
    loaded, initialized = finetune.load(a, finetune.Init(path, path, None, path, ("x", "y", "z")), ("p", "q", "r"),
                                        log=lambda s: None)  # as many classes, other ones: a new classifier
    assert "predictions" not in loaded and "other ones" in initialized[0]


@pytest.mark.parametrize("overrides, match", [
    (["finetune.freeze_epochs=1"], "would freeze a randomly initialized backbone"),
    (["finetune.weights=imagenet", "finetune.stage_lr_decay=0.5", "optimizer.name=rmsprop"], "for SGD only"),
    (["finetune.freeze_bn=sometimes"], "with_backbone"),
    (["finetune.stage_lr_decay=1.5"], r"\(0, 1\]"),
])
def test_recipe_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        recipe_lib.load("demo", overrides)


def test_weights_errors_are_one_line(tmp_path):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"x")
    for weights, match in ((str(bad), "launch/convert.py"), (str(tmp_path / "nope.weights.h5"), "no such file"),
                           (str(tmp_path / "pretrain"), None)):
        if match is None:  # a directory that is not a run
            os.makedirs(weights)
            match = "recipe.yaml"
        with pytest.raises((TrainingError, ValueError), match=match) as e:
            r = recipe_lib.load("demo", [f"finetune.weights={weights}"])
            finetune.resolve(r, str(tmp_path / "ft"))
        assert "\n" not in str(e.value)


def test_finetune_recipes():
    names = recipe_lib.list_recipes()
    for name in ("finetune", "finetune_demo", "finetune_regnety_040", "finetune_resnet_rs_50",
                 "finetune_efficientnet_b0", "rs_transfer_resnet_152", "rs_transfer_resnet_152_2x"):
        assert name in names
    ft = recipe_lib.load("finetune", ["model.name=regnety_040"])
    assert ft.finetune.weights == "imagenet" and ft.finetune.freeze_epochs > 0
    assert ft.data.image_size == pretrained.lookup("regnety_040").input_size  # the weights' eval resolution
    assert not ft.optimizer.decay_all  # no weight decay on BN and biases
    assert recipe_lib.load("finetune_efficientnet_b0").data.image_size == pretrained.lookup("efficientnet_b0").input_size
    grid = [g for g in recipe_lib.list_grids() if g.summary().startswith("rs_finetune_cifar100")]
    assert len(grid) == 1 and len(grid[0].names()) == 21
    # section 7.4's pre-training: the vanilla ResNet, 400 epochs, no EMA, no stochastic depth
    pre = recipe_lib.load("rs_transfer_resnet_152")
    spec = pre.spec()
    assert spec.stem == "v0" and spec.se_ratio == 0 and not spec.resnetd_shortcut and spec.drop_path_rate == 0
    assert pre.ema.decay == 0 and pre.train.epochs == 400 and pre.data.randaug_layers == 2 and spec.dropout > 0
    wide = recipe_lib.load("rs_transfer_resnet_152_2x").spec()
    assert wide.ws == tuple(2 * w for w in spec.ws) and wide.stem_w == 2 * spec.stem_w and wide.ds == spec.ds


# ------------------------------------------------------------------------------------------- the command line


def fake_imagenet_cache(keras_home, name="regnetx_002"):
    """Puts `name`'s default ImageNet weights (random, converted-file format) into a Keras cache, so that
    `--weights imagenet` finds them there and downloads nothing."""
    entry = pretrained.lookup(name)
    _, converted = pretrained._file_names(entry)
    config = core.WeightsConfig(model=name, source=entry.source, tag=entry.tag, url=entry.url,
                                input_size=entry.input_size)
    model = build_model(name, classes=1000, input_shape=(32, 32, 3))
    core.save(model, os.path.join(keras_home, pretrained.CACHE_SUBDIR, converted), config)
    return model


def test_imagenet_weights_through_the_finetune_recipe(photos, tmp_path, monkeypatch):
    """The first form of the issue, `--recipe finetune --set model.name=... --weights imagenet --data_dir photos/`,
    as the launcher builds it, in-process up to the first step: the weights are found in the Keras cache (nothing is
    downloaded), every layer but the classifier loads, and the run is described."""
    home = str(tmp_path / "keras")
    source = fake_imagenet_cache(home)
    monkeypatch.setenv("KERAS_HOME", home)
    r = recipe_lib.load("finetune", ["model.name=regnetx_002", "finetune.weights=imagenet", "data.source=folder",
                                     f"data.data_dir={photos}", "data.image_size=32"])
    logs = []
    t = Trainer(r, str(tmp_path / "ft"), log=logs.append)
    loaded, initialized = finetune.load(t.model, t.init, finetune.class_names(t.recipe.data), logs.append)
    text = "\n".join(logs + [t.describe()])
    assert "data: 4 classes from" in text and "fine-tuning from imagenet (" in text and "backbone frozen for" in text
    assert initialized == ["predictions (shapes [(368, 4), (4,)] here, [(368, 1000), (1000,)] in the file)"]
    assert len(loaded) == 88 and t.init.classes is not None and len(t.init.classes) == 1000
    np.testing.assert_array_equal(t.model.get_layer("s4_b1_b").kernel.numpy(),
                                  source.get_layer("s4_b1_b").kernel.numpy())


def test_command_line_from_a_run_exports_the_new_classes(transfer, tmp_path):
    """The second form, `--weights runs/pretrain --data_dir photos/`, through launch/train.py, with the export."""
    src, target = transfer
    out = str(tmp_path / "b")
    run = run_launcher("train.py", "--recipe", "finetune_demo", "--weights", src, "--data_dir", target,
                       "--model_dir", out, "--steps", "2", "--set", "data.image_size=32", "--set",
                       "train.global_batch_size=8", "--set", "train.eval_steps=1", "--set", "train.keep_best=false")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "data: 2 classes from" in run.stdout and f"fine-tuning from {src} (anynet, last checkpoint: step 60" in run.stdout
    assert finetune.read_record(out).weights == src
    export = os.path.join(out, "export", os.listdir(os.path.join(out, "export"))[0])
    from regnet_tf.data.format import read_label_map

    assert read_label_map(os.path.join(export, "assets"), 0) == {0: "disk", 1: "stripes"}  # the new class names
