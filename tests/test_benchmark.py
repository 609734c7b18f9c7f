"""Benchmark library and CLI (tiny model, 32x32, one step per round: fast; they check behaviour, not speed)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from regnet_tf import complexity  # pure Python; regnet_tf.benchmark loads TensorFlow only when it times a model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "launch", "benchmark.py")
TINY = ["--model", "regnetx_002", "--resolution", "32", "--batch", "2", "--steps", "1", "--warmup", "1",
        "--rounds", "2"]


def _start(*args):
    # One TF thread each: the CLI runs alongside the in-process tests on a small CPU.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # the launcher sets it
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _has_tf_keras():
    try:
        import tf_keras  # noqa: F401
    except ImportError:
        return False
    return True


def _has_export_tools():
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("ai_edge_litert", "tf2onnx", "onnxruntime"))


@pytest.fixture(scope="module")
def cli_runs():
    # The CLI processes start at once and run while the in-process tests do.
    procs = {"ok": _start(SCRIPT, *TINY, "--compare", "tf_keras", "--mode", "infer", "--all_harnesses"),
             "unknown": _start(SCRIPT, "--model", "regnetx_002,not_a_model"),
             "import": _start("-c", "import sys, regnet_tf.cli.benchmark as b; "
                                    "print(b.bench.HARNESSES, 'tensorflow' in sys.modules)"),
             "bad_format": _start(SCRIPT, "--model", "regnetx_002", "--formats", "tflite,tflight")}
    if _has_export_tools():  # export in this process, time in a child process with 1 thread
        procs["formats"] = _start(SCRIPT, "--model", "regnetx_002", "--resolution", "32", "--batch", "2",
                                  "--rounds", "1", "--steps", "1", "--warmup", "1", "--latency_steps", "1",
                                  "--threads", "1", "--formats", "saved_model,tflite,onnx", "--micro_batch", "1")
    results = {}

    def result(key):  # waits for that process: (returncode, stdout, stderr)
        if key not in results:
            out, err = procs[key].communicate(timeout=300)
            results[key] = (procs[key].returncode, out, err)
        return results[key]

    yield result
    for p in procs.values():
        if p.poll() is None:
            p.kill()


@pytest.fixture(scope="module")
def bench(cli_runs):
    # After the CLI processes have started, so that they import TensorFlow while this process does.
    from regnet_tf import benchmark

    return benchmark


@pytest.fixture
def formats_bench(bench):
    from regnet_tf import benchmark_formats

    return benchmark_formats


@pytest.fixture(scope="module")
def timed(bench):
    lines = []
    rows = bench.run(["regnetx_002"], resolution=32, batch=2, compare=[], steps=1, warmup=1, rounds=2,
                     progress=lines.append)
    return rows, lines


def test_run_rows(timed):
    rows, _ = timed
    assert [(r["implementation"], r["model"], r["mode"], r["harness"]) for r in rows] == [
        ("regnet_tf", "regnetx_002", "train", "on_batch"), ("regnet_tf", "regnetx_002", "train", "tf_function"),
        ("regnet_tf", "regnetx_002", "infer", "on_batch"), ("regnet_tf", "regnetx_002", "infer", "tf_function")]
    macs = complexity("regnetx_002", 32)["flops"]
    for r in rows:
        assert (r["batch"], r["resolution"], r["macs"], r["steps"], r["warmup"], r["rounds"]) == (2, 32, macs, 1, 1, 2)
        assert 0 < r["ms_min"] <= r["ms_per_step"] <= r["ms_max"]
        assert r["images_per_s"] == pytest.approx(2 * 1000 / r["ms_per_step"])
        factor = 3 if r["mode"] == "train" else 1
        assert r["gflops_per_s"] == pytest.approx(r["images_per_s"] * 2 * macs * factor / 1e9)
        assert r["vs_tf_keras"] is None and r["vs_keras"] is None
    for mode in ("train", "infer"):  # one fastest harness per (mode, implementation), and it is the faster one
        pair = [r for r in rows if r["mode"] == mode]
        assert [r["fastest"] for r in pair].count(True) == 1
        fastest = next(r for r in pair if r["fastest"])
        assert fastest["images_per_s"] == max(r["images_per_s"] for r in pair)
        assert fastest["vs_regnet_tf"] == 1.0


def test_rounds_alternate(timed):
    _, lines = timed
    timing = [line.split(":")[0] + " " + line.split(",")[0].split(": ")[1]
              for line in lines if line.startswith("timing")]
    train = [t for t in timing if " train " in t]
    assert train == ["timing regnet_tf regnetx_002 train on_batch round 1/2",
                     "timing regnet_tf regnetx_002 train tf_function round 1/2",
                     "timing regnet_tf regnetx_002 train on_batch round 2/2",
                     "timing regnet_tf regnetx_002 train tf_function round 2/2"]
    first_timing = next(i for i, line in enumerate(lines) if line.startswith("timing"))
    assert all(not line.startswith("warmup") for line in lines[first_timing:first_timing + 4])


def test_one_harness_only(bench):
    rows = bench.run(["regnetx_002"], resolution=32, batch=2, steps=1, warmup=0, rounds=1, harnesses=["tf_function"],
                     modes=["infer"])
    assert [(r["mode"], r["harness"], r["fastest"]) for r in rows] == [("infer", "tf_function", True)]
    with pytest.raises(ValueError, match="harness"):
        bench.run(["regnetx_002"], resolution=32, batch=2, harnesses=["fit"])
    with pytest.raises(ValueError, match="rounds"):
        bench.run(["regnetx_002"], resolution=32, batch=2, rounds=0)


def test_harnesses_compute_the_same_step(bench):
    # The two harnesses time the same work: equal predictions, and one SGD step from equal weights gives equal weights.
    import keras

    from regnet_tf import AnyNetSpec
    from regnet_tf.applications import build_model

    keras.utils.set_random_seed(0)
    spec = AnyNetSpec(ds=(1, 1), ws=(16, 32), gs=(8, 8), stem_w=8)  # X blocks with grouped convs, as RegNetX's
    model = build_model(spec, weights=None, input_shape=(32, 32, 3))
    images, labels = bench.random_batch(model, 2, 32)
    preds = [bench.make_step(model, keras, "infer", h, images, labels)() for h in bench.HARNESSES]
    np.testing.assert_allclose(preds[0], preds[1], rtol=1e-5, atol=1e-6)
    start, after = model.get_weights(), []
    for h in bench.HARNESSES:
        model.set_weights(start)
        bench.make_step(model, keras, "train", h, images, labels)()
        after.append(model.get_weights())
    assert any(not np.allclose(a, b) for a, b in zip(start, after[0]))  # the step trained
    for a, b in zip(*after):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_ratios_against_fastest_path(bench):
    def row(impl, harness, ips):
        return {"implementation": impl, "model": "m", "mode": "train", "harness": harness, "images_per_s": ips,
                "ms_per_step": 1000 / ips, "ms_min": 1000 / ips, "ms_max": 1000 / ips}

    rows = [row("regnet_tf", "on_batch", 8.0), row("regnet_tf", "tf_function", 10.0),
            row("tf_keras", "on_batch", 4.0), row("tf_keras", "tf_function", 5.0)]
    bench._add_ratios(rows)
    assert [r["fastest"] for r in rows] == [False, True, False, True]
    assert [r["vs_tf_keras"] for r in rows] == [1.6, 2.0, 0.8, 1.0]  # vs tf_keras's tf.function path, not its own
    assert [r["vs_regnet_tf"] for r in rows] == [0.8, 1.0, 0.4, 0.5]
    assert all(r["vs_keras"] is None for r in rows)
    table = bench.format_table(rows).splitlines()
    assert "vs tf_keras" in table[0] and "vs keras" not in table[0] and "harness" in table[0]
    assert len(table) == 4 and "2.00x" in table[2] and "1.00x" in table[3] and "tf.function" in table[2]
    full = bench.format_table(rows, all_harnesses=True).splitlines()
    assert len(full) == 6 and "train_on_batch " in full[2] and "tf.function*" in full[3] and "1.60x" in full[2]


def test_format_table(bench, timed):
    rows, _ = timed
    lines = bench.format_table(rows).splitlines()
    assert "images/s" in lines[0] and "GFLOP/s" in lines[0] and "vs tf_keras" not in lines[0]
    assert len(lines) == 4 and all("regnetx_002" in line for line in lines[2:])  # the fastest path per mode
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule aligned
    assert len(bench.format_table(rows, all_harnesses=True).splitlines()) == 6


def test_unknown_model_raises(bench):
    with pytest.raises(ValueError, match="regnety_016"):
        bench.run(["regnety_16"], resolution=32, batch=2, steps=1, warmup=1)
    with pytest.raises(ValueError, match="mode"):
        bench.measure(lambda: None, 2, 32, "eval")
    with pytest.raises(ValueError, match="harness"):
        bench.measure(lambda: None, 2, 32, "train", harness="fit")


def test_measure_one_round(bench):
    from regnet_tf.applications import build_model

    m = bench.measure(lambda: build_model("regnetx_002", weights=None, input_shape=(32, 32, 3)), 2, 32, "infer",
                      steps=1, warmup=1, harness="tf_function")
    assert (m["steps"], m["warmup"]) == (1, 1) and m["images_per_s"] == pytest.approx(2000 / m["ms_per_step"])


def test_resnet50_macs(bench):
    assert bench.model_macs("resnet50", 224) == bench.RESNET50_MACS_224
    assert bench.model_macs("resnet50", 112) == bench.RESNET50_MACS_224 // 4
    assert bench.default_resolution("resnet50") == 224
    assert bench.default_resolution("regnety_016") == 224


def test_missing_comparison_is_a_note(bench, monkeypatch):
    assert "RegNetZ005" in bench._model_fn("keras", "regnetz_005", 224)
    monkeypatch.setitem(sys.modules, "tf_keras", None)  # import tf_keras -> ImportError
    assert "not installed" in bench._model_fn("tf_keras", "regnetx_002", 224)


def test_cli_prints_table(cli_runs):
    returncode, out, err = cli_runs("ok")
    assert returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("TensorFlow ") and "CPU cores" in lines[0] and "TF_ENABLE_ONEDNN_OPTS=1" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("implementation"))
    assert "images/s" in lines[header] and "ms/step" in lines[header] and "harness" in lines[header]
    body = [line.split() for line in lines[header + 2:]]
    impls = ["regnet_tf", "tf_keras"] if _has_tf_keras() else ["regnet_tf"]
    assert [(b[0], b[2], b[3].rstrip("*")) for b in body] == [
        (i, "infer", h) for i in impls for h in ("predict_on_batch", "tf.function")]
    assert [b[3].endswith("*") for b in body].count(True) == len(impls)  # one fastest path per implementation
    if _has_tf_keras():
        assert "vs tf_keras" in lines[header] and any(b[-1] == "1.00x" for b in body[2:])


def test_cli_unknown_model(cli_runs):
    returncode, out, err = cli_runs("unknown")
    assert returncode != 0
    assert "not_a_model" in err and "regnety_016" in err and "Valid names" in err
    assert "Traceback" not in out + err


def test_cli_module_imports_without_tensorflow(cli_runs):
    returncode, out, err = cli_runs("import")
    assert returncode == 0, err
    assert out.split() == ["('on_batch',", "'tf_function')", "False"]


# --- exported formats (--formats)


def test_cli_formats_table(cli_runs):
    if not _has_export_tools():
        pytest.skip("needs ai_edge_litert, tf2onnx and onnxruntime (pip install 'regnet_tf[export]')")
    returncode, out, err = cli_runs("formats")
    assert returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("TensorFlow ") and "onnxruntime" in lines[1]
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    for column in ("format", "threads", "b1 median ms", "b1 p90 ms", "b2 images/s", "b2 as", "b1 vs saved_model",
                   "b2 vs saved_model", "rel diff"):
        assert column in lines[header]
    body = [line.split() for line in lines[header + 2:header + 5]]
    assert [(b[0], b[1], b[2]) for b in body] == [("regnetx_002", f, "1") for f in ("saved_model", "tflite", "onnx")]
    assert body[0][-3:] == ["1.00x", "1.00x", "-"]  # the baseline; a SavedModel crops first: no difference
    assert all(float(b[-1]) < 1e-4 for b in body[1:])  # the files compute the Keras model's logits
    assert any(line.startswith("tflite: ") and "XNNPACK" in line for line in lines[header + 5:])


def test_cli_bad_format(cli_runs):
    returncode, out, err = cli_runs("bad_format")
    assert returncode != 0 and "Traceback" not in out + err
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "'tflight'" in error[0] and "valid formats: keras, keras_folded" in error[0]
    assert "openvino_bf16" in error[0]


def test_check_formats(formats_bench):
    assert formats_bench.check_formats(["onnx", " keras", "onnx", ""]) == ("onnx", "keras")
    with pytest.raises(ValueError, match="valid formats: keras"):
        formats_bench.check_formats(["tflite_int4"])
    assert set(formats_bench.FORMATS) >= {"saved_model", "tflite", "tflite_int8", "onnx", "openvino", "keras_folded"}
    assert formats_bench.default_baseline(("onnx", "keras")) == "keras"
    assert formats_bench.default_baseline(("onnx", "saved_model")) == "saved_model"
    assert formats_bench.default_baseline(("keras",), ["timm"]) == "timm"


def test_time_runners_alternate(formats_bench):
    calls, lines = [], []

    def runner(label):
        return (lambda x: calls.append((label, len(x))) or np.zeros((len(x), 3), np.float32)), np.float32

    pixels = np.zeros((4, 8, 8, 3), np.uint8)
    out = formats_bench.time_runners({"a": runner("a"), "b": runner("b")}, pixels, rounds=2, steps=3, latency_steps=2,
                             warmup=2, progress=lines.append)
    timed = calls[2 * 4:]  # warmup: per runner 2 batch-4 calls and 2 batch-1 calls
    assert calls[:4] == [("a", 4), ("a", 4), ("a", 1), ("a", 1)]
    assert timed == 2 * ([("a", 1)] * 2 + [("a", 4)] * 3 + [("b", 1)] * 2 + [("b", 4)] * 3)
    assert [len(out[k]["latency_ms"]) for k in "ab"] == [4, 4] and [len(out[k]["batch_ms"]) for k in "ab"] == [2, 2]
    assert [line for line in lines if line.startswith("timing")] == [
        "timing a: round 1/2", "timing b: round 1/2", "timing a: round 2/2", "timing b: round 2/2"]


def test_time_runners_micro_batches(formats_bench):
    """Each size below the batch is warmed up once and timed per round after the whole batch, as consecutive calls
    whose outputs are concatenated; a size of at least the batch is the whole batch."""
    calls = []

    def run(x):
        calls.append(len(x))
        return np.asarray(x[:, 0, 0, :1], np.float32)  # each image's first pixel: shows the order is kept

    pixels = np.arange(5)[:, None, None, None] * np.ones((5, 2, 2, 3), np.uint8)
    out = formats_bench.time_runners({"a": (run, np.float32)}, pixels, rounds=2, steps=1, latency_steps=1, warmup=1,
                                     micro_batches=(2, 1, 2, 8))
    sizes_1_and_2 = [1] * 5 + [2, 2, 1]
    assert calls == [5, 1] + sizes_1_and_2 + 2 * ([1, 5] + sizes_1_and_2)  # warm-up, then 2 rounds
    assert sorted(out["a"]["micro_batch_ms"]) == [1, 2]
    assert all(len(v) == 2 for v in out["a"]["micro_batch_ms"].values()) and len(out["a"]["batch_ms"]) == 2
    assert out["a"]["output"].ravel().tolist() == [0, 1, 2, 3, 4]
    from regnet_tf.runtimes import in_micro_batches

    assert in_micro_batches(run, pixels, 2).ravel().tolist() == [0, 1, 2, 3, 4]
    assert [len(in_micro_batches(run, pixels[:k], m)) for k, m in ((5, None), (5, 5), (5, 9), (1, 1))] == [5, 5, 5, 1]


def test_fastest_way(formats_bench):
    assert formats_bench.fastest_way([10, 12, 11], {1: [20, 20], 2: [5, 6, 9]}, 4) == (2, [5, 6, 9])
    assert formats_bench.fastest_way([3, 4, 5], {1: [20, 20], 2: [5, 6, 9]}, 4) == (4, [3, 4, 5])
    assert formats_bench.fastest_way([6, 6], {2: [6, 6]}, 4) == (4, [6, 6])  # a tie: the larger calls
    assert formats_bench.fastest_way([6, 6], {}, 4) == (4, [6, 6])
    assert formats_bench.check_micro_batches(["4", "1", " 2", "4", ""]) == (1, 2, 4)
    assert formats_bench.check_micro_batches([]) == ()
    for bad in (["0"], ["two"], ["-1", "2"]):
        with pytest.raises(ValueError, match="micro-batch sizes must be positive integers"):
            formats_bench.check_micro_batches(bad)


def test_format_ratios_and_table(formats_bench):
    def row(fmt, ms, ips, threads=1):
        return {"model": "m", "format": fmt, "threads": threads, "resolution": 32, "batch": 8, "latency_ms": ms,
                "latency_p90_ms": ms * 1.5, "images_per_s": ips, "ms_min": 1, "ms_max": 2, "max_rel_diff": None}

    rows = [row("keras_folded", 10.0, 50.0), row("timm_nchw", 20.0, 30.0), row("timm_channels_last", 25.0, 40.0),
            row("keras_folded", 10.0, 50.0, threads=2), row("tflite", 5.0, 45.0)]
    formats_bench.add_format_ratios(rows, "timm")  # vs the faster timm row on each measure, per thread count
    assert [r["b1_vs"] for r in rows[:3]] == [2.0, 1.0, 0.8] and [r["bn_vs"] for r in rows[:3]] == [1.25, 0.75, 1.0]
    assert rows[3]["b1_vs"] is None and rows[3]["bn_vs"] is None
    lines = formats_bench.format_formats_table(rows).splitlines()
    assert "b1 vs timm's fastest" in lines[0] and "b8 images/s" in lines[0] and "b1 p90 ms" in lines[0]
    assert lines[2].split()[:3] == ["m", "keras_folded", "1"] and "2.00x" in lines[2] and "1.25x" in lines[2]
    assert len({len(line) for line in lines[:2]}) == 1
    assert any(line.startswith("timm_channels_last: ") for line in lines)
    # per measure the fastest row that is not the baseline's (none for 2 threads: no timm row there)
    assert formats_bench.fastest_rows(rows) == [
        {"model": "m", "threads": 1, "precision": "f32", "b1": ("tflite", 4.0), "bn": ("keras_folded", 1.25)}]
    assert lines[-2:] == ["fastest of the other rows vs timm's fastest:",
                          "m, 1 thread: batch 1 tflite 4.00x, batch 8 keras_folded 1.25x"]
    assert "b8 as" not in lines[0] and not any(line.startswith("b8 images/s: ") for line in lines)
    # with micro-batches timed: how each row ran its batch of 8, and a note saying what the column means
    rows[0].update(micro_batch=8, images_per_s_by_micro_batch={"2": 20.0, "8": 50.0})
    rows[4].update(micro_batch=2, images_per_s_by_micro_batch={"2": 45.0, "8": 30.0})
    rows[2].update(micro_batch=3, images_per_s_by_micro_batch={"3": 40.0, "8": 39.0})
    lines = formats_bench.format_formats_table(rows).splitlines()
    end = lines[0].index("b8 as") + len("b8 as")  # right-aligned: every cell ends where the header does
    assert [line[:end].rsplit("  ", 1)[1].strip() for line in lines[2:7]] == ["1 call", "-", "3 x 3", "-", "4 x 2"]
    assert ("b8 images/s: each row's fastest way to run the batch of 8, one call or consecutive calls of 2, 3 "
            "images (b8 as: calls x images), timm's rows included") in lines
    i = lines.index("b8 images/s by how the batch ran (calls x images):")  # and the rate of every way
    assert lines[i + 1].split() == ["model", "format", "threads", "1", "call", "3", "x", "3", "4", "x", "2"]
    assert lines[i + 3].split() == ["m", "keras_folded", "1", "50.0", "-", "20.0"]
    assert lines[i + 4].split() == ["m", "timm_nchw", "1", "-", "-", "-"]


def test_run_formats_keras_rows(formats_bench):
    # The Keras rows need no export tool: the model is saved, loaded back, folded and timed in this process.
    from regnet_tf import AnyNetSpec

    spec = AnyNetSpec(ds=(1, 1), ws=(8, 16), gs=(4, 4), block="Y", se_ratio=0.25, stem_w=8)  # grouped convs, SE
    rows = formats_bench.run_formats([spec], ["keras", "keras_folded", "keras_frozen"], resolution=32, batch=2,
                                     rounds=1, steps=1, latency_steps=2, warmup=1, micro_batches=(1,),
                                     log=lambda note: None)
    assert [(r["model"], r["format"], r["batch"], r["resolution"]) for r in rows] == [
        ("anynet", "keras", 2, 32), ("anynet", "keras_folded", 2, 32), ("anynet", "keras_frozen", 2, 32)]
    for r in rows:
        assert 0 < r["latency_ms"] <= r["latency_p90_ms"] and r["images_per_s"] > 0 and r["baseline"] == "keras"
        ways = r["images_per_s_by_micro_batch"]  # the batch of 2 as one call and as two calls of 1: the faster
        assert set(ways) == {"1", "2"} and r["images_per_s"] == max(ways.values()) == ways[str(r["micro_batch"])]
    assert rows[0]["b1_vs"] == rows[0]["bn_vs"] == 1.0 and rows[0]["max_rel_diff"] < 1e-6  # eager vs tf.function
    assert rows[1]["max_rel_diff"] < 1e-4 and rows[2]["max_rel_diff"] < 1e-4  # folding and freezing keep the logits
    macs = complexity(spec, 32)["flops"]  # GFLOP/s from the papers' count, against one matmul peak per process
    for r in rows:
        assert r["gflops"] == pytest.approx(2 * macs * r["images_per_s"] / 1e9)
        assert r["peak_gflops"] == rows[0]["peak_gflops"] > r["gflops"]
    lines = formats_bench.format_formats_table(rows).splitlines()
    assert "b2 GFLOP/s" in lines[0] and "% peak" in lines[0]
    gflops, peak = rows[0]["gflops"], rows[0]["peak_gflops"]
    assert lines[2].split()[8:10] == [f"{gflops:.0f}", f"{100 * gflops / peak:.0f}%"] and "b2 as" in lines[0]
    assert any(line.startswith("GFLOP/s: 2 x multiply-adds") and "GFLOP/s at default threads" in line for line in lines)


def test_export_model_gives_batch_norm_trained_statistics(formats_bench, tmp_path):
    """Non-trivial, seeded BN statistics, so that folded biases are not all zero (TensorFlow's optimizer would drop
    zero biases and then fuse less than for a trained model); the manifest carries the model's multiply-adds."""
    import keras

    from regnet_tf import AnyNetSpec
    from regnet_tf.applications import build_model
    from regnet_tf.inference import all_layers, fold_batch_norm

    spec = AnyNetSpec(ds=(1,), ws=(8,), gs=(4,), block="Y", se_ratio=0.25, stem_w=8)
    manifest = formats_bench.export_model(spec, ["keras"], str(tmp_path), resolution=32, log=lambda note: None)
    assert manifest["macs"] == complexity(spec, 32)["flops"]
    model = keras.models.load_model(tmp_path / formats_bench.KERAS_FILE)
    bns = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and all(np.all(layer.moving_variance.numpy() != 1) and np.all(layer.beta.numpy() != 0) for layer in bns)
    again = build_model(spec, weights=None, input_shape=(32, 32, 3))
    formats_bench.trained_statistics(again)
    for layer in bns:  # the same statistics for the same seed
        for a, b in zip(layer.get_weights(), again.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    biases = [layer.bias.numpy() for layer in all_layers(fold_batch_norm(model))
              if isinstance(layer, keras.layers.Conv2D) and "se_" not in layer.name]
    assert biases and all(np.abs(b).min() > 0 for b in biases)


def test_timm_compiled_is_one_of_timms_rows(formats_bench):
    rows = [{"model": "m", "format": f, "threads": 1, "latency_ms": ms, "images_per_s": ips}
            for f, ms, ips in [("keras_frozen", 10.0, 50.0), ("timm_channels_last", 20.0, 30.0),
                               ("timm_compiled", 12.5, 40.0)]]
    formats_bench.add_format_ratios(rows, "timm")  # "timm's fastest" is the compiled row on both measures here
    assert (rows[0]["b1_vs"], rows[0]["bn_vs"]) == (1.25, 1.25)


def test_bf16_rows_are_compared_with_timms_bf16_row(formats_bench):
    """A ratio against timm compares one precision: bf16 rows with timm_compiled_bf16, the rest with timm's float32
    rows; the fastest rows are per precision, and int8 (no timm row of its own) is never among them."""
    def rows(*timed):
        return [{"model": "m", "format": f, "threads": 1, "batch": 8, "resolution": 32, "latency_ms": ms,
                 "latency_p90_ms": ms, "images_per_s": ips, "ms_min": 1, "ms_max": 2, "max_rel_diff": None}
                for f, ms, ips in timed]

    ours = [("openvino", 8.0, 60.0), ("openvino_bf16", 4.0, 120.0), ("tflite_int8", 2.0, 200.0)]
    timm = [("timm_channels_last", 20.0, 30.0), ("timm_compiled", 12.5, 40.0)]
    timed = rows(*ours, *timm, ("timm_compiled_bf16", 5.0, 100.0))
    formats_bench.add_format_ratios(timed, "timm")
    ratios = {r["format"]: (r["b1_vs"], r["bn_vs"]) for r in timed}
    assert ratios["openvino"] == (1.5625, 1.5) and ratios["openvino_bf16"] == (1.25, 1.2)
    assert ratios["tflite_int8"] == (6.25, 5.0)  # its column is against float32 timm: no int8 timm row
    assert formats_bench.fastest_rows(timed) == [
        {"model": "m", "threads": 1, "precision": "f32", "b1": ("openvino", 1.5625), "bn": ("openvino", 1.5)},
        {"model": "m", "threads": 1, "precision": "bf16", "b1": ("openvino_bf16", 1.25), "bn": ("openvino_bf16", 1.2)}]
    lines = formats_bench.format_formats_table(timed).splitlines()
    assert lines[-2:] == ["m, 1 thread: batch 1 openvino 1.56x, batch 8 openvino 1.50x",
                          "m, 1 thread, bf16: batch 1 openvino_bf16 1.25x, batch 8 openvino_bf16 1.20x"]
    assert "bf16 rows are compared with timm_compiled_bf16, every other row with timm's float32 rows" in lines
    assert formats_bench.precision("openvino_bf16+split") == "bf16" and formats_bench.precision("onnx") == "f32"
    # no timm bf16 row (no torch.compile): the bf16 row has no ratio, and is not weighed against float32 timm
    alone = rows(*ours, *timm)
    formats_bench.add_format_ratios(alone, "timm")
    assert [r["b1_vs"] for r in alone if r["format"] == "openvino_bf16"] == [None]
    assert [f["b1"][0] for f in formats_bench.fastest_rows(alone)] == ["openvino"]
    # against one of our own float32 formats: the bf16 and int8 rows keep their columns, not a "fastest" line
    formats_bench.add_format_ratios(alone, "openvino")
    assert [r["bn_vs"] for r in alone[:3]] == [1.0, 2.0, 200.0 / 60.0]
    assert [f["bn"][0] for f in formats_bench.fastest_rows(alone)] == ["timm_compiled"]


TIMM_ROWS_CHECK = """
import json, sys
import numpy as np
from regnet_tf import benchmark_formats as bf
assert bf.import_timm()  # before TensorFlow
import torch
torch.manual_seed(0)  # timm's random init
notes = []
pixels = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.float32)
runners = bf.timm_runners("regnetx_002", 32, 1, notes.append)
out = {label: run(pixels[:3]) for label, (run, _) in runners.items()}
diffs = {label: float(np.abs(o - out["timm_nchw"]).max() / np.abs(out["timm_nchw"]).max()) for label, o in out.items()}
for b in (2, 4, 5):  # a graph per batch size: 5 of this model
    runners["timm_compiled"][0](pixels[:b])
# a second model's 5 graphs of the same Python function: TorchDynamo would run it uncompiled after 8. Compiled,
# BatchNorm is folded: the logits differ from eager's in the last bits.
second = bf.timm_runners("regnety_002", 32, 1, notes.append)
compiled, eager = second["timm_compiled"][0], second["timm_channels_last"][0]
sizes = [(float(np.abs(compiled(pixels[:b]) - eager(pixels[:b])).max() / np.abs(eager(pixels[:b])).max()))
         for b in range(1, 6)]
def no_compiler(*args, **kwargs):
    def fail(*a, **k):
        raise RuntimeError("no working C++ compiler found")
    return fail
third = bf.timm_runners("regnetx_002", 32, 1, notes.append, bf16=True)
low, high = third["timm_compiled_bf16"][0](pixels[:3]), third["timm_channels_last"][0](pixels[:3])
assert low.dtype == np.float32
bf16_diff = float(np.abs(low - high).max() / np.abs(high).max())
torch.compile = no_compiler
failed = []
left = bf.timm_runners("regnetx_002", 32, 1, failed.append)
print(json.dumps({"diffs": diffs, "sizes": sizes, "notes": notes, "left": sorted(left), "failed": failed,
                  "bf16_rows": sorted(third), "bf16_diff": bf16_diff}))
"""


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("timm", "torch")),
                    reason="needs timm and torch: pip install 'regnet-tf[timm]'")
def test_timm_rows_share_weights_and_compiled_computes_the_same_logits():
    # A process of its own: timm has to load before TensorFlow (benchmark_formats.import_timm).
    result = subprocess.run([sys.executable, "-c", TIMM_ROWS_CHECK], cwd=REPO, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(got["diffs"]) == ["timm_channels_last", "timm_compiled", "timm_nchw"] and not got["notes"]
    assert got["diffs"]["timm_channels_last"] <= 1e-5 and got["diffs"]["timm_compiled"] <= 1e-4  # one set of weights
    assert all(0 < d <= 1e-4 for d in got["sizes"])  # every batch size ran compiled (eager would give 0)
    assert got["left"] == ["timm_channels_last", "timm_nchw"]  # cannot compile: the row is left out, with one note
    assert got["failed"] == ["note: torch.compile failed for timm regnetx_002 (RuntimeError: no working C++ compiler "
                             "found); skipping timm_compiled"]
    # with bf16: the compiled row under bfloat16 autocast as well, float32 logits out, within bf16's rounding
    assert got["bf16_rows"] == ["timm_channels_last", "timm_compiled", "timm_compiled_bf16", "timm_nchw"]
    assert 1e-4 < got["bf16_diff"] < 0.1


def test_timing_environment_gives_timm_huge_pages(formats_bench):
    base = {"PATH": "/bin"}
    assert formats_bench.timing_environment([], base) == base
    assert formats_bench.timing_environment(["timm"], base) == {"PATH": "/bin", "THP_MEM_ALLOC_ENABLE": "1"}
    assert formats_bench.timing_environment(["timm"], {"THP_MEM_ALLOC_ENABLE": "0"}) == {"THP_MEM_ALLOC_ENABLE": "0"}
    assert base == {"PATH": "/bin"}  # a copy


def test_format_options(formats_bench):
    assert formats_bench.check_format_options(["onnx", "keras"], [], ["2", "1", "2"]) == (("onnx", "keras"), [2, 1], "keras")
    assert formats_bench.check_format_options(["onnx"], ["timm"], [1])[2] == "timm"
    assert formats_bench.check_format_options(["onnx"], [], [1], "onnx+split")[2] == "onnx+split"
    for args, message in [((["keras"], ["tf_keras"], [1]), "compare takes only 'timm'"),
                          ((["keras"], [], ["0"]), "positive integers"), ((["keras"], [], ["x"]), "positive integers"),
                          ((["keras"], [], [1], "onnx"), "not among the timed formats")]:
        with pytest.raises(ValueError, match=message):
            formats_bench.check_format_options(*args)
