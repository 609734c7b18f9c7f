"""Benchmark library and CLI (tiny model, 32x32, one step per round: fast; they check behaviour, not speed)."""

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


@pytest.fixture(scope="module")
def cli_runs():
    # The CLI processes start at once and run while the in-process tests do.
    procs = {"ok": _start(SCRIPT, *TINY, "--compare", "tf_keras", "--mode", "infer", "--all_harnesses"),
             "unknown": _start(SCRIPT, "--model", "regnetx_002,not_a_model"),
             "import": _start("-c", "import sys, regnet_tf.cli.benchmark as b; "
                                    "print(b.bench.HARNESSES, 'tensorflow' in sys.modules)")}
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
