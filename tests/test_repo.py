"""The README's quick start stays true: its test command is the one CI runs, its main job runs."""

import os
import re

from conftest import readme_quick_start

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_ci_runs_the_readme_test_command():
    test_cmd = readme_quick_start()[1]
    assert test_cmd.startswith("python -m pytest")
    ci = [line.strip() for line in _read(".ci/run").splitlines()]
    assert test_cmd in ci


def test_readme_main_job_runs(tiny_run):
    """The quick start's main job (training the demo recipe) ran, shortened to a few steps: the shared tiny run of
    tests/conftest.py is that command with TINY_RUN's flags."""
    assert readme_quick_start()[0].startswith("python launch/train.py --recipe demo")
    with open(os.path.join(os.path.dirname(tiny_run), "stdout.txt"), encoding="utf-8") as f:
        stdout = f.read()
    assert "final evaluation at step 6" in stdout and "exported SavedModel" in stdout


def test_model_zoo_doc_is_current():
    from regnet_tf import zoo

    table = zoo.format_table(zoo.rows(), markdown=True)
    assert table in _read("docs/MODEL_ZOO.md"), "regenerate with: python launch/models.py --markdown"


def test_readme_is_a_front_door():
    """At most 250 lines (issue 19: details belong in docs/), and every relative link points at a file that exists."""
    text = _read("README.md")
    assert len(text.splitlines()) <= 250, f"README.md has {len(text.splitlines())} lines: move details into docs/"
    links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
    missing = [link for link in links if "://" not in link and not os.path.exists(os.path.join(ROOT, link))]
    assert links and not missing, missing
