"""Benchmark library and CLI (tiny model, 32x32, one step: fast)."""

import os
import subprocess
import sys

import pytest

from regnet_tf import complexity  # pure Python; regnet_tf.benchmark (TensorFlow) is imported by the fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "launch", "benchmark.py")
TINY = ["--model", "regnetx_002", "--resolution", "32", "--batch", "2", "--steps", "1", "--warmup", "1"]


def _start_cli(*args):
    # One TF thread each: the CLI runs alongside the in-process tests on a small CPU.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    return subprocess.Popen([sys.executable, SCRIPT, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def cli_runs():
    # Both CLI processes start at once and run while the in-process tests do.
    procs = {"ok": _start_cli(*TINY), "unknown": _start_cli("--model", "regnetx_002,not_a_model")}
    results = {}

    def result(key):  # waits for that process: (returncode, stdout, stderr)
        if key not in results:
            out, err = procs[key].communicate(timeout=120)
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
def rows(bench):
    return bench.run(["regnetx_002"], resolution=32, batch=2, compare=[], steps=1, warmup=1)


def test_run_rows(rows):
    assert [(r["implementation"], r["model"], r["mode"]) for r in rows] == [
        ("regnet_tf", "regnetx_002", "train"), ("regnet_tf", "regnetx_002", "infer")]
    macs = complexity("regnetx_002", 32)["flops"]
    for r in rows:
        assert (r["batch"], r["resolution"], r["macs"], r["steps"], r["warmup"]) == (2, 32, macs, 1, 1)
        assert r["images_per_s"] > 0 and r["ms_per_step"] > 0
        assert r["images_per_s"] == pytest.approx(2 * 1000 / r["ms_per_step"])
        factor = 3 if r["mode"] == "train" else 1
        assert r["gflops_per_s"] == pytest.approx(r["images_per_s"] * 2 * macs * factor / 1e9)
        assert r["vs_tf_keras"] is None


def test_format_table(bench, rows):
    table = bench.format_table(rows)
    lines = table.splitlines()
    assert "images/s" in lines[0] and "GFLOP/s" in lines[0] and "vs tf_keras" not in lines[0]
    assert len(lines) == 4 and all("regnetx_002" in line for line in lines[2:])
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule aligned
    ratio = bench.format_table([dict(rows[0], vs_tf_keras=2.0)])
    assert "vs tf_keras" in ratio and "2.00x" in ratio


def test_unknown_model_raises(bench):
    with pytest.raises(ValueError, match="regnety_016"):
        bench.run(["regnety_16"], resolution=32, batch=2, steps=1, warmup=1)
    with pytest.raises(ValueError):
        bench.measure(lambda: None, 2, 32, "eval")


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
    assert lines[0].startswith("TensorFlow ") and "CPU cores" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("implementation"))
    assert "images/s" in lines[header] and "ms/step" in lines[header]
    assert [line.split()[2] for line in lines[header + 2:]] == ["train", "infer"]


def test_cli_unknown_model(cli_runs):
    returncode, out, err = cli_runs("unknown")
    assert returncode != 0
    assert "not_a_model" in err and "regnety_016" in err and "Valid names" in err
    assert "Traceback" not in out + err
