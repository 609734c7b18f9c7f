"""regnet_tf.deploy: TFLite (float32, float16, int8), ONNX and OpenVINO exports of every family, their runners, the
sidecar, `launch/eval.py --tflite/--onnx/--openvino` and `launch/export.py --format`.

Speed: each conversion costs seconds of fixed overhead, so the families are converted together: one Functional
model holds a tiny network of each family side by side (`FAMILIES`), and each family's slice of the logits is
compared with its own Keras model. The tools are in the `export` extra; without them the module skips.
"""

import dataclasses
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import run_command  # noqa: E402

from regnet_tf import AnyNetSpec, EffNetSpec, ResNetSpec, deploy, runtimes  # noqa: E402
from regnet_tf.applications import build_model  # noqa: E402
from regnet_tf.inference import all_layers  # noqa: E402
from regnet_tf.data.preprocess import normalize  # noqa: E402
from regnet_tf.data.sources import input_pipeline  # noqa: E402
from regnet_tf.train import evaluate  # noqa: E402

SIZE, CLASSES = 32, 5
FAMILIES = {  # one tiny network per family, with what makes it hard to convert
    "regnety": AnyNetSpec(ds=(1, 1), ws=(8, 16), gs=(4, 4), block="Y", se_ratio=0.25, stem_w=8),  # grouped, SE
    "regnetz": AnyNetSpec(ds=(1, 1), ws=(8, 16), bs=(4.0, 4.0), gs=(8, 8), block="Z", se_ratio=0.25,
                          activation="silu", head_w=32, stem_w=8),  # inverted bottleneck, grouped, SiLU
    "resnet_rs": ResNetSpec.from_depth(26, width=0.125, variant="rs").replace(ds=(1, 1), ws=(8, 16), ss=(1, 2)),
    "efficientnet": EffNetSpec(ds=(1, 2), ws=(8, 16), exp_rs=(1, 2), ks=(3, 5), ss=(1, 2), stem_w=8, head_w=32),
}
NAMES = [f"{family}_{k}" for family in FAMILIES for k in range(CLASSES)]


def randomized(model, seed):
    """Non-trivial BN statistics and a classifier with logits of order 1, so a wrong fold or conversion shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.5, 2.0, n)])
        if layer.name == "predictions":
            kernel, bias = layer.get_weights()
            layer.set_weights([rng.normal(0, 1, kernel.shape), bias])
    return model


def families_model():
    """normalized images -> [B, 4 x CLASSES] logits: the families' tiny networks side by side."""
    inputs = keras.Input((SIZE, SIZE, 3))
    nets = [randomized(build_model(spec, input_shape=(SIZE, SIZE, 3), classes=CLASSES, classifier_activation=None,
                                   name=family), seed) for seed, (family, spec) in enumerate(FAMILIES.items())]
    return keras.Model(inputs, keras.layers.Concatenate(name="logits")([net(inputs) for net in nets]),
                       name="families")


def smooth_pixels(n, seed):
    """Smooth random RGB images, [n, SIZE, SIZE, 3] uint8."""
    coarse = np.random.default_rng(seed).uniform(0, 255, (n, 4, 4, 3))
    return tf.cast(tf.image.resize(coarse, [SIZE, SIZE]), tf.uint8).numpy()


def relative(out, ref):
    return float(np.abs(out - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The families model as float32 TFLite, ONNX and OpenVINO files; its RegNetY alone as float16 TFLite and as
    TFLite with its grouped convolutions split (these two change weights or one layer, not which ops convert)."""
    keras.utils.set_random_seed(0)
    model = families_model()
    root = tmp_path_factory.mktemp("deploy")
    paths = {fmt: deploy.export_file(model, root, fmt, image_size=SIZE, class_names=NAMES, metadata={"test": True},
                                     log=lambda line: None) for fmt in ("tflite", "onnx", "openvino")}
    regnety = model.get_layer("regnety")
    paths["tflite_fp16"] = deploy.export_file(regnety, root / "regnety", "tflite_fp16", image_size=SIZE,
                                              log=lambda line: None)
    paths["split"] = deploy.export_file(regnety, root / "split", "tflite", image_size=SIZE, grouped_conv="split",
                                        log=lambda line: None)
    images = smooth_pixels(3, seed=2)
    return model, paths, images, model(normalize(images)).numpy()


@pytest.mark.parametrize("fmt,tolerance", [("tflite", 1e-4), ("onnx", 1e-4), ("openvino", 1e-4)])
def test_exports_match_keras_for_every_family(exported, fmt, tolerance):
    _, paths, images, ref = exported
    runner = runtimes.load(paths[fmt])
    out = runner(images)
    assert out.shape == ref.shape and out.dtype == np.float32
    for i, family in enumerate(FAMILIES):
        cols = slice(i * CLASSES, (i + 1) * CLASSES)
        assert relative(out[:, cols], ref[:, cols]) <= tolerance, (family, relative(out[:, cols], ref[:, cols]))
    np.testing.assert_allclose(runner(images[1:2].astype(np.float32)), out[1:2], rtol=0, atol=1e-5)  # batch 1, float
    with pytest.raises(ValueError, match=rf"^model\.\w+ takes images \[B, {SIZE}, {SIZE}, 3\] .* got \[1, 16, 16, 3]$"):
        runner(images[:1, :16, :16])  # a size the file would run at (it is convolutional) but was not made for


@pytest.mark.parametrize("fmt,tolerance", [("tflite_fp16", 1e-2), ("split", 1e-4)])
def test_float16_and_split_grouped_convolutions_match_keras(exported, fmt, tolerance):
    _, paths, images, ref = exported
    assert relative(runtimes.load(paths[fmt])(images), ref[:, :CLASSES]) <= tolerance


def test_micro_batches_give_the_same_logits(exported):
    _, paths, images, _ = exported
    whole = runtimes.load(paths["tflite"])(images)
    runner = runtimes.load(paths["tflite"], micro_batch=2)
    np.testing.assert_allclose(runner(images), whole, rtol=0, atol=1e-5)  # 3 images: calls of 2 and 1
    assert runner.micro_batch == 2 and runner.batch == 1  # the interpreter's last input: the call of 1
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="micro_batch must be a positive number of images or None"):
            runtimes.load(paths["tflite"], micro_batch=bad)


def test_openvino_compiles_each_batch_size_then_runs_the_dynamic_shape(exported, monkeypatch):
    _, paths, images, _ = exported
    runner = runtimes.load(paths["openvino"])
    monkeypatch.setattr(runner, "STATIC_SHAPES", 2)
    whole = runner(images)
    outs = {n: runner(images[:n]) for n in (1, 2)}  # the second static shape, then past the limit: dynamic
    shapes = {key: str(request.model_inputs[0].get_partial_shape()) for key, request in runner.requests.items()}
    assert shapes == {(3, SIZE, SIZE, 3): f"[3,{SIZE},{SIZE},3]", (1, SIZE, SIZE, 3): f"[1,{SIZE},{SIZE},3]",
                      None: f"[?,{SIZE},{SIZE},3]"}
    for n, out in outs.items():
        np.testing.assert_allclose(out, whole[:n], rtol=0, atol=1e-5)


def test_openvino_runs_at_the_precision_asked_and_only_openvino_takes_one(exported):
    import openvino as ov

    _, paths, images, ref = exported
    runner = runtimes.load(paths["openvino"], precision="bf16")
    out = runner(images)
    request = runner.requests[images.shape]
    assert request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
    assert relative(out, ref) <= 0.05  # bf16's 8-bit mantissa, through each family's tiny network
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):  # the CPU computes it in bf16
        assert relative(out, ref) > 1e-4
    with pytest.raises(ValueError, match=r"^precision 'bf16' is an OpenVINO option; model\.tflite runs as it was "):
        runtimes.load(paths["tflite"], precision="bf16")
    with pytest.raises(ValueError, match=r"^unknown precision 'int4'; valid: f32, bf16, f16"):
        runtimes.load(paths["openvino"], precision="int4")


def test_tflite_runs_on_builtin_kernels_where_xnnpack_refuses_a_file(exported):
    _, paths, images, _ = exported
    runner = runtimes.load(paths["tflite"])
    expected, refusing = runner(images), runner.interpreter

    def refuse():  # what LiteRT raises when XNNPACK cannot take a node (seen: an int8 file of random weights)
        raise RuntimeError("failed to create XNNPACK runtimeNode number 29 (TfLiteXNNPackDelegate) failed to prepare.")

    refusing.invoke = refuse
    with pytest.warns(UserWarning, match="XNNPACK refused the file .* running it on LiteRT's builtin kernels"):
        out = runner(images)  # the refusing interpreter is replaced by one without the default delegates
    assert runner.delegate == "builtin" and runner.interpreter is not refusing
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


def test_sidecar_says_what_the_file_takes_and_gives(exported):
    model, paths, _, _ = exported
    info = runtimes.read_sidecar(paths["onnx"])
    assert info["format"] == "onnx" and info["image_size"] == SIZE and info["num_classes"] == len(NAMES)
    assert info["class_names"] == NAMES and info["metadata"] == {"test": True}
    assert info["input"] == {"name": "images", "dtype": "float32", "shape": [None, SIZE, SIZE, 3], "range": [0, 255],
                             "layout": "NHWC, RGB"}
    assert info["preprocessing"]["eval_mode"] == "crop_fraction" and info["preprocessing"]["crop_fraction"] == 0.875
    bns = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in all_layers(model))
    assert info["inference"] == {"batch_norm_folded": bns, "grouped_conv": "native"} and bns > 10
    assert info["check"]["images"] == deploy.CHECK_IMAGES and info["check"]["max_relative_difference"] < 1e-4
    assert {"tf2onnx", "onnxruntime", "tensorflow"} <= set(info["versions"])
    split = runtimes.read_sidecar(paths["split"])["inference"]
    grouped = sum(getattr(layer, "groups", 1) > 1 for layer in all_layers(model.get_layer("regnety")))
    assert split["grouped_conv"] == "split" and split["grouped_convs_split"] == grouped == 2  # one per block
    assert sorted(os.listdir(os.path.dirname(paths["onnx"]))) == sorted(
        ["model.tflite", "model.tflite.json", "model.onnx", "model.onnx.json", "model.xml", "model.bin",
         "model.xml.json", "regnety", "split"])  # no staging directory left


def test_each_file_has_one_input_images_and_one_output_logits(exported):
    """Only the logits come out. Keras's OpenVINO export kept an extra output per SiLU (the tf.nn.silu custom
    gradient's IdentityN): 18 here (RegNetZ and EfficientNet), 49 in EfficientNet-B0, which made it 2.5x slower."""
    import onnx
    import openvino as ov
    from ai_edge_litert.interpreter import Interpreter

    _, paths, _, _ = exported
    ov_model = ov.Core().read_model(paths["openvino"])
    assert [p.get_names() for p in ov_model.inputs] == [{"images"}]
    assert [r.get_names() for r in ov_model.outputs] == [{"logits"}]
    assert len(onnx.load(paths["onnx"]).graph.output) == 1
    assert len(Interpreter(model_path=paths["tflite"]).get_output_details()) == 1


def test_export_refuses_to_overwrite_and_names_missing_pieces(exported, tmp_path):
    model, paths, images, _ = exported
    root = os.path.dirname(paths["onnx"])
    with pytest.raises(FileExistsError, match="model.onnx exists; export to another directory, or pass overwrite"):
        deploy.export_file(model, root, "onnx", image_size=SIZE)
    with pytest.raises(deploy.ExportError, match="tflite_int8 needs calibration images .* never calibrates on noise"):
        deploy.export_file(model, tmp_path, "tflite_int8", image_size=SIZE)
    with pytest.raises(deploy.ExportError, match=r"calibration images must be \[N, 32, 32, 3\] pixels"):
        deploy.export_file(model, tmp_path, "tflite_int8", image_size=SIZE, calibration=images[:, :16])
    with pytest.raises(ValueError, match="unknown export format 'tflite_int4'; choose one of tflite, tflite_fp16"):
        deploy.export_file(model, tmp_path, "tflite_int4", image_size=SIZE)
    with pytest.raises(ValueError, match=r"the model takes inputs of shape .* the export feeds \[B, 64, 64, 3\]"):
        deploy.export_file(model, tmp_path, "onnx", image_size=64)
    shutil.copy(paths["onnx"], tmp_path / "bare.onnx")
    with pytest.raises(FileNotFoundError, match=r"bare.onnx.json not found: the sidecar launch/export.py writes"):
        runtimes.load(tmp_path / "bare.onnx")
    assert os.listdir(tmp_path) == ["bare.onnx"]  # the failed exports left nothing


def test_missing_tool_and_unsupported_operation_are_one_line(monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf2onnx" else find_spec(name))
    with pytest.raises(deploy.ExportError, match=r"format 'onnx' needs tf2onnx: pip install 'regnet_tf\[export\]'"):
        deploy.check_tools("onnx")
    monkeypatch.undo()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: tf.math.cumprod(t, axis=1))(inputs)  # no TFLite builtin computes it
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)), name="odd")
    with pytest.raises(deploy.ExportError, match=r"^odd cannot be exported as tflite: unsupported operation "
                                                 r"tf\.Cumprod \(no builtin kernel: rewrite that layer, or use"):
        deploy.export_file(model, tmp_path, "tflite", image_size=8)


# ---- int8: a trained network, calibrated on training images ---- #

def tinted(n, seed):
    """(uint8 images [n, SIZE, SIZE, 3], labels): smooth random images, class k's channel k brighter on average."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    coarse = rng.uniform(0, 170, (n, 4, 4, 3))
    coarse[np.arange(n), ..., labels] += rng.uniform(40, 85, (n, 1, 1))
    return tf.cast(tf.image.resize(coarse, [SIZE, SIZE]) + 0.5, tf.uint8).numpy(), labels


def test_int8_agrees_with_float32_on_a_trained_network(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(FAMILIES["regnety"], input_shape=(SIZE, SIZE, 3), classes=3, classifier_activation=None)
    images, labels = tinted(512, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(normalize(images), labels, batch_size=32, epochs=3, verbose=0)
    path = deploy.export_file(model, tmp_path, "tflite_int8", image_size=SIZE, calibration=images[:64],
                              log=lambda line: None)
    info = runtimes.read_sidecar(path)
    assert info["input"]["dtype"] == "uint8" and info["output"]["dtype"] == "int8"
    assert info["output"]["quantization"]["scale"] > 0 and info["calibration_images"] == 64
    test, test_labels = tinted(400, seed=1)
    ref = model(normalize(test)).numpy().argmax(-1)
    out = runtimes.load(path)(test).argmax(-1)
    assert np.mean(ref == test_labels) > 0.8  # trained (chance: 1/3)
    assert np.mean(out == ref) >= 0.95, np.mean(out == ref)  # measured 1.0 (docs/DEPLOY.md: why 0.95)


# ---- the commands (their `main` in this process: tests/conftest.py, run_command) ---- #

def test_export_and_eval_commands_on_a_run(tiny_run, tmp_path):
    from regnet_tf.cli import eval as eval_command
    from regnet_tf.cli import export as export_command

    model_dir = tmp_path / "run"
    shutil.copytree(tiny_run, model_dir)
    out = run_command(export_command, "--model_dir", str(model_dir), "--export_dir", str(tmp_path / "out"),
                      "--format", "tflite_int8,onnx,openvino", "--calibration_images", "8")
    assert "as tflite_int8, onnx, openvino to" in out
    path = tmp_path / "out" / "model_int8.tflite"
    info = runtimes.read_sidecar(path)
    assert info["calibration_images"] == 8 and info["metadata"]["calibration"] == "8 demo train images"
    assert info["metadata"]["step"] == 6 and len(info["class_names"]) == 10
    out = run_command(eval_command, "--tflite", str(path), "--data", "demo", "--steps", "1", "--batch_size", "20")
    assert f"tflite_int8 {path} on demo validation: top-1" in out and "(20 images)" in out
    with pytest.raises(ValueError, match=r"--onnx takes a \.onnx file; got .*model_int8.tflite"):
        run_command(eval_command, "--onnx", str(path), "--data", "demo")
    xml = tmp_path / "out" / "model.xml"  # OpenVINO at bf16: what the faster precision costs, on the user's data
    out = run_command(eval_command, "--openvino", str(xml), "--precision", "bf16", "--data", "demo", "--steps", "1",
                      "--batch_size", "20")
    assert f"openvino {xml} at bf16 on demo validation: top-1" in out and "(20 images)" in out
    for args in (["--tflite", str(path)], ["--model_dir", str(model_dir)]):
        with pytest.raises(ValueError, match=r"^--precision bf16 is OpenVINO's inference precision: use it with "):
            run_command(eval_command, *args, "--precision", "bf16", "--data", "demo")
    data = dataclasses.replace(evaluate.load_run(str(model_dir)).data, deterministic=True)
    onnx, info = evaluate.evaluate_file(str(tmp_path / "out" / "model.onnx"), data, batch_size=20, steps=1)
    assert info["image_size"] == data.image_size == SIZE
    pixels, labels = next(iter(input_pipeline(dataclasses.replace(data, normalize=False), "validation", 20,
                                              training=False)))
    logits = runtimes.load(tmp_path / "out" / "model.onnx")(pixels.numpy())
    assert onnx["examples"] == 20 and onnx["top1"] == 100 * np.mean(logits.argmax(-1) == labels.numpy())


def test_export_command_for_a_model_with_weights(tmp_path, demo_cache):
    from regnet_tf import cli
    from regnet_tf.cli import export as export_command

    keras.utils.set_random_seed(0)
    weights = str(tmp_path / "w.weights.h5")
    build_model("regnetx_002", input_shape=(SIZE, SIZE, 3)).save_weights(weights)
    run_command(export_command, "--model", "regnetx_002", "--weights", weights, "--image_size", str(SIZE),
                "--export_dir", str(tmp_path / "out"), "--format", "tflite_int8", "--data", "demo",
                "--calibration_images", "4")
    info = runtimes.read_sidecar(tmp_path / "out" / "model_int8.tflite")
    assert info["image_size"] == SIZE and info["calibration_images"] == 4 and len(info["class_names"]) == 1000
    assert info["metadata"] == {"model": "regnetx_002", "weights": weights, "calibration": "4 demo train images"}
    with pytest.raises(ValueError) as error:
        run_command(export_command, "--model", "regnetx_002", "--weights", weights, "--export_dir",
                    str(tmp_path / "out2"), "--format", "tflite_int8")
    assert cli.error_line(error.value) == (
        "error: --format tflite_int8 calibrates on real images: give --data (and --data_dir) with images like the "
        "ones the model will see, e.g. --data folder --data_dir photos/")
    with pytest.raises(ValueError, match="unknown --format tflite_int4; valid: saved_model, tflite, tflite_fp16"):
        run_command(export_command, "--model", "regnetx_002", "--export_dir", str(tmp_path), "--format", "tflite_int4")
