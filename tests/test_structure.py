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


def explicit_imports():
    """{module: {modules it names in an import}}: module-level and function-level imports, relative ones resolved,
    and string imports (`importlib.import_module("regnet_tf...")`, lazy-module proxies) included. `from a import b`
    points at a.b when that is a module, else at a."""
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


def with_parent_packages(explicit, root="regnet_tf"):
    """The import graph Python runs: importing a.b.c runs the package a.b (its __init__) first, so an import of a
    module is also an import of each package above it, except the ones the importer is itself inside (they ran
    before it) and the root package, the facade: it imports from everything and nothing imports a name from it
    (`test_no_module_imports_a_name_from_the_root_package`)."""
    graph = {}
    for mod, targets in explicit.items():
        edges = set()
        for target in targets - {root}:
            parts = target.split(".")
            edges |= {".".join(parts[:n]) for n in range(2, len(parts) + 1)}
        own = {".".join(mod.split(".")[:n]) for n in range(1, mod.count(".") + 2)}
        graph[mod] = edges - own
    return graph


def import_graph():
    """{module: {modules importing it runs}}: its explicit imports and the packages above them."""
    return with_parent_packages(explicit_imports())


ROOMS = ("regnet_tf.models", "regnet_tf.data", "regnet_tf.train", "regnet_tf.weights", "regnet_tf.design",
         "regnet_tf.cli")


def room_graph(graph):
    """The import graph with each subpackage collapsed to one node (its "room"); a top-level module is its own."""
    def room(m):
        return next((r for r in ROOMS if m == r or m.startswith(r + ".")), m)

    rooms = {}
    for mod, targets in graph.items():
        rooms.setdefault(room(mod), set()).update(room(t) for t in targets)
    return {r: targets - {r} for r, targets in rooms.items()}


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


def test_the_cycle_finder_sees_a_cycle_through_a_package_init():
    """The cycle of issue 19: counter imported the registry, which ran `regnet_tf.models` first, which imported the
    families, which import counter. No module names counter -> models -> anynet: the package init is the hidden step."""
    explicit = {"regnet_tf.counter": {"regnet_tf.models.registry"}, "regnet_tf.models.registry": set(),
                "regnet_tf.models": {"regnet_tf.models.anynet"}, "regnet_tf.models.anynet": {"regnet_tf.counter"}}
    assert find_cycle(explicit) is None
    assert find_cycle(with_parent_packages(explicit)) == ["regnet_tf.counter", "regnet_tf.models",
                                                          "regnet_tf.models.anynet", "regnet_tf.counter"]
    # the same cycle seen from the rooms; and a package's own modules import their package init without a cycle
    assert find_cycle(room_graph(with_parent_packages(explicit))) is not None
    assert find_cycle(with_parent_packages({"a.p": {"a.p.m"}, "a.p.m": {"a.p.n"}, "a.p.n": set()})) is None


def test_the_import_graph_reads_function_level_relative_and_implicit_imports():
    graph = import_graph()
    assert "regnet_tf.models.registry" in graph and "regnet_tf.counter" in graph
    # the facade imports the zoo; applications looks names up in the zoo, and runs the models package init with
    # its first import of a family module
    assert "regnet_tf.zoo" in graph["regnet_tf"]
    assert {"regnet_tf.zoo", "regnet_tf.models", "regnet_tf.models.common"} <= graph["regnet_tf.applications"]
    # lazy-module proxies count: a family module's Keras code imports regnet_tf.layers
    assert "regnet_tf.layers" in graph["regnet_tf.models.anynet"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycles_between_rooms():
    """Each subpackage taken as one room (and each top-level module as its own): the rooms import one way."""
    cycle = find_cycle(room_graph(import_graph()))
    assert cycle is None, "import cycle between rooms: " + " -> ".join(cycle)


def test_the_models_package_runs_no_family_module():
    """Importing the registry (or any module of regnet_tf.models) runs `regnet_tf.models` first: it imports nothing,
    so the leaves stay leaves; `regnet_tf.zoo` is the one module that imports every family."""
    graph = import_graph()
    assert graph["regnet_tf.models"] == set()
    families = {f"regnet_tf.models.{f}" for f in ("anynet", "regnet", "efficientnet", "resnet")}
    importers = {m for m, targets in explicit_imports().items() if families <= targets}
    assert importers - {"regnet_tf"} == {"regnet_tf.zoo"}, importers  # the root: the facade's spec classes


def test_no_module_imports_a_name_from_the_root_package():
    """`regnet_tf/__init__.py` is the facade over the zoo and the families; inside the package, names come from
    their own module (submodules of the root may be imported: `from regnet_tf import zoo`)."""
    modules = _modules()
    offenders = []
    for mod, path in modules.items():
        if mod == "regnet_tf":
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "regnet_tf" and not node.level:
                offenders += [f"{mod}: {a.name}" for a in node.names if f"regnet_tf.{a.name}" not in modules]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "regnet_tf"
                  and f"regnet_tf.{node.attr}" not in modules and node.attr != "__version__"):
                offenders.append(f"{mod}: regnet_tf.{node.attr}")
    assert not offenders, offenders


LEAVES = ("regnet_tf.padding", "regnet_tf.files", "regnet_tf.models.registry", "regnet_tf.counter",
          "regnet_tf.scaling", "regnet_tf.layers", "regnet_tf.data.format", "regnet_tf.data.augment_policies")


@pytest.mark.parametrize("leaf", LEAVES + ("regnet_tf.data.config",))
def test_leaf_modules_import_nothing_of_ours(leaf):
    """The padding conventions, the registry, the counter, the scaling math, our Keras layers (but the padding
    conventions) and the data-format facts import nothing of ours; DataConfig (plain data) reads only leaves."""
    allowed = {"regnet_tf.data.config": set(LEAVES), "regnet_tf.layers": {"regnet_tf.padding"}}.get(leaf, set())
    ours = import_graph()[leaf] - allowed
    assert not ours, f"{leaf} imports {sorted(ours)}"


def test_each_pure_python_leaf_imports_first_in_a_fresh_interpreter():
    """Each leaf imported first (with everything of ours unloaded before it), as ``python -c "import <leaf>"`` does;
    the zoo then still lists every model in zoo order, and no TensorFlow is loaded."""
    _run("""
import importlib, sys
for leaf in ("regnet_tf.padding", "regnet_tf.models.registry", "regnet_tf.counter", "regnet_tf.scaling",
             "regnet_tf.models.resnet"):
    for m in [m for m in sys.modules if m == "regnet_tf" or m.startswith("regnet_tf.")]:
        del sys.modules[m]
    importlib.import_module(leaf)
    names = importlib.import_module("regnet_tf.zoo").list_models()
    assert names[0] == "regnetx_002" and names[-1].startswith("resnet_rs_"), (leaf, names[:3])
assert "tensorflow" not in sys.modules
""")


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
from regnet_tf.data import config, folder, format
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


def test_no_module_reads_another_modules_private_names():
    """A name one module uses from another is public (issue 19): no `from regnet_tf.x import _y`, no `x._y`."""
    modules, uses = _modules(), []
    paths = list(modules.values()) + [os.path.join(ROOT, "tools", f) for f in os.listdir(os.path.join(ROOT, "tools"))
                                      if f.endswith(".py")]
    for path in paths:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        ours = set()  # local names bound to our modules (imported, or lazy-module proxies)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("regnet_tf") and not node.level:
                uses += [f"{path}: from {node.module} import {a.name}" for a in node.names
                         if a.name.startswith("_") and not a.name.startswith("__")]
                ours |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                ours |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("regnet_tf")}
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args
                  and isinstance(node.value.args[0], ast.Constant) and str(node.value.args[0].value) in modules):
                ours |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in ours):
                uses.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not uses, "\n".join(uses)
