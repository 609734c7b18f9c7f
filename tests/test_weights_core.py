"""The weights core: padding conventions, float64 BN, checkpoint reading, strict assignment, converted files that
carry their WeightsConfig, and build_model applying it. (Converters per source: test_weights_timm.py,
test_weights_keras.py; public weights: test_pretrained.py.)"""

import json
import struct
import sys

import keras
import numpy as np
import pytest

from regnet_tf import layers
from regnet_tf.applications import build_model
from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.models.anynet import AnyNetSpec
from regnet_tf.weights import core
from regnet_tf.weights.core import ConversionError, Source, WeightsConfig
from regnet_tf.zoo import get_spec

TINY = AnyNetSpec(ds=(1, 2), ws=(16, 32), gs=(8, 8), block="Y", se_ratio=0.25)


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx("float32")


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ---- padding conventions ---- #

@pytest.mark.parametrize("size", [16, 17])
@pytest.mark.parametrize("groups", [1, 4])
def test_conv_tf_same_is_tensorflow_same_and_symmetric_is_explicit_padding(size, groups):
    x = _x((2, size, size, 8))
    ours = layers.Conv2D(8, 3, strides=2, groups=groups, padding="tf_same")
    ref = keras.layers.Conv2D(8, 3, strides=2, groups=groups, padding="same", use_bias=False)
    sym = layers.Conv2D(8, 3, strides=2, groups=groups)
    ours.build(x.shape), ref.build(x.shape), sym.build(x.shape)
    ref.set_weights(ours.get_weights()), sym.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), ref(x), atol=1e-5)
    explicit = ref.convolution_op(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)]), ref.kernel) if groups == 1 else None
    if explicit is not None:
        ref_valid = keras.layers.Conv2D(8, 3, strides=2, padding="valid", use_bias=False)
        ref_valid.build((2, size + 2, size + 2, 8))
        ref_valid.set_weights(ours.get_weights())
        np.testing.assert_allclose(sym(x), ref_valid(np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])), atol=1e-5)
    assert ours.compute_output_shape(x.shape) == tuple(ours(x).shape) == tuple(sym(x).shape)
    if size % 2 == 0:  # even input, stride 2: the two conventions differ
        assert np.abs(np.asarray(ours(x)) - np.asarray(sym(x))).max() > 1e-3


def test_depthwise_and_maxpool_tf_same_match_keras_same():
    x = _x((2, 16, 16, 6))
    dw = layers.DepthwiseConv2D(5, strides=2, padding="tf_same")
    ref = keras.layers.DepthwiseConv2D(5, strides=2, padding="same", use_bias=False)
    dw.build(x.shape), ref.build(x.shape)
    ref.set_weights(dw.get_weights())
    np.testing.assert_allclose(dw(x), ref(x), atol=1e-5)
    np.testing.assert_array_equal(layers.MaxPool2D(3, 2, padding="tf_same")(x),
                                  keras.layers.MaxPooling2D(3, 2, padding="same")(x))
    with pytest.raises(ValueError, match="unknown padding 'same'"):
        layers.Conv2D(4, 3, padding="same")


def test_padding_is_a_spec_option_that_round_trips(tmp_path):
    model = build_model(TINY.replace(padding="tf_same"), input_shape=(32, 32, 3), classes=5)
    assert {layer.pad_mode for layer in model.layers if isinstance(layer, layers.Conv2D)} == {"tf_same"}
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("s1_b1_b").pad_mode == "tf_same"
    x = _x((1, 32, 32, 3))
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="unknown padding"):
        TINY.replace(padding="SAME")


def test_float64_models_run_and_batchnorm_falls_back_to_keras(float64):
    bn = layers.BatchNormalization(momentum=0.5)
    ref = keras.layers.BatchNormalization(momentum=0.5)
    x = np.random.default_rng(1).normal(2.0, 3.0, (4, 5, 5, 3))
    bn.build(x.shape), ref.build(x.shape)
    for training in (True, False):
        np.testing.assert_allclose(bn(x, training=training), ref(x, training=training), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.moving_variance, ref.moving_variance, rtol=1e-12)
    model = build_model(TINY, input_shape=(33, 33, 3), classes=4, classifier_activation=None)
    assert model(np.ones((1, 33, 33, 3))).dtype == "float64"


# ---- reading checkpoints ---- #

def _write_safetensors(path, arrays):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, (dtype, a) in arrays.items():
        raw = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def test_safetensors_reader_without_torch(tmp_path):
    w = np.arange(24, dtype="<f8").reshape(2, 3, 4) / 7
    half = np.array([1.5, -2.25, 3.0], "<f4")
    bf16 = (half.view(np.uint32) >> 16).astype("<u2")  # exactly representable in bfloat16
    _write_safetensors(tmp_path / "m.safetensors", {"a.weight": ("F64", w), "b": ("BF16", bf16),
                                                    "n": ("I64", np.array([7], "<i8"))})
    out = core.read_tensors(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(out["a.weight"], w)
    np.testing.assert_array_equal(out["b"], half)
    assert out["b"].dtype == np.float32 and out["n"].tolist() == [7] and set(out) == {"a.weight", "b", "n"}
    data = (tmp_path / "m.safetensors").read_bytes()
    corrupt = {"bad_json": b"\x05\x00\x00\x00\x00\x00\x00\x00{oops", "huge_header": b"\xff" * 64, "empty": b"",
               "bad_offsets": data.replace(b'"data_offsets": [0, ', b'"data_offsets": [9, ', 1)}
    assert corrupt["bad_offsets"] != data
    corrupt.update({f"truncated_{n}": data[:n] for n in (4, 20, len(data) - 2)})  # in the size, header, data
    for name, content in corrupt.items():
        (tmp_path / f"{name}.safetensors").write_bytes(content)
        with pytest.raises(ConversionError, match="not a .safetensors file") as e:
            core.read_tensors(tmp_path / f"{name}.safetensors")
        assert "\n" not in str(e.value), name


def test_read_tensors_errors_and_wrapped_checkpoints(tmp_path, monkeypatch):
    np.savez(tmp_path / "sd.npz", **{"module.x.weight": np.ones(2)})
    assert list(core.read_tensors(tmp_path / "sd.npz")) == ["x.weight"]  # DDP prefix dropped
    with pytest.raises(ConversionError, match="no such checkpoint file"):
        core.read_tensors(tmp_path / "missing.npz")
    (tmp_path / "w.onnx").write_bytes(b"")
    with pytest.raises(ConversionError, match="unknown checkpoint format .onnx"):
        core.read_tensors(tmp_path / "w.onnx")
    (tmp_path / "w.pth").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(ConversionError, match=r"needs PyTorch.*regnet-tf\[timm\].*safetensors"):
        core.read_tensors(tmp_path / "w.pth")
    model, ema = {"a": 1}, {"a": 2}
    assert core.unwrap_checkpoint({"model_state": model, "ema_state": ema, "test_err": 20.0, "ema_err": 19.5}) is ema
    assert core.unwrap_checkpoint({"model_state": model, "ema_state": ema, "test_err": 19.0, "ema_err": 19.5}) is model
    assert core.unwrap_checkpoint({"state_dict": model}) is model
    with pytest.raises(ConversionError, match="expected a state dict"):
        core.unwrap_checkpoint([1, 2])


# ---- strict assignment through a Source ---- #

def _identity_source(drop=()):
    def prefixes(spec, names):
        return {n: n for n in names if n not in drop}
    return Source(name="test", style="keras", prefixes=prefixes, head=lambda spec: ("predictions/kernel",
                                                                                   "predictions/bias"))


def _tensors(model):
    return {v.path: np.asarray(v) for v in model.weights}


def test_assign_moves_every_tensor_and_refuses_mismatches():
    a = build_model(TINY, input_shape=(32, 32, 3), classes=5)
    b = build_model(TINY, input_shape=(32, 32, 3), classes=5)
    tensors = _tensors(a)
    assert core.assign(b, tensors, _identity_source(), TINY) == len(a.weights)
    x = _x((2, 32, 32, 3))
    np.testing.assert_array_equal(a(x), b(x))

    c = build_model(TINY, input_shape=(32, 32, 3), classes=5)
    before = [np.asarray(v).copy() for v in c.weights]
    broken = dict(tensors)
    del broken["s1_b1_a/kernel"]
    broken["extra.thing"] = np.ones(3)
    broken["s2_b1_c_bn/gamma"] = np.ones(7)
    with pytest.raises(ConversionError) as e:
        core.assign(c, broken, _identity_source(drop=("stem_conv",)), TINY)
    text = str(e.value)
    for needle in ("our layers with no source mapping (1):\n    stem_conv", "missing in the source (1)",
                   "s1_b1_a/kernel", "source tensors left unused (2)", "extra.thing", "stem_conv/kernel",
                   "s2_b1_c_bn/gamma (32,) <- s2_b1_c_bn/gamma (7,)", "nothing was loaded"):
        assert needle in text, (needle, text)
    for v, old in zip(c.weights, before):  # nothing assigned
        np.testing.assert_array_equal(v, old)

    # without a classifier, the source's head may stay unused (and only then)
    d = build_model(TINY, input_shape=(32, 32, 3), include_top=False)
    core.assign(d, tensors, _identity_source(), TINY)


def test_torch_layouts():
    conv = layers.Conv2D(6, 3, groups=2)
    conv.build((1, 8, 8, 4))
    dw = layers.DepthwiseConv2D(3)
    dw.build((1, 8, 8, 4))
    dense = keras.layers.Dense(5)
    dense.build((1, 7))
    w = np.arange(6 * 2 * 3 * 3).reshape(6, 2, 3, 3)  # torch (O, I/g, kh, kw)
    assert core._layout(conv, "kernel", w, "torch")[1, 2, 0, 5] == w[5, 0, 1, 2]
    d = np.arange(4 * 9).reshape(4, 1, 3, 3)
    assert core._layout(dw, "kernel", d, "torch")[2, 1, 3, 0] == d[3, 0, 2, 1]
    f = np.arange(35).reshape(5, 7)
    assert core._layout(dense, "kernel", f, "torch").shape == (7, 5)
    assert core.source_key("s1.b1.conv1.bn", "moving_variance", "torch") == "s1.b1.conv1.bn.running_var"


# ---- converted files carry their config; build_model applies it ---- #

def test_weights_config_input_adapter_gives_the_weights_their_own_input():
    assert WeightsConfig(model="m", source="timm").input_adapter() is None
    config = WeightsConfig(model="m", source="tf_keras", input_mean=(0, 0, 0), input_std=(1, 1, 1))
    scale, offset = config.input_adapter()
    pixels = np.array([0.0, 0.25, 1.0])
    ours = (pixels - np.array(MEAN_RGB)) / np.array(STD_RGB)
    np.testing.assert_allclose(ours * scale + offset, pixels, atol=1e-15)
    assert WeightsConfig.from_json(config.to_json()) == config
    assert config.eval_settings()["eval_crop_fraction"] == 0.875


X002_CONFIG = WeightsConfig(model="regnetx_002", source="tf_keras", tag="test/x", spec={"padding": "tf_same"},
                            input_mean=(0, 0, 0), input_std=(1, 1, 1), input_size=64, classes=7)


def _converted_x002(tmp_path):
    """(a random regnetx_002 built for X002_CONFIG by the one builder, its converted file)."""
    from regnet_tf.models import common

    src = common.keras_model(get_spec("regnetx_002").resolved(), keras.Input((None, None, 3)),
                             weights_config=X002_CONFIG, classes=7, classifier_activation=None, name="regnetx_002")
    rng = np.random.default_rng(0)
    for v in src.weights:  # kernels are random already; BN statistics, scales and biases are not left at 0 / 1
        var = v.path.split("/")[-1]
        if var != "kernel":
            a = rng.uniform(0.5, 1.5, v.shape) if var in ("gamma", "moving_variance") else rng.normal(0, 0.1, v.shape)
            v.assign(a.astype("float32"))
    return src, core.save(src, str(tmp_path / "x.weights.h5"), X002_CONFIG)


def test_converted_file_round_trip_through_build_model(tmp_path):
    config = X002_CONFIG
    src, path = _converted_x002(tmp_path)
    assert src.get_layer("input_adapter") is not None and src.get_layer("s1_b1_b").pad_mode == "tf_same"
    assert core.read_config(path) == config and not list(tmp_path.glob("*.tmp*"))
    model = build_model("regnetx_002", weights=path, classes=7)
    assert model.input_shape == (None, 64, 64, 3)  # the weights' eval size
    assert model.get_layer("s1_b1_b").pad_mode == "tf_same"
    x = _x((1, 64, 64, 3))
    np.testing.assert_allclose(model(x), keras.activations.softmax(src(x)), atol=1e-6)
    features = build_model("regnetx_002", weights=path, include_top=False, pooling="avg", input_shape=(40, 48, 3))
    assert features.output_shape == (None, 368)
    pooled = keras.Model(src.input, src.get_layer("avg_pool").output)  # the source's own features at 40 x 48
    x = _x((2, 40, 48, 3), seed=1)
    np.testing.assert_allclose(features(x), pooled(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="need `classes=7`"):
        build_model("regnetx_002", weights=path)
    with pytest.raises(ValueError, match="are for regnetx_002, not regnety_002"):
        build_model("regnety_002", weights=path, classes=7)
    with pytest.raises(ValueError, match="no such weights file"):
        build_model("regnetx_002", weights=str(tmp_path / "nope.weights.h5"))
    with pytest.raises(ValueError, match="converted weights are saved as a Keras '.weights.h5'"):
        core.save(src, str(tmp_path / "x.h5"), config)


def test_converted_weights_load_by_name_into_the_one_model_built(tmp_path, monkeypatch):
    from regnet_tf.models import common

    src, path = _converted_x002(tmp_path)
    spec_class = type(get_spec("regnetx_002").resolved())
    calls = {"keras_model": 0, "features": 0}
    keras_model, features = common.keras_model, spec_class.features

    def counting(name, fn):
        return lambda *a, **k: calls.__setitem__(name, calls[name] + 1) or fn(*a, **k)

    monkeypatch.setattr(common, "keras_model", counting("keras_model", keras_model))
    monkeypatch.setattr(spec_class, "features", counting("features", features))
    model = build_model("regnetx_002", weights=path, include_top=False, pooling="max", input_shape=(48, 40, 3))
    assert calls == {"keras_model": 1, "features": 1}  # no second (reference) network is assembled
    monkeypatch.undo()
    feature_map = keras.Model(src.input, src.get_layer("avg_pool").input)
    x = _x((2, 48, 40, 3), seed=2)
    np.testing.assert_allclose(model(x), np.max(feature_map(x), axis=(1, 2)), rtol=1e-5, atol=1e-5)
    assert core.load_by_name(model, path, unused_ok=("predictions",)) == len(model.weights)


def test_load_by_name_refuses_missing_extra_and_misshaped_layers_in_one_line(tmp_path):
    import h5py

    _, path = _converted_x002(tmp_path)
    with h5py.File(path, "a") as f:
        saved = {g["vars"].attrs["name"]: g["vars"] for g in f["layers"].values()}
        saved["s1_b1_a"].attrs["name"] = "s9_b9_a"  # a layer we do not have, and one of ours missing
        del saved["s1_b1_b"]["0"]
        saved["s1_b1_b"]["0"] = np.zeros((1, 1, 1, 1), "float32")  # another kernel shape
    with pytest.raises(ConversionError) as e:
        build_model("regnetx_002", weights=path, include_top=False)
    message = str(e.value)
    assert "\n" not in message and "nothing was loaded" in message, message
    assert "missing in the file: s1_b1_a;" in message and "in the file but not in the model: s9_b9_a" in message
    assert "shapes that differ (model vs file): s1_b1_b [(3, 3, 8, 24)] vs [(1, 1, 1, 1)];" in message
    assert "predictions" not in message  # the file's classifier is skipped without the top


# ---- the command-line tools: convert, then eval and export with the weights' own settings ---- #

def as_timm_state_dict(model, spec):
    """Our model's weights named and laid out as timm's (the inverse of the timm converter's mapping)."""
    from regnet_tf.weights import timm

    prefixes = timm.SOURCE.prefixes(spec, [layer.name for layer in model.layers if layer.weights])
    out = {}
    for layer in model.layers:
        for v in layer.weights:
            var, a = v.path.split("/")[-1], np.asarray(v)
            if var == "kernel":
                a = a.T if a.ndim == 2 else np.transpose(a, (3, 2, 0, 1))
            out[core.source_key(prefixes[layer.name], var, "torch")] = a
    return out


def test_convert_eval_and_export_commands(tmp_path, demo_cache):
    """launch/convert.py in a process (its flags, its printout); then the convert, eval and export commands' `main`
    in this process (tests/conftest.py: run_command): a model that does not fit is refused with one `error:` line
    (the line `cli.run` prints), eval and export use the weights' own settings. (launch/export.py --model and
    launch/eval.py run as processes in test_export.py and test_train.py.)"""
    import os

    from conftest import run_command, run_launcher
    from regnet_tf import cli
    from regnet_tf.cli import convert as convert_command
    from regnet_tf.cli import eval as eval_command
    from regnet_tf.cli import export as export_command

    env = dict(os.environ, REGNET_TF_DATA=demo_cache, TF_CPP_MIN_LOG_LEVEL="3")
    source = build_model("regnetx_002", input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    np.savez(tmp_path / "x002.npz", **as_timm_state_dict(source, get_spec("regnetx_002").resolved()))
    out_file = str(tmp_path / "x002.weights.h5")
    out = run_launcher("convert.py", "--from", "timm", "--model", "regnetx_002", "--input", str(tmp_path / "x002.npz"),
                       "--output", out_file, "--classes", "10", "--input_size", "64", "--crop_fraction", "0.9",
                       "--interpolation", "bicubic", "--tag", "mine", env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "padding = symmetric" in out.stdout and "RegNetX002(weights=" in out.stdout
    config = core.read_config(out_file)
    assert (config.tag, config.classes, config.input_size, config.crop_fraction, config.interpolation) == (
        "mine", 10, 64, 0.9, "bicubic")
    converted = build_model("regnetx_002", weights=out_file, classes=10, classifier_activation=None)
    x = _x((2, 64, 64, 3))
    np.testing.assert_allclose(converted(x), source(x), rtol=1e-5, atol=1e-5)

    with pytest.raises(ConversionError) as wrong:
        run_command(convert_command, "--from", "timm", "--model", "regnety_002", "--input",
                    str(tmp_path / "x002.npz"), "--output", str(tmp_path / "y.weights.h5"))
    assert cli.is_user_error(wrong.value)  # in a process: exit status 1, this one line, no traceback
    line = cli.error_line(wrong.value)
    assert line.startswith("error: the timm weights of ") and "\n" not in line
    assert "missing in the source" in line and "s1.b1.se.fc1.weight" in line
    assert not (tmp_path / "y.weights.h5").exists()

    evaluated = run_command(eval_command, "--model", "regnetx_002", "--weights", out_file, "--data", "demo",
                            "--batch_size", "20", "--steps", "1")
    assert f"regnetx_002 with weights {out_file} at 64 px" in evaluated and "(20 images)" in evaluated

    export_dir = str(tmp_path / "serving" / "1")
    run_command(export_command, "--model", "regnetx_002", "--weights", out_file, "--export_dir", export_dir)
    with open(os.path.join(export_dir, "assets.extra", "regnet_tf.json")) as f:
        info = json.load(f)
    assert info["image_size"] == 64 and info["metadata"]["weights"] == "mine"
    assert info["preprocessing"]["crop_fraction"] == 0.9 and info["preprocessing"]["resize_method"] == "bicubic"
