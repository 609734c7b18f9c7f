"""The README's quick start stays true: its test command is the one CI runs, its main job runs."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _quick_start():
    readme = _read("README.md")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the quick start has exactly two commands (main job, tests)"
    return [b.strip().split("&&")[-1].strip() for b in blocks]  # the command after the install step


def test_ci_runs_the_readme_test_command():
    test_cmd = _quick_start()[1]
    assert test_cmd.startswith("python -m pytest")
    ci = [line.strip() for line in _read(".ci/run").splitlines()]
    assert test_cmd in ci


def test_readme_main_job_runs(tmp_path_factory):
    """The quick start's main job (training the demo recipe), shortened to a few steps."""
    main_cmd = _quick_start()[0]
    assert main_cmd.startswith("python launch/train.py --recipe demo")
    model_dir = str(tmp_path_factory.mktemp("quick_start"))
    cache = str(tmp_path_factory.getbasetemp().parent / "regnet_tf_cache")  # shared with tests/test_train.py
    extra = ["--steps", "4", "--set", "train.eval_steps=1", "--set", "data.image_size=32", "--model_dir", model_dir]
    env = dict(os.environ, REGNET_TF_DATA=cache, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(main_cmd.replace("python", sys.executable, 1).split() + extra, cwd=ROOT, capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "final evaluation at step 4" in out.stdout and "exported SavedModel" in out.stdout


def test_model_zoo_doc_is_current():
    from regnet_tf import zoo

    table = zoo.format_table(zoo.rows(), markdown=True)
    assert table in _read("docs/MODEL_ZOO.md"), "regenerate with: python launch/models.py --markdown"
