"""Backbones (docs/BACKBONES.md): `feature_info` levels, `build_backbone` (shapes at odd sizes, level selection,
weights shared with the classifier, save/load), the docs' FPN example, and Keras-native fine-tuning of a frozen base
(weights and BN statistics unchanged, float32 and mixed_bfloat16). Every registered model's levels are checked
against its built classifier in tests/test_models.py::test_built_model_equals_counter_for_every_zoo_model."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import keras
from regnet_tf import AnyNetSpec, EffNetSpec, ResNetSpec, build_backbone, feature_info
from regnet_tf.applications import RegNetX002, build_model, preprocess_input
from regnet_tf.weights.core import ConversionError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tiny specs of every family and stem: AnyNet simple stem (P1-P5 with 4 stages), "res" stem with a stride-1 first
# stage (the stage replaces the stem pool at stride 4), Z blocks (a one-block stage ends on c_bn, the head conv is
# no level), ResNet-RS (deep stem, pool conv, SE), EfficientNet (stride-1 stages replace the level before them).
SPECS = {
    "anynet_x": AnyNetSpec(ds=(1, 2, 1, 1), ws=(8, 16, 16, 24), gs=(8, 8, 8, 8), stem_w=8),
    "anynet_res": AnyNetSpec(ds=(1, 1, 1, 1), ws=(8, 16, 16, 24), ss=(1, 2, 2, 2), bs=(0.5,) * 4, block="R",
                             stem="res", stem_w=8),
    "anynet_z": AnyNetSpec(ds=(1, 2, 1, 1), ws=(8, 16, 16, 24), bs=(4.0,) * 4, gs=(8,) * 4, block="Z",
                           se_ratio=0.25, activation="silu", head_w=32, stem_w=8),
    "resnet_rs": ResNetSpec.from_depth(26, width=0.125, variant="rs"),
    "efficientnet": EffNetSpec(ds=(1, 2, 1, 1, 2, 1, 1), ws=(8, 8, 16, 16, 16, 24, 32), exp_rs=(1, 2, 2, 2, 2, 2, 2),
                               ks=(3, 3, 5, 3, 5, 5, 3), ss=(1, 2, 2, 2, 1, 2, 1), stem_w=16, head_w=32),
}
SPEC = SPECS["anynet_x"]


def images(n=2, h=64, w=64, seed=0):
    return preprocess_input(np.random.default_rng(seed).uniform(0, 255, (n, h, w, 3)).astype("float32"))


def assert_same_outputs(a, b):
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


@pytest.mark.parametrize("which", sorted(SPECS))
def test_backbone_outputs_have_feature_info_shapes_at_an_odd_size(which):
    spec = SPECS[which]
    infos = feature_info(spec, (65, 50))
    backbone = build_backbone(spec)  # input (None, None, 3)
    assert backbone.input.shape == (None, None, None, 3)
    out = backbone(images(1, 65, 50))
    assert list(out) == [info.name for info in infos] and infos[-1].name == "P5"
    for info in infos:
        assert tuple(out[info.name].shape) == (1, *info.shape), info
        assert info.shape[:2] == (-(-65 // info.stride), -(-50 // info.stride))  # ceil(H / stride)
    if which.startswith("anynet") and which != "anynet_res":
        assert infos[0].name == "P1" and infos[0].layer == "stem_conv_act"
    if which in ("resnet_rs", "anynet_res"):  # stride-4 stem, replaced by stage 1
        assert infos[0].name == "P2" and infos[0].layer == f"s1_b{spec.ds[0]}_out"
    if which == "anynet_z":
        assert [i.layer for i in infos][1:3] == ["s1_b1_c_bn", "s2_b2_add"]
    if which == "efficientnet":  # stages 1, 2, 3, 5, 7
        assert [i.layer for i in infos] == ["s1_b1_project_bn", "s2_b2_add", "s3_b1_project_bn", "s5_b2_add",
                                            "s7_b1_project_bn"]


def test_levels_by_int_and_by_name_and_unknown_levels():
    by_int = build_backbone(SPEC, input_shape=(64, 64, 3), levels=(3, 5))
    by_name = build_backbone(SPEC, input_shape=(64, 64, 3), levels=["P3", "p5"])
    assert list(by_int.output) == list(by_name.output) == ["P3", "P5"]
    assert [tuple(t.shape) for t in by_int.output.values()] == [(None, 8, 8, 16), (None, 2, 2, 24)]
    assert [i.name for i in feature_info(SPEC, levels=4)] == ["P4"]
    with pytest.raises(ValueError, match="levels are P2, P3, P4, P5"):
        feature_info("resnet_50", levels=(1, 2))
    with pytest.raises(ValueError, match=r"'P6'.* P1, P2, P3, P4, P5"):
        build_backbone(SPEC, levels=("P6",))


def test_backbone_loads_classifier_weights_round_trips_and_rejects_another_model(tmp_path):
    keras.utils.set_random_seed(1)
    classifier = build_model(SPEC, input_shape=(64, 64, 3), classes=10)
    path = str(tmp_path / "classifier.weights.h5")
    classifier.save_weights(path)
    infos = feature_info(SPEC)
    taps = keras.Model(classifier.input, {i.name: classifier.get_layer(i.layer).output for i in infos})
    backbone = build_backbone(SPEC, weights=path)
    x = images()
    want = taps(x)
    assert_same_outputs(backbone(x), want)
    # save / load of the dict outputs
    saved = str(tmp_path / "b.keras")
    backbone.save(saved)
    loaded = keras.models.load_model(saved)
    assert list(loaded.output) == [i.name for i in infos]
    assert_same_outputs(loaded(x), want)
    # the backbone's own weights file; a file of the first levels for a backbone of those levels
    backbone.save_weights(str(tmp_path / "backbone.weights.h5"))
    assert_same_outputs(build_backbone(SPEC, weights=str(tmp_path / "backbone.weights.h5"))(x), want)
    build_backbone(SPEC, levels=(1, 2), weights=path).save_weights(str(tmp_path / "p2.weights.h5"))
    p2 = build_backbone(SPEC, levels=2, weights=str(tmp_path / "p2.weights.h5"))(x)
    assert_same_outputs(p2, {"P2": want["P2"]})
    # the weights of another model (one more block in stage 1): nothing loads
    other = AnyNetSpec(ds=(2, 2, 1, 1), ws=SPEC.ws, gs=SPEC.gs, stem_w=SPEC.stem_w)
    with pytest.raises(ConversionError, match="in the file but not in the model: s1_b2"):
        build_backbone(SPEC, weights=str(_saved(other, tmp_path)))


def _saved(spec, tmp_path):
    path = tmp_path / "other.weights.h5"
    build_model(spec, input_shape=(64, 64, 3), classes=10).save_weights(str(path))
    return path


def docs_block(marker="<!-- fpn-example -->"):
    with open(os.path.join(REPO, "docs", "BACKBONES.md"), encoding="utf-8") as f:
        text = f.read()
    match = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", text, re.S)
    assert match, f"no ```python block right after {marker} in docs/BACKBONES.md"
    return match.group(1)


def test_docs_fpn_example_trains():
    namespace = {}
    exec(compile(docs_block(), "docs/BACKBONES.md:fpn-example", "exec"), namespace)
    assert namespace["pred"].shape == (2, 64, 64, 1)
    losses = namespace["history"].history["loss"]
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(namespace["pred"]))
    # seeded: 0.86 -> 0.49 over the four epochs (checked); a wide margin
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_frozen_base_keeps_weights_and_bn_statistics_in_fit(policy):
    try:
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        base = RegNetX002(include_top=False, pooling="avg", input_shape=(32, 32, 3))
        base.trainable = False
        inputs = keras.Input((32, 32, 3))
        head = keras.layers.Dense(3, dtype="float32")
        model = keras.Model(inputs, head(base(inputs)))
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [v.numpy().copy() for v in base.weights]
        head_before = [v.numpy().copy() for v in head.weights]
        assert any("moving_mean" in v.path for v in base.weights) and not base.trainable_weights
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(16, 32, 32, 3)).astype("float32"), rng.integers(0, 3, 16)
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        for v, b in zip(base.weights, before):
            np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)
        assert all(not np.array_equal(v.numpy(), b) for v, b in zip(head.weights, head_before))
        if policy == "mixed_bfloat16":
            assert base.get_layer("s1_b1_a").compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_feature_info_imports_no_tensorflow():
    code = ("import sys, regnet_tf; info = regnet_tf.feature_info('efficientnet_b0', 224); "
            "assert [i.channels for i in info] == [16, 24, 40, 112, 320], info; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
