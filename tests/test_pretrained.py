"""Public weights by name (`regnet_tf.weights.pretrained`: the table, the default tag, fetch -> convert -> cache) and
`decode_predictions`. No network: the whole path runs on a tiny registered model whose tag points at a ``file://``
URL of a timm-format .safetensors made here; the Keras cache is a temporary directory."""

import importlib.util
import json
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from regnet_tf import imagenet, zoo
from regnet_tf.models import registry
from regnet_tf.models.anynet import AnyNetSpec
from regnet_tf.weights import WEIGHT_SOURCES, ConversionError, pretrained
from test_weights_core import as_timm_state_dict  # tests/ is on sys.path (pytest's rootdir-relative import)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(pretrained.TABLE, encoding="utf-8") as _f:
    TABLE = json.load(_f)
ROWS = TABLE["weights"]
SOURCE_ORDER = ("timm", "tf_keras", "keras")


@pytest.fixture(autouse=True)
def _fresh_table():
    pretrained.reload()
    yield
    pretrained.reload()


# ---- the table ---- #

def test_table_is_well_formed():
    models = set(zoo.list_models())
    assert len(ROWS) > 100
    keys = [(r["model"], r["tag"]) for r in ROWS]
    assert len(keys) == len(set(keys))
    for r in ROWS:
        assert r["model"] in models, r
        assert r["source"] in WEIGHT_SOURCES and r["source"] in SOURCE_ORDER, r
        assert r["tag"].startswith(r["source"] + "/") and r["arch"], r
        assert r["url"].startswith("https://"), r
        if r["source"] == "timm":
            assert r["tag"] == f"timm/{r['arch']}.{r['tag'].split('.', 1)[1]}", r
            assert r["url"] == f"https://huggingface.co/{r['tag']}/resolve/main/model.safetensors", r
            assert len(r["mean"]) == len(r["std"]) == 3, r
        else:
            assert re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", r["file_hash"]), r
        assert isinstance(r["input_size"], int) and 64 <= r["input_size"] <= 800, r
        assert 0.5 < r["crop_fraction"] <= 1.0 and r["interpolation"] in ("bilinear", "bicubic"), r
        assert r["classes"] >= 1000, r
    # what the table must hold: every registered RegNetX/Y (timm and tf_keras), ResNet-RS, EfficientNet B0-B7
    for name in zoo.list_models("regnet[xy]_*"):
        assert {"timm", "tf_keras"} <= {r["source"] for r in ROWS if r["model"] == name}, name
    for name in zoo.list_models("resnet_rs_*") + zoo.list_models("efficientnet_b*"):
        assert name in pretrained.models(), name
    assert pretrained.tags("resnet_rs_152")[-3:] == ["tf_keras/imagenet-i256", "tf_keras/imagenet-i224",
                                                     "tf_keras/imagenet-i192"]


def test_default_tag_follows_the_documented_rule():
    assert "first 1000-class entry" in TABLE["default_rule"]
    for model in pretrained.models():
        rows = pretrained.entries(model)
        rank = [(SOURCE_ORDER.index(e.source), e.arch.startswith("tf_")) for e in rows]
        assert rank == sorted(rank), (model, [e.tag for e in rows])  # timm (same-named arch first), tf_keras, keras
        assert [e.tag for e in rows if e.default] == [next(e.tag for e in rows if e.classes == 1000)]
        assert pretrained.default_tag(model) == pretrained.lookup(model).tag == pretrained.lookup(model, "imagenet").tag
    assert pretrained.default_tag("regnety_040") == "timm/regnety_040.ra3_in1k"  # timm's default tag
    assert pretrained.default_tag("regnetx_002") == "timm/regnetx_002.pycls_in1k"
    assert pretrained.default_tag("efficientnet_b7") == "timm/tf_efficientnet_b7.ns_jft_in1k"  # no efficientnet_b7
    assert pretrained.default_tag("resnet_rs_50") == "timm/resnetrs50.tf_in1k"
    e = pretrained.lookup("efficientnet_b3", "keras/imagenet")
    assert (e.arch, e.input_size, e.url) == ("efficientnetb3", 300,
                                             "https://storage.googleapis.com/keras-applications/efficientnetb3.h5")


def test_unknown_tag_and_models_without_weights_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown weights 'timm/nope' for regnety_040; valid: 'imagenet' "
                                         r"\(= 'timm/regnety_040.ra3_in1k'\), .*'tf_keras/imagenet'"):
        pretrained.lookup("regnety_040", "timm/nope")
    for name in ("regnetz_005", "efficientnet_rs_b0"):
        assert pretrained.tags(name) == [] and name not in pretrained.models()
        for call in (lambda: pretrained.lookup(name), lambda: pretrained.default_tag(name),
                     lambda: pretrained.weights_file(name, "imagenet")):
            with pytest.raises(ValueError, match=f"{name} has no public pretrained weights"):
                call()
    with pytest.raises(ValueError, match="Unknown model 'regnety_041'"):
        pretrained.tags("regnety_041")


def _tool_output(name, expression):
    """``expression`` evaluated with tools/<name>.py imported as ``tool``, in a fresh process (timm must not be
    imported after TensorFlow: with torch 2.14 that crashes the process), as JSON."""
    code = (f"import json, sys; sys.path.insert(0, {os.path.join(ROOT, 'tools')!r}); import {name} as tool; "
            f"from regnet_tf import zoo; print(json.dumps({expression}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_table_is_current_with_timm_and_keras():
    if not all(importlib.util.find_spec(m) for m in ("timm", "tf_keras")):
        pytest.skip("needs timm and tf_keras")
    fresh = _tool_output("make_pretrained_table", "[(r['model'], r['tag'], r['url'], r['input_size'], "
                         "r['crop_fraction']) for m in zoo.list_models() for r in tool.timm_entries(m) "
                         "+ tool.keras_entries(m)]")
    assert [tuple(r) for r in fresh] == [(r["model"], r["tag"], r["url"], r["input_size"], r["crop_fraction"])
                                         for r in ROWS], "regenerate with: python tools/make_pretrained_table.py"


# ---- decode_predictions ---- #

def test_class_list_is_the_standard_imagenet_index():
    synsets, names = imagenet.synsets(), imagenet.class_names()
    assert len(synsets) == len(set(synsets)) == len(names) == 1000 and synsets == sorted(synsets)
    assert (synsets[0], names[0]) == ("n01440764", "tench, Tinca tinca")
    assert (synsets[1], names[1].split(",")[0]) == ("n01443537", "goldfish")
    assert (synsets[207], names[207]) == ("n02099601", "golden retriever")
    assert synsets[999] == "n15075141"


def test_class_list_is_current_with_timm():
    if not importlib.util.find_spec("timm"):
        pytest.skip("needs timm")
    assert imagenet.synsets() == _tool_output("make_imagenet_classes", "tool.read_timm_info('imagenet_synsets.txt').split()")


@pytest.mark.parametrize("shape", [(1000,), (2, 999), (2, 1000, 1), (0,)])
def test_decode_predictions_needs_a_batch_of_1000_scores(shape):
    with pytest.raises(ValueError, match=r"expects a batch of predictions \(i.e. a 2D array of shape \(samples, "
                                         rf"1000\)\)\. Received array with shape: {re.escape(str(shape))}"):
        imagenet.decode_predictions(np.zeros(shape))


def test_decode_predictions_sorts_by_score_and_names_the_classes():
    rng = np.random.default_rng(0)
    preds = rng.random((3, 1000)).astype("float32")
    preds[0, 207], preds[0, 1], preds[1, 0] = 5.0, 4.0, 9.0
    out = imagenet.decode_predictions(preds, top=4)
    assert [len(row) for row in out] == [4, 4, 4]
    assert out[0][:2] == [("n02099601", "golden retriever", 5.0), ("n01443537", "goldfish, Carassius auratus", 4.0)]
    assert out[1][0] == ("n01440764", "tench, Tinca tinca", 9.0)
    for row, scores in zip(out, preds):
        assert [s for _, _, s in row] == sorted(scores, reverse=True)[:4]
        assert all(imagenet.synsets()[int(np.argwhere(scores == s)[0, 0])] == syn for syn, _, s in row)
    assert len(imagenet.decode_predictions(preds)[0]) == 5
    assert len(imagenet.decode_predictions(preds, top=2000)[0]) == 1000
    with pytest.raises(ValueError, match="`top` must be a positive integer"):
        imagenet.decode_predictions(preds, top=0)


# ---- fetch -> convert -> cache, end to end on a tiny model and file:// URLs ---- #

TINY = "test_tiny_regnety"
TINY_SPEC = AnyNetSpec(ds=(1, 2), ws=(16, 32), gs=(8, 8), block="Y", se_ratio=0.25, stem_w=8)
CLASSES = 10


@pytest.fixture
def tiny():
    registry.register(TINY, TINY_SPEC, resolution=64, family="test", factory="TestTinyRegNetY")
    try:
        yield TINY
    finally:
        registry.unregister(TINY)


def _timm_state_dict(spec, seed):
    """A random Keras model of ``spec`` and its weights under timm's names and PyTorch layouts."""
    from regnet_tf.applications import build_model

    model = build_model(spec, classes=CLASSES, classifier_activation=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(seed)
    for v in model.weights:  # BN moving variance positive, everything else random
        a = rng.normal(size=v.shape)
        v.assign((np.abs(a) + 0.5 if v.path.endswith("moving_variance") else a).astype("float32"))
    tensors = as_timm_state_dict(model, spec.resolved())
    return model, tensors


def _write_safetensors(path, tensors):
    header, offset = {}, 0
    for key, a in tensors.items():
        header[key] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(np.ascontiguousarray(a, "<f4").tobytes()
                                                                for a in tensors.values()))
    return "file://" + os.path.abspath(path)


def _register(url, tag="test/tiny", **fields):
    return pretrained.register_tag(TINY, tag, url, source="timm", arch="", classes=CLASSES, input_size=72,
                                   crop_fraction=0.9, interpolation="bilinear", default=True, **fields)


def test_weights_file_fetches_converts_once_and_reuses_the_cache(tiny, tmp_path, monkeypatch):
    from regnet_tf import weights
    from regnet_tf.applications import build_model

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # the Keras cache, never ~/.keras
    source_model, tensors = _timm_state_dict(TINY_SPEC, seed=1)
    url = _write_safetensors(tmp_path / "tiny.safetensors", tensors)
    _register(url, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert pretrained.tags(tiny) == ["test/tiny"] and pretrained.default_tag(tiny) == "test/tiny"

    calls = []
    convert_file = weights.convert_file
    monkeypatch.setattr(weights, "convert_file", lambda *a, **k: calls.append(a) or convert_file(*a, **k))
    path, config = pretrained.weights_file(tiny, "imagenet")
    assert os.path.dirname(path) == str(tmp_path / "keras_home" / "models" / "regnet_tf") and len(calls) == 1
    assert sorted(os.listdir(os.path.dirname(path))) == ["test_tiny_regnety__test__tiny.safetensors",
                                                         "test_tiny_regnety__test__tiny.weights.h5"]
    assert (config.model, config.source, config.tag, config.url, config.classes) == (tiny, "timm", "test/tiny", url, 10)
    assert (config.input_size, config.crop_fraction, config.interpolation) == (72, 0.9, "bilinear")
    assert config.input_mean == (0.5, 0.5, 0.5) and config.input_std == (0.25, 0.25, 0.25)

    loaded = build_model(tiny, weights=path, classes=CLASSES, classifier_activation=None)  # by layer name
    source_weights = {v.path: np.asarray(v) for v in source_model.weights}
    assert {v.path for v in loaded.weights} == set(source_weights)
    for v in loaded.weights:
        np.testing.assert_array_equal(np.asarray(v), source_weights[v.path])

    os.remove(tmp_path / "tiny.safetensors")  # the origin is gone: the cache alone answers, nothing is converted
    assert pretrained.weights_file(tiny) == (path, config) and len(calls) == 1
    with pytest.raises(pretrained.WeightsDownloadError):  # another cache has neither file, and the origin is gone
        pretrained.weights_file(tiny, cache_dir=str(tmp_path / "elsewhere"))


def test_a_failed_download_names_model_tag_url_and_where_to_put_the_file(tiny, tmp_path):
    _, tensors = _timm_state_dict(TINY_SPEC, seed=2)
    missing = "file://" + str(tmp_path / "missing.safetensors")
    _register(missing)
    expected = os.path.join(str(tmp_path / "cache"), "models", "regnet_tf", "test_tiny_regnety__test__tiny.safetensors")
    with pytest.raises(pretrained.WeightsDownloadError) as e:
        pretrained.weights_file(tiny, "test/tiny", cache_dir=str(tmp_path / "cache"))
    message = str(e.value)
    assert all(s in message for s in (tiny, "'test/tiny'", missing, "Without network access", expected)), message
    _write_safetensors(expected, tensors)  # placed by hand, as the message says: no download needed
    path, config = pretrained.weights_file(tiny, "test/tiny", cache_dir=str(tmp_path / "cache"))
    assert os.path.isfile(path) and config.tag == "test/tiny"


def test_a_corrupted_file_is_a_clear_error(tiny, tmp_path):
    _, tensors = _timm_state_dict(TINY_SPEC, seed=3)
    url = _write_safetensors(tmp_path / "tiny.safetensors", tensors)
    _register(url, tag="test/hash", file_hash="0" * 64)  # not the file's sha256
    with pytest.raises(pretrained.WeightsDownloadError, match=rf"{TINY} weights 'test/hash' from {re.escape(url)}"
                                                              r": .*file hash does not match"):
        pretrained.weights_file(tiny, "test/hash", cache_dir=str(tmp_path / "cache"))
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 64)
    bad = _register("file://" + str(tmp_path / "garbage.safetensors"), tag="test/garbage").url
    with pytest.raises(ConversionError, match=rf"{TINY} weights 'test/garbage' from {re.escape(bad)} do not fit "
                                              rf"{TINY} \(delete .* to fetch it again\): .*not a .safetensors file"):
        pretrained.weights_file(tiny, "test/garbage", cache_dir=str(tmp_path / "cache"))


def test_a_file_of_another_shape_is_refused_naming_model_tag_and_url(tiny, tmp_path):
    wider = TINY_SPEC.replace(ws=(16, 48), gs=(8, 8))
    _, tensors = _timm_state_dict(wider, seed=4)
    url = _write_safetensors(tmp_path / "wider.safetensors", tensors)
    _register(url)
    with pytest.raises(ConversionError, match=rf"(?s){TINY} weights 'test/tiny' from {re.escape(url)} do not fit "
                                              r"{}.*shapes that differ".format(TINY)):
        pretrained.weights_file(tiny, cache_dir=str(tmp_path / "cache"))
    assert not [f for f in os.listdir(tmp_path / "cache" / "models" / "regnet_tf") if f.endswith(".weights.h5")]


def test_factories_load_public_weights_by_tag(tiny, tmp_path, monkeypatch):
    from regnet_tf.applications import build_model

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    source_model, tensors = _timm_state_dict(TINY_SPEC, seed=5)
    _register(_write_safetensors(tmp_path / "tiny.safetensors", tensors))
    model = build_model(tiny, weights="imagenet", classes=CLASSES, classifier_activation=None)
    assert model.input_shape == (None, 72, 72, 3)  # the weights' evaluation size
    x = np.random.default_rng(0).normal(size=(2, 72, 72, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(source_model(x)), rtol=0, atol=1e-5)
    features = build_model(tiny, weights="test/tiny", include_top=False, pooling="avg")
    assert features.output_shape == (None, 32)
    with pytest.raises(ValueError, match="unknown weights 'test/other'"):
        build_model(tiny, weights="test/other")
