"""Weights from timm and pycls: converted models compute the source's function (issue 11, section 2).

- Fixtures (tests/fixtures/weights/*.npz, written by tools/make_weight_fixtures.py with timm; no torch needed here):
  tiny RegNetX/Y/Z, ResNet-RS, EfficientNet (symmetric / TF "SAME") networks and pycls-format copies; our converted
  model must give timm's logits in float64 within 1e-8 and in float32 within 1e-3 (times max(1, max|logits|)) at
  two resolutions.
- Refusals: missing, extra and mis-shaped tensors, another architecture; `.pth` without torch; the file formats.
- Full size (marker ``full``; needs timm and torch, skipped otherwise): every timm architecture with a counterpart in
  our registry, random-initialized with random BN statistics, converted and compared in float64.
"""

import contextlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from regnet_tf import weights
from regnet_tf.applications import build_model
from regnet_tf.weights import ConversionError
from regnet_tf.weights import pycls as pycls_source
from regnet_tf.weights import timm as timm_source
from regnet_tf.zoo import get_spec, list_models, spec_kinds

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "weights")
NAMES = sorted(f[:-4] for f in os.listdir(FIXTURES) if f.endswith(".npz"))
TOLERANCE = {"float64": 1e-8, "float32": 1e-3}  # x max(1, max|source logits|)


def load(name):
    """(npz contents, our spec, the source tensors) of a fixture."""
    with np.load(os.path.join(FIXTURES, f"{name}.npz")) as z:
        data = {k: z[k] for k in z.files}
    info = json.loads(str(data["spec"]))
    tensors = {k[2:]: v for k, v in data.items() if k.startswith("t/")}
    return data, spec_kinds()[info["kind"]](**info["fields"]), tensors


@contextlib.contextmanager
def floatx(dtype):
    import keras

    old = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(old)


def rel_error(ours, theirs):
    return float(np.abs(np.asarray(ours, np.float64) - theirs).max() / max(1.0, np.abs(theirs).max()))


def fixture_errors(name, dtype="float32", tensors=None, **kwargs):
    """{size: relative error} of our converted fixture model vs the source's logits."""
    data, spec, fixture_tensors = load(name)
    overrides = json.loads(str(data["overrides"]))
    kwargs = {"spec": overrides, **kwargs} if overrides else kwargs
    with floatx(dtype):
        model, config = weights.convert(str(data["source"]), spec, fixture_tensors if tensors is None else tensors,
                                        classes=10, **kwargs)
        bits = dtype[-2:]
        return {int(s): rel_error(model(data["input"][:, :s, :s].astype(dtype), training=False),
                                  data[f"logits{bits}_{s}"]) for s in data["sizes"]}, config


def test_fixtures_exist_small_and_documented():
    assert {"timm_regnetx", "timm_regnety", "timm_regnetz", "timm_resnet_rs", "timm_efficientnet",
            "timm_tf_efficientnet", "pycls_regnety", "pycls_efficientnet"} <= set(NAMES)
    assert sum(os.path.getsize(os.path.join(FIXTURES, f"{n}.npz")) for n in NAMES) < 3e6
    data, _, tensors = load("timm_regnety")
    assert all(v.dtype == np.float64 for k, v in tensors.items() if not k.endswith("num_batches_tracked"))
    assert min(data["sizes"]) % 32 and len(data["sizes"]) == 2  # one resolution not a multiple of 32
    assert json.loads(str(data["meta"]))["script"] == "tools/make_weight_fixtures.py"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_fixture_logits_equal_source(name, dtype):
    errors, config = fixture_errors(name, dtype)
    for size, err in errors.items():
        assert err <= TOLERANCE[dtype], f"{name} at {size} px in {dtype}: relative error {err:.3g}"
    if name.startswith("pycls"):
        assert config.notes == (pycls_source.NOTE,)


@pytest.mark.parametrize("wrong", [{"padding": "symmetric", "bn_eps": 1e-3}, {"padding": "tf_same", "bn_eps": 1e-5}])
def test_tf_efficientnet_fixture_needs_its_padding_and_epsilon(wrong):
    # The fixture test above is not blind to the options: either one wrong breaks float64 equality.
    errors, _ = fixture_errors("timm_tf_efficientnet", "float64", spec=wrong)
    assert max(errors.values()) > 1e-6


def test_pycls_fixture_needs_the_bgr_flip():
    data, spec, tensors = load("pycls_regnety")
    unflipped = dict(tensors, **{pycls_source.STEM: tensors[pycls_source.STEM][:, ::-1]})  # prepare flips it back
    errors, _ = fixture_errors("pycls_regnety", tensors=unflipped)
    assert max(errors.values()) > 1e-2
    before = tensors[pycls_source.STEM].copy()
    flipped = pycls_source.prepare(spec, tensors)[pycls_source.STEM]
    np.testing.assert_array_equal(flipped, before[:, ::-1])
    np.testing.assert_array_equal(tensors[pycls_source.STEM], before)  # the caller's dict is left alone


# ---- refusals: the message lists what does not match ---- #


def _refusal(name, tensors, **kwargs):
    _, spec, _ = load(name)
    with pytest.raises(ConversionError) as e:
        weights.convert("timm", spec, tensors, **{"classes": 10, **kwargs})
    return str(e.value)


def test_refuses_missing_extra_and_misshaped_tensors():
    _, _, tensors = load("timm_regnety")
    missing = {k: v for k, v in tensors.items() if k != "s2.b1.conv2.conv.weight"}
    msg = _refusal("timm_regnety", missing)
    assert "missing in the source (1)" in msg and "s2_b1_b/kernel <- s2.b1.conv2.conv.weight" in msg
    msg = _refusal("timm_regnety", {**tensors, "s5.b1.conv1.conv.weight": np.zeros((8, 8, 1, 1))})
    assert "left unused (1)" in msg and "s5.b1.conv1.conv.weight" in msg
    wrong = dict(tensors, **{"s3.b2.se.fc1.bias": np.zeros(5)})
    msg = _refusal("timm_regnety", wrong)
    assert "shapes that differ" in msg and "s3.b2.se.fc1.bias (5,)" in msg
    msg = _refusal("timm_regnety", tensors, classes=7)  # the classifier counts too
    assert "head.fc.weight" in msg


def test_refuses_another_architecture():
    _, _, regnet = load("timm_regnety")
    msg = _refusal("timm_efficientnet", regnet)  # RegNet tensors into an EfficientNet
    assert "conv_stem.weight" in msg and "s1.b1.conv1.conv.weight" in msg
    _, _, regnetx = load("timm_regnetx")
    msg = _refusal("timm_regnety", regnetx)  # X has no SE
    assert "s1.b1.se.fc1.weight" in msg
    with pytest.raises(ConversionError, match="resnet_rs_50 \\(kind resnet\\); the model is of kind anynet"):
        timm_source.options(get_spec("regnety_040").resolved(), {}, "resnetrs50")
    with pytest.raises(ConversionError, match=r"ws: \(128, 192, 512, 1088\) \(model\) vs \(72, 216, 576, 1512\)"):
        timm_source.options(get_spec("regnety_040").resolved(), {}, "regnety_032")
    with pytest.raises(ConversionError, match="pycls weights convert into RegNet/AnyNet and EfficientNet"):
        weights.convert("pycls", "resnet_rs_50", {})


def test_include_top_false_allows_the_unused_classifier_only():
    _, spec, tensors = load("timm_regnety")
    model, _ = weights.convert("timm", spec, tensors, include_top=False)
    assert "predictions" not in [layer.name for layer in model.layers]
    msg = _refusal("timm_regnety", {**tensors, "extra.weight": np.zeros(3)}, include_top=False)
    assert "extra.weight" in msg and "head.fc" not in msg


def test_timm_names_and_options():
    assert set(timm_source.TIMM_TO_OURS.values()) <= set(list_models())
    assert timm_source.our_name("regnety_040.ra3_in1k") == "regnety_040"
    assert timm_source.our_name("tf_efficientnet_b3.ns_jft_in1k") == "efficientnet_b3"
    assert timm_source.our_name("resnetrs420") == "resnet_rs_420"
    for arch, why in [("regnety_640", "not in regnet_tf's zoo"), ("regnetv_040", "pre-activation"),
                      ("regnetx_004_tv", "torchvision"), ("regnetz_b16", "ByobNet"), ("vit_base", "unknown")]:
        with pytest.raises(ConversionError, match=why):
            timm_source.our_name(arch)
    b0 = get_spec("efficientnet_b0").resolved()
    assert timm_source.options(b0, {}, "tf_efficientnet_b0.ns_jft_in1k") == {
        "spec": {"padding": "tf_same", "bn_eps": 1e-3}}
    assert timm_source.options(b0, {}, "efficientnet_b0") == {"spec": {"padding": "symmetric", "bn_eps": 1e-5}}
    # EfficientNet-RS is EfficientNet's architecture at another resolution: the same weights fit
    timm_source.options(get_spec("efficientnet_rs_b0").resolved(), {}, "efficientnet_b0")
    half = timm_source.options(b0, {}, "tf_efficientnet_b0.ap_in1k")  # AdvProp weights: inputs in [-1, 1]
    assert half["input_mean"] == half["input_std"] == (0.5, 0.5, 0.5)
    assert "input_mean" not in timm_source.options(b0, {}, "efficientnet_b0.ra_in1k")
    timm_source.options(get_spec("regnetz_040").resolved(), {}, "regnetz_040")  # head_act: timm's final SiLU
    no_act = get_spec("regnetz_040").resolved().replace(head_act=False)
    with pytest.raises(ConversionError, match="differs in:\n  head_act: False"):
        timm_source.options(no_act, {}, "regnetz_040")
    with pytest.raises(ConversionError, match="applies its activation after the last stage"):
        timm_source.options(no_act, {}, "")


# ---- file formats ---- #


def _write_safetensors(path, tensors):
    """A .safetensors file written by hand (8-byte header size, JSON header, little-endian data)."""
    codes = {"float64": "F64", "float32": "F32", "int64": "I64"}
    header, offset, blobs = {}, 0, []
    for k, v in tensors.items():
        blob = np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": codes[v.dtype.name], "shape": list(v.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.mark.parametrize("fmt", ["safetensors", "safetensors_package", "npz"])
def test_checkpoint_files_without_torch(tmp_path, fmt, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # none of these paths may need torch
    _, _, tensors = load("timm_regnetx")
    path = str(tmp_path / f"regnetx.{fmt.split('_')[0]}")
    if fmt == "safetensors":
        _write_safetensors(path, tensors)
    elif fmt == "safetensors_package":
        st = pytest.importorskip("safetensors.numpy")
        st.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)
    else:
        np.savez(path, **tensors)
    read = weights.read_tensors(path)
    assert sorted(read) == sorted(tensors)
    # (the safetensors package stores the 0-d BN step counters with shape (1,); they carry no weights)
    assert all(np.array_equal(read[k], v) for k, v in tensors.items() if v.ndim)
    errors, _ = fixture_errors("timm_regnetx", tensors=path)
    assert max(errors.values()) <= TOLERANCE["float32"]


def test_pth_without_torch_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(ConversionError, match=r"needs PyTorch.*pip install.*\.safetensors or \.npz"):
        weights.convert("timm", "regnetx_002", str(path))


def test_pth_and_pyth_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    _, _, tensors = load("timm_regnetx")
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, tmp_path / "x.pth")
    assert max(fixture_errors("timm_regnetx", tensors=str(tmp_path / "x.pth"))[0].values()) <= 1e-3
    _, _, tensors = load("pycls_regnety")
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in tensors.items()}, "epoch": 3}, tmp_path / "y.pyth")
    assert max(fixture_errors("pycls_regnety", tensors=str(tmp_path / "y.pyth"))[0].values()) <= 1e-3


# ---- full size: every timm architecture with a counterpart (timm + torch; marker `full`) ---- #
# timm runs in a process of its own (tools/make_weight_fixtures.py): importing timm after TensorFlow crashes the
# process (in triton's import), and pytest has usually loaded TensorFlow by then.

TOOL = os.path.join(HERE, "..", "tools", "make_weight_fixtures.py")
needs_timm = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("timm", "torch")),
                                reason="needs timm and torch: pip install 'regnet-tf[timm]'")
FULL_SIZE = 100  # not a multiple of 32: feature maps 50, 25, 13, 7, 4
FULL = [a for a in sorted(timm_source.TIMM_TO_OURS) if a != "regnetz_040h"]  # (a deprecated alias)


def run_tool(*args) -> str:
    result = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def timm_model(tmp_path, arch, *args):
    """`full_size` of tools/make_weight_fixtures.py: (tensors, input, logits64, logits32, BN epsilons)."""
    path = str(tmp_path / f"{arch}.npz")
    run_tool("--timm-model", arch, "--size", str(FULL_SIZE), "--out", path, *args)
    with np.load(path) as z:
        return ({k[2:]: z[k] for k in z.files if k.startswith("t/")}, z["input"], z["logits64"], z["logits32"],
                set(z["bn_eps"].tolist()))


@needs_timm
@pytest.mark.full
@pytest.mark.parametrize("arch", FULL)
def test_full_size_timm_model_equal(arch, tmp_path):
    start = time.time()
    tensors, x, theirs, _, eps = timm_model(tmp_path, arch)
    with floatx("float64"):
        model, config = weights.convert("timm", timm_source.our_name(arch), tensors, arch=arch)
        ours = model(x, training=False)
    assert eps == {config.spec["bn_eps"]}
    err = rel_error(ours, theirs)
    print(f"\n{arch}: relative error {err:.3g} (max|logits| {np.abs(theirs).max():.3g}), {time.time() - start:.1f} s")
    assert err <= TOLERANCE["float64"], f"{arch}: relative error {err:.3g}"


@needs_timm
@pytest.mark.full
@pytest.mark.parametrize("arch", ["regnety_016", "regnetz_005", "resnetrs50", "resnet50", "efficientnet_b0",
                                  "tf_efficientnet_b0"])
def test_full_size_timm_model_equal_in_float32(arch, tmp_path):
    tensors, x, _, theirs, _ = timm_model(tmp_path, arch, "--seed", "2")
    model, _ = weights.convert("timm", timm_source.our_name(arch), tensors, arch=arch)
    assert rel_error(model(x.astype("float32"), training=False), theirs) <= TOLERANCE["float32"]


@needs_timm
@pytest.mark.full
def test_full_size_regnetz_040_needs_its_final_activation(tmp_path):
    # timm's regnetz_040 applies SiLU after the last stage (head_act); without it the networks differ.
    tensors, x, theirs, _, _ = timm_model(tmp_path, "regnetz_040")
    spec = get_spec("regnetz_040").resolved().replace(head_act=False)
    with floatx("float64"):
        model = build_model(spec, classifier_activation=None, input_shape=(None, None, 3))
        weights.core.assign(model, tensors, timm_source.SOURCE, spec)
        assert rel_error(model(x, training=False), theirs) > 1e-3


@needs_timm
def test_timm_names_cover_timm_models():
    # Every timm architecture of our families has a counterpart or a reason; the normalization of every weight tag
    # of a counterpart agrees with timm's pretrained config.
    from regnet_tf.data.format import MEAN_RGB, STD_RGB

    facts = json.loads(run_tool("--timm-facts"))
    assert all(facts["is_model"][a] for a in timm_source.TIMM_TO_OURS if a in facts["is_model"])
    assert set(timm_source.TIMM_TO_OURS) - set(facts["names"]) == {"regnetz_040h"}  # timm's deprecated alias
    for arch in facts["names"]:
        if arch not in timm_source.TIMM_TO_OURS:
            with pytest.raises(ConversionError) as e:
                timm_source.our_name(arch)
            assert "unknown" not in str(e.value), arch
    tags = {t: v for t, v in facts["tags"].items() if t.split(".")[0] in timm_source.TIMM_TO_OURS
            and not t.startswith("regnetz_040.")}  # (refused, test above)
    assert len(tags) > 60
    for tag, (mean, std) in tags.items():
        opts = timm_source.options(get_spec(timm_source.our_name(tag)).resolved(), {}, tag)
        assert np.allclose(opts.get("input_mean", MEAN_RGB), mean) and np.allclose(opts.get("input_std", STD_RGB),
                                                                                    std), tag
