"""Shared test setup: the environment, a fresh Keras session per test, artifacts built once per pytest run, and the
order that keeps the two xdist workers busy until the end (docs/DEVELOPMENT.md: the test budget)."""

import contextlib
import fcntl
import gc
import os
import re
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# as the launchers do (regnet_tf.cli.ENVIRONMENT; importing regnet_tf sets nothing): native grouped-conv gradients
# on every CPU. Tests of the fallback without oneDNN run in subprocesses.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- scheduling over the xdist workers (`-n 2`) ---- #

# Modules whose module-scoped fixtures are expensive (exports, CLI processes started at once): one worker runs each
# whole, so its fixtures are built once. Every other test is scheduled on its own.
ONE_WORKER_MODULES = ("test_benchmark.py", "test_deploy.py", "test_export.py", "test_finetune.py", "test_fuzz.py",
                      "test_serving_limits.py")
# The slowest tests and modules (seconds on our 2-core machines, `--durations`): they start first, so that no worker
# ends the run on a long test while the other is idle. The rest runs after them, in file order.
SLOW_FIRST = (
    "tests/test_design_sweep.py::test_two_shards_give_the_unsharded_set_and_resume_without_retraining",  # the sweep
    "tests/test_repo.py::test_readme_main_job_runs",  # the tiny run
    "tests/test_benchmark.py",
    "tests/test_deploy.py",
    "tests/test_fuzz.py",
    "tests/test_train.py::test_train_export_and_eval_a_regnet",
    "tests/test_weights_core.py::test_convert_eval_and_export_commands",
    "tests/test_design_sweep.py::test_search_writes_the_best_model_as_a_recipe",
    "tests/test_export.py",
    "tests/test_swa.py::test_swa_run_interrupted_and_resumed",
    "tests/test_design_studies.py::test_a_study_runs_end_to_end_and_is_analyzed",
    "tests/test_train.py::test_truncated_tfrecord_is_one_error_line_and_data_dir_picks_the_source",
    "tests/test_train.py::test_multi_worker_two_local_processes",
    "tests/test_train.py::test_mixed_precision_training",
    "tests/test_train.py::test_sigkill_and_resume",
    "tests/test_data.py::test_benchmark_input_cli",
    "tests/test_finetune.py",
    "tests/test_train.py::test_sigterm_saves_a_checkpoint_and_exits",
    "tests/test_best_checkpoint.py::test_early_stopping_exports_the_best_checkpoint",
    "tests/test_serving_limits.py",
    "tests/test_train.py::test_mirrored_over_two_logical_cpus",
    "tests/test_models.py::test_built_model_equals_counter_for_every_zoo_model",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        for i, name in enumerate(SLOW_FIRST):
            if item.nodeid == name or item.nodeid.startswith(name + "::") or item.nodeid.startswith(name + "["):
                return i
        return len(SLOW_FIRST)

    items.sort(key=rank)  # stable: file order within a rank


class OrderedScheduling:
    """The scheduler of `-n 2` (a plugin, registered when xdist is: pytest refuses a hook it does not know)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        """`--dist load` (what `-n` uses) with the modules of `ONE_WORKER_MODULES` as one work unit each. (xdist's
        `--dist loadgroup` would do it with marks, but its marks do not take effect under pytest 9.) Units start in
        the collection order (`SLOW_FIRST` first)."""
        if config.getvalue("dist") != "load":
            return None
        from xdist.scheduler import LoadScopeScheduling

        config.option.loadscopereorder = False  # keep our order (LoadScopeScheduling would put large units first)

        class Scheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid):
                module = nodeid.split("::", 1)[0]
                return module if os.path.basename(module) in ONE_WORKER_MODULES else nodeid

        return Scheduling(config, log)


def pytest_configure(config):
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(OrderedScheduling(), "regnet_tf_ordered_scheduling")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Keras's global state (layer-name counters, the default graph) starts afresh in every test. Without the full
    garbage collection of ``clear_session()``: ~0.3 s per test with TensorFlow loaded, a third of the suite's time
    when it ran after each of the ~1,200 tests; `_collect_garbage` runs it once per test module instead."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=False)


@pytest.fixture(scope="module", autouse=True)
def _collect_garbage():
    """A full collection after each test module; what survives it (TensorFlow's and Keras's ~0.5M module objects,
    caches, session fixtures) is frozen, so later collections, this one's and Python's own, traverse only what the
    tests made since (a full traversal costs 0.5-1 s with TensorFlow loaded: ~25 s of a run's wall time)."""
    yield
    gc.collect()
    gc.freeze()


# ---- artifacts built once per pytest run, shared by the xdist workers ---- #


def shared_root(tmp_path_factory):
    """A directory of this pytest run that every xdist worker sees (the workers' base temp dirs are siblings)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _exclusive(lock_path):
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_once(tmp_path_factory, name, make):
    """The directory ``name`` of this run, made by ``make(directory)`` in the first worker that asks; the others wait
    for it. A failed ``make`` leaves nothing behind, so the next test that asks tries again (and fails the same)."""
    root = shared_root(tmp_path_factory)
    target = root / f"shared-{name}"
    with _exclusive(str(root / f".shared-{name}.lock")):
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            try:
                make(target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            (target / ".complete").write_text("")
    return target


def demo_root(tmp_path_factory):
    return shared_root(tmp_path_factory) / "regnet_tf_data"


@pytest.fixture(scope="session", autouse=True)
def _demo_data_env(tmp_path_factory):
    """Every test, and every subprocess a test starts, reads and writes the demo data in this run's one cache
    (`$REGNET_TF_DATA`); nothing is generated until a test asks (`demo_cache`)."""
    os.environ["REGNET_TF_DATA"] = str(demo_root(tmp_path_factory))
    yield


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """`$REGNET_TF_DATA` with the demo data in it: generated once per run (~10 s), by the first worker that asks."""
    root = demo_root(tmp_path_factory)
    with _exclusive(str(root.parent / ".regnet_tf_data.lock")):
        from regnet_tf.data import demo

        demo.ensure(str(root / "demo"))
    return str(root)


def run_launcher(script, *args, env=None, timeout=600, **kwargs):
    """``python launch/<script> args`` in the repository, output captured as text."""
    return subprocess.run([sys.executable, os.path.join(REPO, "launch", script), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO, **kwargs)


def run_command(command, *args, positional=()):
    """A command's ``main`` (a `regnet_tf.cli` module, e.g. ``regnet_tf.cli.eval``) in this process, with ``args``
    as its command line (``positional``: the arguments after the flags, e.g. directories); returns what it printed. Exceptions propagate (in a process, `cli.run` prints a user error
    as its one `error:` line: tests of that start the launcher). The command's absl flags exist for the call only:
    the next command may define flags of the same names. For a test of what the command computes; a test of the
    process (the one-line error, the environment set before TensorFlow loads) starts it with `run_launcher`."""
    import io

    from absl import flags

    names = set(flags.FLAGS)
    command.define_flags()
    added = [name for name in flags.FLAGS if name not in names]
    out = io.StringIO()
    try:
        flags.FLAGS([command.__name__, *args])
        with contextlib.redirect_stdout(out):
            command.main([command.__name__, *positional])
    finally:
        for name in added:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()
    return out.getvalue()


# The tiny run: the README's main job (the demo recipe) at 32 px, batch 16, 6 steps in loops of 3, a checkpoint every
# 3 steps, evaluated and exported (checkpoints 3 and 6, metrics.jsonl, TensorBoard logs, export/6). tests/test_repo.py
# and tests/test_train.py check what it wrote; launch/export.py and launch/eval.py run on it.
TINY = ["--data", "demo", "--set", "data.image_size=32", "--set", "train.global_batch_size=16",
        "--set", "train.eval_steps=1", "--set", "schedule.warmup_epochs=0", "--set", "schedule.base_lr=0.01",
        "--set", "schedule.base_batch_size=16"]


def readme_quick_start():
    """The README quick start's two commands (main job, tests), each without its install step."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        section = f.read().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the quick start has exactly two commands (main job, tests)"
    return [b.strip().split("&&")[-1].strip() for b in blocks]


def readme_main_job():
    """The README's main job as launch/train.py arguments (`python launch/train.py --recipe demo`: --recipe demo)."""
    command = readme_quick_start()[0].split()
    assert command[:2] == ["python", "launch/train.py"], command
    return command[2:]


TINY_RUN = ["--steps", "6", *TINY, "--set", "train.steps_per_loop=3", "--set", "train.checkpoint_every_steps=3"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_cache):
    """The model_dir of the tiny run (built once per pytest run): the README's main job with `TINY_RUN`'s flags. Its
    stdout is in ``<model_dir>/../stdout.txt``. Read it, or copy it before running anything that writes."""

    def make(directory):
        out = run_launcher("train.py", *readme_main_job(), *TINY_RUN, "--model_dir", str(directory / "run"))
        (directory / "stdout.txt").write_text(out.stdout)
        assert out.returncode == 0, out.stderr[-3000:]

    return str(build_once(tmp_path_factory, "tiny_run", make) / "run")
