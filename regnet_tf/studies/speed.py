"""The speed study's models and timing: the papers' model sets, each model's training step and inference timed here.

    from regnet_tf.studies import speed
    models = speed.scaled_models(["efficientnet_b0"], ["dw", "w"], [1, 2, 4], resolution=64)
    rows, rounds = speed.time_models(models, batch=4)
    print(speed_analysis.format_correlations(speed_analysis.correlations(rows)))

**Model sets** (`StudyModel`: a spec at a resolution, with where it comes from):
- `scaled_models`: base models scaled by strategies and flops factors (`regnet_tf.scale`, pycls's rounding), as the
  fast-scaling paper's Figure 2 (EfficientNet-B0 by dwr, dw, dW'r and w; its three base models of section 6.1). The
  factor-1 model is the base itself, counted in every strategy's line.
- `named_models`: registry names or recipe names (a recipe gives its spec, image size and the paper's top-1).
- `sampled_models`: a design-space sample (`regnet_tf.design.spaces.sample`).
- `SETS`: the papers' sets by name (`figure2`, `figure2_models`, `table4`, `table7`, `pareto_regnet`).

**Timing** (`time_models`): every model is built once (random weights, logits), then `rounds` alternating rounds time
each model's training step (SGD, cross-entropy, batch ``train_batch``) and inference (``batch``) in a
``tf.function`` (XLA with ``xla=True``), after ``warmup`` untimed calls; a row holds the median ms per step and per
image and the fastest and slowest round. Every row records the device, the TensorFlow and Keras versions, the
threads, the precision and XLA, so CSVs from other machines compare with the same columns (`read_csv`).

The analysis of the rows (correlations, the papers' tables, exponents, Pareto points): `speed_analysis`; plots and
the HTML report: `speed_plots`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import gc
import os
import platform
import statistics
import time
from typing import Optional

from regnet_tf import files, zoo
from regnet_tf.studies import paper

FIGURE2_STRATEGIES = ("dwr", "dw", "dWr", "w")
MODES = ("train", "infer")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# RegNetY-500MF of the fast-scaling paper is unpublished (found by random search); RegNetY-600MF stands in.
SECTION6_BASES = ("efficientnet_b0", "regnety_006", "regnetz_005")
FAMILIES = (("efficientnet_rs", "EfficientNet-RS"), ("efficientnet", "EfficientNet"), ("regnetx", "RegNetX"),
            ("regnety", "RegNetY"), ("regnetz", "RegNetZ"), ("resnet_rs", "ResNet-RS"), ("resnet", "ResNet"))


@dataclasses.dataclass
class StudyModel:
    name: str  # the row's label: a registry or recipe name, "efficientnet_b0 dw x2", "RegNetX-400MF #3"
    spec: object
    resolution: int
    family: str  # "EfficientNet", "RegNetY", ... (the plots' series)
    base: str = ""  # the base model (scaled sets), else the registry name
    strategy: str = ""  # the scaling strategy ("" for unscaled models)
    factor: float = 1.0  # the flops factor of the scaling
    top1: Optional[float] = None  # the paper's top-1 (ImageNet validation), where known
    top1_source: str = ""


def family_of(name: str) -> str:
    """The family label of a registry name ("regnety_016" -> "RegNetY")."""
    for prefix, label in FAMILIES:
        if name.startswith(prefix):
            return label
    return name


def scaled_models(bases, strategies=FIGURE2_STRATEGIES, factors=(1, 2, 4, 8), resolution=None, alpha=0.8):
    """Each base scaled by each strategy and flops factor; factor 1 is the base itself (once per base).

    ``resolution``: the bases' resolution (default: each one's registered resolution); r-scaling scales it.
    """
    factors = sorted({float(f) for f in factors})
    if not factors or factors[0] <= 0:
        raise ValueError(f"factors must be positive numbers; got {factors}")
    models = []
    for base in bases:
        res = int(resolution or zoo.default_resolution(base))
        spec = zoo.resolve(base)
        if 1.0 in factors:
            models.append(StudyModel(base, spec, res, family_of(base), base=base))
        for strategy in strategies:
            zoo.scale(base, 2.0, strategy, alpha, res)  # a ValueError listing the strategies for a bad name
            for f in factors:
                if f != 1.0:
                    s, r = zoo.scale(base, f, strategy, alpha, res)
                    models.append(StudyModel(f"{base} {strategy} x{f:g}", s, r, family_of(base), base, strategy, f))
    return models


def named_models(names, resolution=None, resolution_scale=1.0):
    """Registry names (at their registered resolution) or recipe names (their spec, image size and paper top-1).

    ``resolution`` puts every model at that size; ``resolution_scale`` multiplies each one's own (to a multiple of 4).
    """
    from regnet_tf.train import recipe as recipe_lib  # pure Python

    registered, recipes = set(zoo.list_models()), None
    models = []
    for name in names:
        if name.lower() in registered:
            key = name.lower()
            m = StudyModel(key, zoo.resolve(key), zoo.default_resolution(key), family_of(key), base=key)
        elif name in (recipes := recipes or set(recipe_lib.list_recipes(grids=True))):
            r = recipe_lib.load(name)
            s = r.model.scale
            base = s["base"] if s else r.model.name
            m = StudyModel(name, r.spec(), int(r.data.image_size), family_of(base or r.model.kind), base or name,
                           s["strategy"] if s else "", float(s["factor"]) if s else 1.0, r.paper_top1,
                           r.paper_ref or "")
        else:
            raise ValueError(f"Unknown model or recipe {name!r}. Valid models: {', '.join(zoo.list_models())}; or a "
                             "recipe name (python launch/train.py --list_recipes)")
        models.append(m)
    return [_resized(m, resolution, resolution_scale) for m in models]


def _resized(m: StudyModel, resolution=None, scale=1.0) -> StudyModel:
    if resolution:
        m.resolution = int(resolution)
    elif scale != 1.0:
        m.resolution = max(32, int(round(m.resolution * scale / 4)) * 4)
    return m


def sampled_models(space: str, n: int, regime="400MF", seed: int = 0, resolution: int = 224):
    """``n`` models of a design space in a flop regime (`regnet_tf.design.spaces.sample`, seeded)."""
    from regnet_tf.design import spaces

    specs = spaces.sample(space, n, regime, seed=seed, resolution=resolution)
    return [StudyModel(f"{space} #{i}", s, resolution, space, base=space) for i, s in enumerate(specs)]


def table4_models(resolution=None, resolution_scale=1.0):
    """The EfficientNet B0-B5 / RegNetY pairs of the RegNet paper's Table 4, with its top-1 (100 - error)."""
    models = []
    for pair in paper.TABLE4:
        for row in pair:
            (m,) = named_models([row.model], resolution, resolution_scale)
            m.top1, m.top1_source = round(100 - row.error, 1), row.source
            models.append(m)
    return models


def table7_models(resolution=None, resolution_scale=1.0):
    """The rows of Revisiting ResNets Table 7 (ResNet-RS recipes, EfficientNet B0-B7 at their registered resolution,
    the table's), with their top-1."""
    models = []
    for row in paper.TABLE7:
        (m,) = named_models([row.recipe or row.model], resolution, resolution_scale)
        m.top1, m.top1_source = row.top1, row.source
        models.append(m)
    return models


# The fast-scaling paper's own 2x-schedule results: EfficientNet B0-B5 (Table 5), the RegNet baselines (Table 6) and
# the RegNetZ-500MF scaled by dW'r to 4GF and 16GF (Tables 7-8): one training setup for every point.
PARETO_REGNET = tuple(f"fast_scaling_efficientnet_b{i}_2x" for i in range(6)) + (
    "fast_scaling_regnetz_005_2x", "fast_scaling_regnety_040_2x", "fast_scaling_regnetz_040_2x",
    "fast_scaled_regnetz_005_dWr_x8_2x", "fast_scaled_regnetz_005_dWr_x32_2x")

SETS = {  # name -> (what it is, a function of (resolution, resolution_scale) giving the models)
    "figure2": ("fast-scaling Figure 2 (top, bottom-left): EfficientNet-B0 scaled by dwr, dw, dW'r, w x1-16",
                lambda res, k: scaled_models(["efficientnet_b0"], FIGURE2_STRATEGIES, (1, 2, 4, 8, 16), res)),
    "figure2_models": ("fast-scaling Figure 2 (bottom-right): the three base models of section 6.1 scaled x1-8",
                       lambda res, k: scaled_models(SECTION6_BASES, FIGURE2_STRATEGIES, (1, 2, 4, 8), res)),
    "table4": ("RegNet paper Table 4: EfficientNet B0-B5 and the RegNetY of equal flops", table4_models),
    "table7": ("Revisiting ResNets Table 7: the ResNet-RS Pareto curve and EfficientNet B0-B7", table7_models),
    "pareto_regnet": ("fast-scaling Tables 5-8: EfficientNet B0-B5, RegNetY/Z baselines and scaled RegNetZ (2x)",
                      lambda res, k: named_models(PARETO_REGNET, res, k)),
}


def set_models(name: str, resolution=None, resolution_scale=1.0):
    if name not in SETS:
        raise ValueError(f"unknown model set {name!r}; valid: {', '.join(SETS)}")
    return SETS[name][1](resolution, resolution_scale)


# ---------------------------------------------------------------------------------------------------- timing


def device_name() -> str:
    """The first GPU's name if TensorFlow sees one, else the CPU's model name and core count."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU {details.get('device_name', gpus[0].name)} (x{len(gpus)})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"CPU {cpu} ({os.cpu_count()} cores)"


def environment(precision="float32", xla=False) -> dict:
    """The columns every timing row carries: device, versions, threads, precision, XLA, the 1-minute load average
    when the timing ended (above 0 means other jobs shared the machine), date."""
    import keras
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    return {"device": device_name(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "threads": intra or os.cpu_count(), "precision": precision, "xla": bool(xla),
            "load": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,  # other jobs on the machine
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _build(m: StudyModel, i: int, precision: str):
    import keras

    from regnet_tf.applications import build_model

    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_model(m.spec, weights=None, input_shape=(m.resolution, m.resolution, 3),
                           classifier_activation=None, name=f"study_model_{i}")
    finally:
        keras.config.set_dtype_policy(old)


def _steps(m: StudyModel, i: int, modes, sizes, precision, xla, warmup) -> dict:
    """{(i, mode): a no-argument step} of one model, each run ``warmup`` times (the first call traces)."""
    import keras

    from regnet_tf.benchmark import make_step, random_batch

    model = _build(m, i, precision)
    fns = {}
    for mode in modes:
        fns[i, mode] = make_step(model, keras, mode, "tf_function", *random_batch(model, sizes[mode], m.resolution),
                                 jit_compile=bool(xla))
        for _ in range(warmup):
            fns[i, mode]()
    return fns


def memory_estimate(models, train_batch: int, sequential: bool) -> int:
    """Bytes the timing holds at its peak, roughly: 16 bytes per parameter (weights, momentum, gradient, a copy) for
    every model held at once, plus the largest training step's activations (8 bytes per activation and image)."""
    held = [16 * zoo.complexity(m.spec, m.resolution)["params"] for m in models]
    acts = max(8 * train_batch * zoo.complexity(m.spec, m.resolution)["acts"] for m in models)
    return (max(held) if sequential else sum(held)) + acts


def physical_memory() -> int:
    """This machine's RAM in bytes (0 where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0


def time_models(models, batch=16, train_batch=None, modes=MODES, rounds=3, steps=1, warmup=1, precision="float32",
                xla=False, sequential=None, progress=None):
    """Times every model's training step and inference; returns (rows, rounds_rows).

    Rounds alternate over the models (machine drift reaches every model alike), which holds every model and its
    optimizer in memory at once; ``sequential`` times one model after the other instead (all of its rounds, then
    the next model). None (the default) alternates unless `memory_estimate` of that exceeds half the machine's RAM
    (Revisiting ResNets' Table 7 set needs ~22 GB at half resolution). rows: one dict per model (`StudyModel`
    fields, complexity, ``<mode>_ms`` median ms per step and its min/max, ``<mode>_ms_per_image``, the batch sizes,
    ``sequential`` and `environment`). rounds_rows: one dict per (model, mode, round).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    modes = tuple(dict.fromkeys(modes))
    if not modes or set(modes) - set(MODES) or rounds < 1 or steps < 1 or warmup < 0 or batch < 1:
        raise ValueError(f"need modes in {MODES}, rounds >= 1, steps >= 1, warmup >= 0, batch >= 1; got "
                         f"modes={modes}, rounds={rounds}, steps={steps}, warmup={warmup}, batch={batch}")
    if not models:
        raise ValueError("no models to time: give --models, --base, --set or --space")
    train_batch = train_batch or batch
    sizes = {"train": train_batch, "infer": batch}
    say = progress or (lambda line: None)
    if sequential is None:
        need, have = memory_estimate(models, train_batch, False), physical_memory()
        sequential = bool(have) and need > have / 2
        if sequential:
            say(f"timing one model after the other: alternating rounds would hold ~{need / 2**30:.0f} GiB "
                f"(this machine: {have / 2**30:.0f} GiB); --nosequential forces them")
    times = {}
    groups = [[i] for i in range(len(models))] if sequential else [list(range(len(models)))]
    for group in groups:
        fns = {}
        for i in group:
            say(f"building {models[i].name} at {models[i].resolution} px ({i + 1}/{len(models)})")
            fns.update(_steps(models[i], i, modes, sizes, precision, xla, warmup))
        for r in range(rounds):
            say(f"round {r + 1}/{rounds}: " + (f"{len(group)} models" if len(group) > 1 else models[group[0]].name))
            for key, fn in fns.items():
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                times.setdefault(key, []).append(1000 * (time.perf_counter() - start) / steps)
        del fns
        gc.collect()
    env = environment(precision, xla)
    rows, rounds_rows = [], []
    for i, m in enumerate(models):
        cx = zoo.complexity(m.spec, m.resolution)
        row = {"name": m.name, "family": m.family, "base": m.base, "strategy": m.strategy, "factor": m.factor,
               "resolution": m.resolution, **cx, "top1": m.top1, "top1_source": m.top1_source}
        for mode in MODES:
            ms = times.get((i, mode))
            row[f"{mode}_batch"] = sizes[mode] if ms else None
            row[f"{mode}_ms"] = statistics.median(ms) if ms else None
            row[f"{mode}_ms_min"], row[f"{mode}_ms_max"] = (min(ms), max(ms)) if ms else (None, None)
            row[f"{mode}_ms_per_image"] = row[f"{mode}_ms"] / sizes[mode] if ms else None
            for r, t in enumerate(ms or ()):
                rounds_rows.append({"name": m.name, "mode": mode, "round": r + 1, "batch": sizes[mode], "steps": steps,
                                    "ms_per_step": t, **env})
        row.update(rounds=rounds, steps=steps, warmup=warmup, sequential=bool(sequential), **env)
        rows.append(row)
    return rows, rounds_rows


# ---------------------------------------------------------------------------------------------------- CSV

COLUMNS = ("name", "family", "base", "strategy", "factor", "resolution", "flops", "params", "acts", "train_batch",
           "train_ms", "train_ms_min", "train_ms_max", "train_ms_per_image", "infer_batch", "infer_ms", "infer_ms_min",
           "infer_ms_max", "infer_ms_per_image", "top1", "top1_source", "rounds", "steps", "warmup", "sequential",
           "device", "tensorflow", "keras", "threads", "precision", "xla", "load", "date")
_INTS = {"resolution", "flops", "params", "acts", "train_batch", "infer_batch", "rounds", "steps", "warmup", "threads"}
_BOOLS = {"xla", "sequential"}
_FLOATS = {"factor", "top1", "train_ms", "train_ms_min", "train_ms_max", "train_ms_per_image", "infer_ms",
           "infer_ms_min", "infer_ms_max", "infer_ms_per_image", "load"}


def write_csv(rows, path, columns=None) -> str:
    """Rows as CSV (atomically): model rows with `COLUMNS`, other rows (rounds, correlations) with their own keys."""
    columns = list(columns or (COLUMNS if rows and "train_ms" in rows[0] else rows[0].keys()))
    return files.write_csv(rows, path, columns)


def read_csv(path):
    """The model rows of a speed-study CSV (this machine's or another's), typed as `time_models` returns them."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no speed-study CSV at {path}: give the models.csv that launch/speed_study.py "
                                "wrote")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = {"name", "flops", "params", "acts"} - set(rows[0] if rows else ())
    if not rows or missing:
        raise ValueError(f"{path} is not a speed-study CSV (models.csv): it lacks the columns {sorted(missing)}")
    out = []
    for r in rows:
        typed = {}
        for k, v in r.items():
            if v == "" or v is None:
                typed[k] = None if k in _INTS or k in _FLOATS or k in _BOOLS else ""
            elif k in _INTS:
                typed[k] = int(float(v))
            elif k in _FLOATS:
                typed[k] = float(v)
            elif k in _BOOLS:
                typed[k] = v == "True"
            else:
                typed[k] = v
        out.append(typed)
    return out
