"""The package's shape: no import cycles, TF-free pure-Python parts, no global side effects, small modules, launchers
that are shims over `regnet_tf.cli`."""

import ast
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "regnet_tf")
MAX_LINES = 400


def _modules():
    """{dotted module name: path} of every module of the package (a package is its __init__.py)."""
    out = {}
    for dirpath, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = os.path.join(dirpath, f)
    return out


def _target(name, modules):
    """The module an import of `name` loads last: the deepest of our modules that `name` starts with."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def import_graph():
    """{module: {modules it imports}}: module-level and function-level imports, relative ones resolved, and string
    imports (`importlib.import_module("regnet_tf...")`, lazy-module proxies) included. `from a import b` points at
    a.b when that is a module, else at a."""
    modules = _modules()
    graph = {}
    for mod, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        edges = set()
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                value = node.args[0].value
                if isinstance(value, str) and value.startswith("regnet_tf"):
                    names = [value]
            for name in names:
                target = _target(name, modules)
                if target and target != mod:
                    edges.add(target)
        graph[mod] = edges
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_reads_function_level_and_relative_imports():
    graph = import_graph()
    assert "regnet_tf.models.registry" in graph and "regnet_tf.counter" in graph
    # the package __init__ imports the pure-Python API; applications builds through the registry
    assert "regnet_tf.counter" in graph["regnet_tf"]
    assert "regnet_tf.models.registry" in graph["regnet_tf.applications"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


LEAVES = ("regnet_tf.models.registry", "regnet_tf.counter", "regnet_tf.data.format", "regnet_tf.data.augment_policies")


@pytest.mark.parametrize("leaf", LEAVES + ("regnet_tf.data.config",))
def test_leaf_modules_import_nothing_of_ours(leaf):
    """The registry and the data-format facts import nothing of ours; DataConfig (plain data) reads only leaves;
    the counter reads only the registry."""
    allowed = {"regnet_tf", "regnet_tf.data"}  # package __init__s that load nothing at import
    if leaf == "regnet_tf.data.config":
        allowed |= set(LEAVES)
    if leaf == "regnet_tf.counter":
        allowed |= {"regnet_tf.models.registry"}
    ours = import_graph()[leaf] - allowed
    assert not ours, f"{leaf} imports {sorted(ours)}"


def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_pure_python_parts_import_no_tensorflow_and_change_no_environment():
    _run("""
import os, sys
before = dict(os.environ)
import regnet_tf
from regnet_tf.train import recipe
from regnet_tf.data import config, format
assert regnet_tf.complexity("regnety_016")["flops"] == 1612087326
regnet_tf.scale("regnety_040", 4)
r = recipe.load("demo")
r.spec()
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
assert not heavy, heavy
assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
""")


def test_importing_the_tensorflow_parts_changes_no_environment():
    _run("""
import os
import tensorflow
before = dict(os.environ)
import regnet_tf.applications, regnet_tf.layers, regnet_tf.data, regnet_tf.data.sources, regnet_tf.train
import regnet_tf.cli
assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())
""")


def test_modules_are_small_or_say_why():
    long = {}
    for mod, path in _modules().items():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        n = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if n > MAX_LINES and "Length:" not in doc:
            long[mod] = n
    assert not long, f"modules over {MAX_LINES} lines without a 'Length: <reason>' line in their docstring: {long}"


def test_generic_code_does_not_switch_on_spec_types():
    spec_types = r"(AnyNetSpec|RegNetSpec|ResNetSpec|EffNetSpec)"
    families = {"anynet.py", "regnet.py", "resnet.py", "efficientnet.py"}
    offenders = []
    for mod, path in _modules().items():
        if os.path.basename(path) in families:
            continue
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if re.search(r"isinstance\([^)]*" + spec_types, line) or re.search(r"hasattr\(spec", line):
                    offenders.append(f"{mod}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def _console_scripts():
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        text = f.read()
    return dict(re.findall(r'"(regnet-[a-z-]+)\s*=\s*(regnet_tf\.cli\.[a-z_]+:run)"', text))


def test_every_launcher_is_a_shim_over_a_console_script():
    scripts = _console_scripts()
    targets = {v.split(":")[0].rsplit(".", 1)[1] for v in scripts.values()}
    launchers = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "launch")) if f.endswith(".py"))
    assert launchers and set(launchers) == targets, (launchers, scripts)
    for name in launchers:
        with open(os.path.join(ROOT, "launch", f"{name}.py"), encoding="utf-8") as f:
            text = f.read()
        assert "sys.path" not in text, f"launch/{name}.py edits sys.path"
        assert f"from regnet_tf.cli.{name} import run" in text, f"launch/{name}.py is not a shim"


@pytest.mark.parametrize("script", ["regnet-train", "regnet-eval", "regnet-export", "regnet-models", "regnet-scale",
                                    "regnet-build-tfrecords", "regnet-benchmark", "regnet-benchmark-input"])
def test_console_script_entry_points_exist_without_importing_tensorflow(script):
    target = _console_scripts().get(script)
    assert target, f"setup.py has no console script {script}"
    module, func = target.split(":")
    _run(f"""
import importlib, sys
assert callable(getattr(importlib.import_module({module!r}), {func!r}))
assert "tensorflow" not in sys.modules
""")


def test_moved_modules_forward_with_a_deprecation_warning():
    import keras

    from regnet_tf.models import blocks, common
    from regnet_tf.train import distribute, loop, trainer

    with pytest.warns(DeprecationWarning, match="regnet_tf.train.trainer.Trainer"):
        assert loop.Trainer is trainer.Trainer
    with pytest.warns(DeprecationWarning, match="distribute.POLICIES"):
        assert loop.PRECISIONS is distribute.POLICIES
    with pytest.raises(AttributeError, match="split"):
        loop.not_a_name  # noqa: B018
    with pytest.warns(DeprecationWarning, match="models.common.conv_bn_act"):
        assert blocks.conv_bn_act is common.conv_bn_act
    with pytest.raises(AttributeError, match="family module"):
        blocks.bottleneck_block  # noqa: B018
    from regnet_tf import AnyNetSpec

    spec = AnyNetSpec(ds=(1,), ws=(8,), block="V", stem_w=8)
    with pytest.warns(DeprecationWarning, match="spec.features"):
        y = blocks.features(keras.Input((32, 32, 3)), spec)
    assert tuple(y.shape) == (None, 8, 8, 8)
