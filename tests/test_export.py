"""SavedModel export for TF Serving (`regnet_tf.train.export`).

Both signatures, loaded in a fresh process without oneDNN (as TF Serving on most CPUs), equal the Keras model on
the eval pipeline's images; `saved_model_cli` shows and runs them; bad input, atomic writes, overwrite refusal,
argument checks; resize_short and mixed_bfloat16; launch/export.py --model with the request-limit flags. Request
limits and decompression bombs: tests/test_serving_limits.py.
"""

import json
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from regnet_tf import AnyNetSpec
from regnet_tf.applications import build_model
from regnet_tf.data.preprocess import eval_image, eval_view
from regnet_tf.train.export import METADATA_FILE, export_saved_model

SIZE = 32
SPEC = AnyNetSpec(ds=(1, 1), ws=(8, 16), gs=(8, 8), stem_w=8)  # grouped convs: exercises the fusion workaround
NAMES = ["tabby cat", "dog", "bird", "fish"]
OUTPUTS = {"logits", "probabilities", "top_k_classes", "top_k_scores", "top_k_names"}
# TF Serving / plain TensorFlow on CPUs without AVX-512: oneDNN off (regnet_tf is not imported there)
SERVING_ENV = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model():
    model = build_model(SPEC, classes=4, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    dense = model.get_layer("predictions")  # logits of order 1 (the init's are ~0.01): comparisons mean something
    kernel, bias = dense.get_weights()
    dense.set_weights([np.random.default_rng(1).normal(0, 1, kernel.shape).astype("float32"), bias])
    return model


def pixels(h, w, seed):
    """A smooth random RGB image (JPEG-friendly)."""
    coarse = np.random.default_rng(seed).uniform(0, 255, (1, 6, 6, 3))
    return tf.cast(tf.image.resize(coarse, [h, w])[0], tf.uint8).numpy()


def encoded_images():
    """JPEGs and PNGs of different sizes; images 1 and 3 are same-size PNGs (for the pixel signature)."""
    return [tf.io.encode_jpeg(pixels(40, 50, 0)).numpy(), tf.io.encode_png(pixels(45, 37, 1)).numpy(),
            tf.io.encode_jpeg(pixels(64, 36, 2), quality=80).numpy(), tf.io.encode_png(pixels(45, 37, 3)).numpy()]


def expected_logits(model, encoded, **eval_args):
    return model(tf.stack([eval_image(e, SIZE, **eval_args) for e in encoded]), training=False).numpy()


def object_array(items):
    array = np.empty(len(items), object)
    array[:] = items
    return array


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, env=SERVING_ENV, timeout=180, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def saved_model_cli():
    """The saved_model_cli of this Python: the script next to the interpreter, else the module."""
    script = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A crop_fraction export with a label_map.txt (lines out of order), the inputs and the expected logits."""
    root = tmp_path_factory.mktemp("export")
    label_map = root / "label_map.txt"
    label_map.write_text("".join(f"{k + 1} {NAMES[k]}\n" for k in (2, 0, 3, 1)), encoding="utf-8")
    model = tiny_model()
    export_dir = export_saved_model(model, root / "models" / "1", image_size=SIZE, label_map=label_map,
                                    metadata={"run": "test", "ema": True})
    encoded = encoded_images()
    images = np.stack([tf.io.decode_png(encoded[1]).numpy(), tf.io.decode_png(encoded[3]).numpy()])
    return types.SimpleNamespace(dir=export_dir, root=root, encoded=encoded, images=images,
                                 logits=expected_logits(model, encoded))


def check_outputs(out, logits, names=NAMES):
    np.testing.assert_allclose(out["logits"], logits, atol=1e-4)
    assert out["logits"].dtype == out["probabilities"].dtype == out["top_k_scores"].dtype == np.float32
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)
    k = min(5, logits.shape[-1])
    assert out["top_k_classes"].dtype == np.int32 and out["top_k_classes"].shape == (len(logits), k)
    np.testing.assert_array_equal(out["top_k_classes"], np.argsort(-logits, -1, kind="stable")[:, :k])
    np.testing.assert_allclose(out["top_k_scores"], np.take_along_axis(out["probabilities"], out["top_k_classes"], -1))
    if names is not None:
        got = [[n.decode() for n in row] for row in out["top_k_names"]]
        assert got == [[names[c] for c in row] for row in out["top_k_classes"]]


FRESH_PROCESS = """
import sys
import numpy as np, tensorflow as tf
export_dir, inputs, out = sys.argv[1:4]
data = np.load(inputs, allow_pickle=True)
model = tf.saved_model.load(export_dir)
results = {}
for key, name, array in (("serving_default", "image_bytes", data["encoded"]),
                         ("serving_image_tensor", "images", data["images"])):
    fn = model.signatures[key]
    assert list(fn.structured_input_signature[1]) == [name], fn.structured_input_signature
    results.update({key + "/" + k: v.numpy() for k, v in fn(**{name: tf.constant(array)}).items()})
results["empty/logits"] = model.signatures["serving_default"](image_bytes=tf.constant([], tf.string))["logits"]
assert "regnet_tf" not in sys.modules  # the export is self-contained
np.savez(out, **results)
"""


def test_signatures_in_a_fresh_process_equal_the_keras_model(exported, tmp_path):
    np.savez(tmp_path / "inputs.npz", encoded=object_array(exported.encoded), images=exported.images)
    run([sys.executable, "-c", FRESH_PROCESS, exported.dir, str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")])
    results = np.load(tmp_path / "out.npz", allow_pickle=True)
    outputs = {key: {k.split("/")[1]: results[k] for k in results.files if k.startswith(key + "/")}
               for key in ("serving_default", "serving_image_tensor")}
    assert set(outputs["serving_default"]) == set(outputs["serving_image_tensor"]) == OUTPUTS
    check_outputs(outputs["serving_default"], exported.logits)
    # decoded PNG pixels through serving_image_tensor == the PNG bytes through serving_default
    check_outputs(outputs["serving_image_tensor"], exported.logits[[1, 3]])
    assert results["empty/logits"].shape == (0, 4)

    assert sorted(os.listdir(exported.dir)) == ["assets", "assets.extra", "fingerprint.pb", "saved_model.pb",
                                                "variables"]
    assert (exported.root / "models").exists() and os.listdir(exported.root / "models") == ["1"]  # no temp dirs
    assert open(os.path.join(exported.dir, "assets", "label_map.txt")).read() == "1 tabby cat\n2 dog\n3 bird\n4 fish\n"
    info = json.load(open(os.path.join(exported.dir, METADATA_FILE)))
    assert info["image_size"] == SIZE and info["num_classes"] == 4 and info["metadata"] == {"run": "test", "ema": True}
    assert info["preprocessing"]["eval_mode"] == "crop_fraction" and info["preprocessing"]["crop_fraction"] == 0.875
    assert info["limits"] == {"max_pixels": 64_000_000, "max_batch": 256, "max_request_bytes": 64 * 2 ** 20}
    assert {k: list(v["inputs"]) for k, v in info["signatures"].items()} == {
        "serving_default": ["image_bytes"], "serving_image_tensor": ["images"]}
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString(open(os.path.join(exported.dir, "saved_model.pb"), "rb").read())
    ops = {node.op for f in saved.meta_graphs[0].graph_def.library.function for node in f.node_def}
    assert info["batch_norm_folded"] is True and "Conv2D" in ops and not any("BatchNorm" in op for op in ops)


def test_saved_model_cli_shows_and_runs_both_signatures(exported, tmp_path):
    cli = saved_model_cli()
    shown = run(cli + ["show", "--dir", exported.dir, "--all"])
    for text in ("signature_def['serving_default']", "inputs['image_bytes']", "dtype: DT_STRING",
                 "signature_def['serving_image_tensor']", "inputs['images']", "dtype: DT_UINT8",
                 "outputs['top_k_names']", "outputs['logits']"):
        assert text in shown, text

    np.save(tmp_path / "images.npy", exported.images)
    printed = run(cli + ["run", "--dir", exported.dir, "--tag_set", "serve", "--signature_def", "serving_image_tensor",
                         "--inputs", f"images={tmp_path / 'images.npy'}"])
    for key in OUTPUTS:
        assert f"Result for output key {key}:" in printed
    assert all(f"b'{name}'" in printed for name in NAMES)  # k = K = 4: every name is in the top k

    # String inputs work too: --inputs loads .npy files with allow_pickle=True, so an object array of bytes feeds
    # image_bytes (a fixed-width "S" array would also do, but numpy strips trailing NUL bytes from those).
    np.save(tmp_path / "bytes.npy", object_array(exported.encoded), allow_pickle=True)
    run(cli + ["run", "--dir", exported.dir, "--tag_set", "serve", "--signature_def", "serving_default",
               "--inputs", f"image_bytes={tmp_path / 'bytes.npy'}", "--outdir", str(tmp_path / "out")])
    np.testing.assert_allclose(np.load(tmp_path / "out" / "logits.npy"), exported.logits, atol=1e-4)


def test_undecodable_bytes_fail_with_a_clear_message(exported):
    serve = tf.saved_model.load(exported.dir).signatures["serving_default"]
    jpeg = exported.encoded[0]
    for bad in (b"this is not an image", b""):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[1\] could not be decoded: not a JPEG"):
            serve(image_bytes=tf.constant([jpeg, bad]))
    for truncated in (jpeg[:len(jpeg) // 2], jpeg[:40]):  # the decoder's message, in the scope decode_image_bytes
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)Invalid JPEG data.*decode_image_bytes"):
            serve(image_bytes=tf.constant([jpeg, truncated]))
    assert serve(image_bytes=tf.constant([jpeg, jpeg]))["logits"].shape[0] == 2  # and the model keeps serving


def test_a_failed_export_leaves_no_version_directory(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    with pytest.raises(OSError, match="simulated crash"):
        export_saved_model(tiny_model(), tmp_path / "models" / "1", image_size=SIZE)
    assert os.listdir(tmp_path / "models") == []  # neither "1" nor the temporary sibling


def test_an_existing_version_is_only_replaced_with_overwrite(tmp_path):
    version = tmp_path / "1"
    version.mkdir()
    (version / "old.txt").write_text("an older export")
    model = tiny_model()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_saved_model(model, version, image_size=SIZE)
    assert os.listdir(version) == ["old.txt"]
    export_saved_model(model, version, image_size=SIZE, overwrite=True)
    assert "old.txt" not in os.listdir(version) and (version / "saved_model.pb").exists()
    assert os.listdir(tmp_path) == ["1"]


def test_argument_errors_write_nothing(tmp_path):
    model, target = tiny_model(), tmp_path / "1"
    label_map = tmp_path / "label_map.txt"
    label_map.write_text("".join(f"{k + 1} {name}\n" for k, name in enumerate(NAMES)))
    cases = [
        (dict(image_size=48), ValueError, "the model takes inputs of shape"),
        (dict(image_size=SIZE, eval_mode="center"), ValueError, "eval_mode must be one of"),
        (dict(image_size=SIZE, eval_mode="resize_short", short_side=16), ValueError, "must be >= image_size"),
        (dict(image_size=SIZE, label_map=label_map, label_offset=0), ValueError, r"missing class indices \[0\]"),
        (dict(image_size=SIZE, label_map={0: "a", 1: "b"}), ValueError, r"missing class indices \[2, 3\]"),
        (dict(image_size=SIZE, metadata={"bad": object()}), TypeError, "JSON-serializable"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            export_saved_model(model, target, **kwargs)
    normalizing = build_model(SPEC, classes=4, input_shape=(SIZE, SIZE, 3), include_preprocessing=True)
    with pytest.raises(ValueError, match="include_preprocessing"):
        export_saved_model(normalizing, target, image_size=SIZE)
    assert os.listdir(tmp_path) == ["label_map.txt"]


def test_eval_view_equals_eval_image_on_decoded_pixels():
    png = tf.io.encode_png(pixels(45, 37, 4))
    decoded = tf.io.decode_png(png)
    for mode in ("crop_fraction", "resize_short"):
        expected = eval_image(png, SIZE, mode)
        np.testing.assert_array_equal(eval_view(decoded, SIZE, mode), expected)
        np.testing.assert_array_equal(eval_view(tf.stack([decoded, decoded]), SIZE, mode)[1], expected)


def test_resize_short_and_mixed_bfloat16_export_float32_outputs(tmp_path):
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_model()
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert model.get_layer("s1_b1_b").compute_dtype == "bfloat16"
    names = {k: f"class {k}" for k in range(4)}
    export_dir = export_saved_model(model, tmp_path / "1", image_size=SIZE, eval_mode="resize_short", short_side=40,
                                    label_map=names, label_offset=0)
    encoded = encoded_images()
    signatures = tf.saved_model.load(export_dir).signatures
    out = {k: v.numpy() for k, v in signatures["serving_default"](image_bytes=tf.constant(encoded)).items()}
    check_outputs(out, expected_logits(model, encoded, mode="resize_short", short_side=40), names)
    pixels_out = signatures["serving_image_tensor"](images=tf.constant(np.stack([tf.io.decode_png(encoded[1])] * 2)))
    assert {v.dtype for k, v in pixels_out.items() if k != "top_k_names"} == {tf.float32, tf.int32}
    np.testing.assert_allclose(pixels_out["logits"], out["logits"][[1, 1]], atol=1e-4)
    assert open(os.path.join(export_dir, "assets", "label_map.txt")).read().startswith("0 class 0\n1 class 1\n")
    info = json.load(open(os.path.join(export_dir, METADATA_FILE)))
    assert info["preprocessing"]["short_side"] == 40 and info["compute_dtype"] == "bfloat16"


def test_export_command_flags_set_the_limits(tmp_path):
    """launch/export.py --model (random weights from a file, 1000 classes: the ImageNet names) with limit flags."""
    from regnet_tf.applications import build_model

    weights = str(tmp_path / "regnetx_002.weights.h5")
    build_model("regnetx_002", weights=None, classifier_activation=None).save_weights(weights)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "export.py"), "--model", "regnetx_002",
                          "--weights", weights, "--export_dir", str(tmp_path / "1"), "--max_batch", "8",
                          "--max_pixels", "0"],
                         capture_output=True, text=True, env=SERVING_ENV, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    info = json.load(open(tmp_path / "1" / METADATA_FILE))
    assert info["limits"] == {"max_pixels": 0, "max_batch": 8, "max_request_bytes": 64 * 2 ** 20}
    assert open(tmp_path / "1" / "assets" / "label_map.txt").readline() == "1 tench, Tinca tinca\n"
