"""Training and inference throughput (images/s, ms/step, GFLOP/s) of registered models on random data.

    from regnet_tf import benchmark
    rows = benchmark.run(["regnety_016", "resnet50"], resolution=224, batch=16, compare=["tf_keras"])
    print(benchmark.format_table(rows))

GFLOP/s counts 2 flops per multiply-add of `regnet_tf.complexity` (the pycls count) per image, times 3 for a
training step (forward + backward ~ 3x forward). The special name "resnet50" is `keras.applications.ResNet50`
with 4,089,184,256 multiply-adds at 224x224, scaled by (resolution / 224)^2 for other sizes (approximate there:
the exact count depends on how the strided convolutions round the feature map sizes).

Comparisons (`compare`): "tf_keras" builds the same architecture from `tf_keras.applications` (Keras 2) and
"keras" from `keras.applications` (Keras 3), in the same process, with the same flop count. A comparison that is
not installed or has no such model is skipped with a note.

Harnesses (`HARNESSES`): every implementation is timed on two paths, because which one is faster differs between
Keras versions and models, and a ratio between two libraries should not measure one harness against another:

- "on_batch": the compiled Keras path, `model.compile(SGD, jit_compile=False)` + `train_on_batch` /
  `predict_on_batch` (numpy in, numpy out);
- "tf_function": a plain `tf.function` step, `tf.GradientTape` + the same SGD's `apply_gradients` /
  `model(x, training=False)`, on tensors made once; the step's loss (logits) is fetched as numpy.

Time is `time.perf_counter` around `steps` steps whose results are numpy values (so the steps have finished). The
measurements run in alternating rounds in one process - round 1 of every (implementation, harness), then round 2,
... - so machine drift reaches all sides alike; a row's ms/step is the median over rounds, with the fastest and
slowest round beside it. Per (model, mode, implementation) the faster harness is the implementation's fastest
path (`row["fastest"]`), and the "vs <implementation>" ratios compare a row's images/s with the other
implementation's fastest path.

Exported formats side by side (`--formats`): `regnet_tf.benchmark_formats`.
"""

from __future__ import annotations

import gc
import os
import statistics
import time

import numpy as np

from regnet_tf.zoo import complexity, get_entry

# TensorFlow and Keras are imported inside the functions that time or build models: the constants above the first
# function (the CLI's flag choices) come without loading TensorFlow.

RESNET50 = "resnet50"
RESNET50_MACS_224 = 4_089_184_256
TRAIN_FACTOR = 3  # forward + backward ~ 3x forward
IMPLEMENTATIONS = ("regnet_tf", "keras", "tf_keras")
COMPARISONS = ("tf_keras", "keras")
MODES = ("train", "infer")
HARNESSES = ("on_batch", "tf_function")
HARNESS_LABELS = {("on_batch", "train"): "train_on_batch", ("on_batch", "infer"): "predict_on_batch",
                  ("tf_function", "train"): "tf.function", ("tf_function", "infer"): "tf.function"}


def environment() -> str:
    import keras
    import tensorflow as tf

    return (f"TensorFlow {tf.__version__}, Keras {keras.__version__} (backend {keras.backend.backend()}), "
            f"{os.cpu_count()} CPU cores, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}")


def check_models(models) -> None:
    """Raises the registry's ValueError (listing the valid names) for an unknown model name."""
    for name in models:
        if name.lower() != RESNET50:
            get_entry(name)


def default_resolution(name: str) -> int:
    return 224 if name.lower() == RESNET50 else get_entry(name).resolution


def model_macs(name: str, resolution: int) -> int:
    """Multiply-adds per image (exact for registered models, scaled from 224 for resnet50)."""
    if name.lower() == RESNET50:
        return round(RESNET50_MACS_224 * (resolution / 224) ** 2)
    return complexity(name, resolution)["flops"]


def _check(mode: str, harness: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if harness not in HARNESSES:
        raise ValueError(f"harness must be one of {HARNESSES}; got {harness!r}")


def make_step(model, lib, mode: str, harness: str, images: np.ndarray, labels: np.ndarray, jit_compile=None):
    """A no-argument function running one step of `model` on the fixed batch and returning a numpy value.

    Training uses SGD(0.1, momentum=0.9) and sparse categorical cross-entropy from ``lib`` (the model's Keras
    module, `keras` or `tf_keras`); "on_batch" compiles the model (``jit_compile``), "tf_function" leaves it
    uncompiled and has its own optimizer, in a ``tf.function(jit_compile=...)``; a mixed_float16 model (Keras 3)
    trains with loss scaling, as it would for real.
    """
    import tensorflow as tf

    _check(mode, harness)
    if harness == "on_batch":
        if mode == "infer":
            return lambda: model.predict_on_batch(images)
        model.compile(optimizer=lib.optimizers.SGD(0.1, momentum=0.9),
                      loss=lib.losses.SparseCategoricalCrossentropy(), jit_compile=bool(jit_compile))
        return lambda: model.train_on_batch(images, labels)
    x, y = tf.constant(images), tf.constant(labels)
    if mode == "infer":

        @tf.function(jit_compile=jit_compile)
        def infer(x):
            return model(x, training=False)

        return lambda: infer(x).numpy()
    optimizer, loss_fn = lib.optimizers.SGD(0.1, momentum=0.9), lib.losses.SparseCategoricalCrossentropy()
    scaled = getattr(getattr(model, "dtype_policy", None), "name", "") == "mixed_float16"
    if scaled:
        optimizer = lib.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)  # its variables exist before the step is traced

    @tf.function(jit_compile=jit_compile)
    def train(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            scaled_loss = optimizer.scale_loss(loss) if scaled else loss
        grads = tape.gradient(scaled_loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda: train(x, y).numpy()


def time_steps(step, steps: int) -> float:
    """Seconds per step over `steps` calls of `step`."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def random_batch(model, batch: int, resolution: int):
    """Fixed random images in [0, 1) and labels for `model`'s classes (seed 0)."""
    rng = np.random.default_rng(0)
    images = rng.random((batch, resolution, resolution, 3), dtype=np.float32)
    labels = rng.integers(0, model.output_shape[-1], size=(batch,)).astype(np.int32)
    return images, labels


def measure(model_fn, batch: int, resolution: int, mode: str, steps: int = 5, warmup: int = 2, lib=None,
            harness: str = "on_batch") -> dict:
    """Times `steps` train (or inference) steps of one harness after `warmup` untimed ones (one round); ``lib``
    is the model's Keras module (default `keras`)."""
    import keras

    _check(mode, harness)
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0; got steps={steps}, warmup={warmup}")
    model = model_fn()
    step = make_step(model, lib or keras, mode, harness, *random_batch(model, batch, resolution))
    for _ in range(warmup):
        step()
    seconds = time_steps(step, steps)
    return {"images_per_s": batch / seconds, "ms_per_step": 1000 * seconds, "steps": steps, "warmup": warmup}


def _model_fn(impl: str, name: str, resolution: int):
    """(model_fn, lib) for one implementation of a model, or a note (str) saying why it is unavailable."""
    import keras

    shape = (resolution, resolution, 3)
    is_resnet = name.lower() == RESNET50
    if impl == "regnet_tf":
        from regnet_tf.applications import build_model  # imports TensorFlow: only when a model is timed

        return (lambda: build_model(name, weights=None, input_shape=shape)), keras
    if impl == "keras":
        if is_resnet:
            return (lambda: keras.applications.ResNet50(weights=None, input_shape=shape)), keras
        factory = get_entry(name).factory
        if not hasattr(keras.applications, factory):
            return f"note: keras.applications (Keras {keras.__version__}) has no {factory}; skipping keras {name}"
        return (lambda: getattr(keras.applications, factory)(weights=None, input_shape=shape)), keras
    try:
        import tf_keras
    except ImportError:
        return f"note: tf_keras is not installed (pip install tf-keras); skipping tf_keras {name}"
    factory = "ResNet50" if is_resnet else get_entry(name).factory
    if not hasattr(tf_keras.applications, factory):
        return (f"note: tf_keras.applications (tf_keras {tf_keras.__version__}) has no {factory}; "
                f"skipping tf_keras {name}")
    # Keywords only: tf_keras RegNet factories take model_name first (include_preprocessing=True by default).
    return (lambda: getattr(tf_keras.applications, factory)(weights=None, input_shape=shape)), tf_keras


def run(models, resolution=None, batch=16, compare=(), steps=2, warmup=2, rounds=3, harnesses=HARNESSES,
        compare_steps=None, compare_warmup=None, modes=MODES, log=print, progress=None) -> list:
    """One row dict per (model, mode, implementation, harness): ours ("regnet_tf"; "keras" for resnet50) plus
    `compare`, each timed on every harness in ``harnesses``.

    Per model and mode, every (implementation, harness) gets its warmup, then `rounds` alternating rounds of
    `steps` timed steps. ``resolution`` None uses each model's registered resolution. Comparison rows use
    ``compare_steps`` / ``compare_warmup`` (default min(steps, 1) / min(warmup, 1): tf_keras RegNet training is very
    slow on CPU). Unavailable comparisons are skipped with a note passed to ``log``; ``progress`` (if given) gets a
    line per warmup and round before it starts. Row keys: ms_per_step (median over rounds), ms_min / ms_max,
    images_per_s and gflops_per_s (from the median), fastest (the implementation's faster harness), and
    vs_<impl> for each of `IMPLEMENTATIONS`: images/s over that implementation's fastest images/s (None if not
    timed).
    """
    check_models(models)
    for impl in compare:
        if impl not in COMPARISONS:
            raise ValueError(f"compare must be one of {COMPARISONS}; got {impl!r}")
    harnesses = tuple(dict.fromkeys(harnesses))
    for h in harnesses:
        _check(MODES[0], h)
    if not harnesses or rounds < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need a harness, rounds >= 1, steps >= 1, warmup >= 0; got harnesses={harnesses}, "
                         f"rounds={rounds}, steps={steps}, warmup={warmup}")
    compare_steps = min(steps, 1) if compare_steps is None else compare_steps
    compare_warmup = min(warmup, 1) if compare_warmup is None else compare_warmup
    rows = []
    for name in models:
        res = resolution or default_resolution(name)
        macs = model_macs(name, res)
        own = "keras" if name.lower() == RESNET50 else "regnet_tf"
        if own in compare:
            log(f"note: {name} already is keras.applications.ResNet50; no separate keras comparison row")
        built = {}  # impl -> (model, lib)
        for impl in [own] + [c for c in dict.fromkeys(compare) if c != own]:
            got = _model_fn(impl, name, res)
            if isinstance(got, str):
                log(got)
            else:
                built[impl] = (got[0](), got[1])
        for mode in modes:
            rows += _time_mode(name, mode, built, own, harnesses, batch, res, macs, rounds, (steps, warmup),
                               (compare_steps, compare_warmup), progress)
        del built
        gc.collect()
    order = {n: i for i, n in enumerate(models)}
    rows.sort(key=lambda r: (order[r["model"]], MODES.index(r["mode"]), IMPLEMENTATIONS.index(r["implementation"]),
                             HARNESSES.index(r["harness"])))
    _add_ratios(rows)
    return rows


def _time_mode(name, mode, built, own, harnesses, batch, res, macs, rounds, own_counts, compare_counts, progress):
    """Rows of one (model, mode): warmups, then `rounds` alternating rounds over (implementation, harness)."""
    steps = {}
    for impl, (model, lib) in built.items():
        images, labels = random_batch(model, batch, res)
        for h in harnesses:
            steps[impl, h] = make_step(model, lib, mode, h, images, labels)
    counts = {impl: own_counts if impl == own else compare_counts for impl in built}
    for (impl, h), step in steps.items():
        w = counts[impl][1]
        if progress:
            progress(f"warmup {impl} {name} {mode} {h}: batch {batch}, {res}x{res}, {w} steps")
        for _ in range(w):
            step()
    ms = {key: [] for key in steps}
    for r in range(rounds):
        for (impl, h), step in steps.items():
            if progress:
                progress(f"timing {impl} {name} {mode} {h}: round {r + 1}/{rounds}, {counts[impl][0]} steps")
            ms[impl, h].append(1000 * time_steps(step, counts[impl][0]))
    flops = 2 * macs * (TRAIN_FACTOR if mode == "train" else 1)
    rows = []
    for (impl, h), times in ms.items():
        median = statistics.median(times)
        rows.append({"implementation": impl, "model": name, "mode": mode, "harness": h, "batch": batch,
                     "resolution": res, "macs": macs, "steps": counts[impl][0], "warmup": counts[impl][1],
                     "rounds": rounds, "ms_per_step": median, "ms_min": min(times), "ms_max": max(times),
                     "images_per_s": 1000 * batch / median, "gflops_per_s": 1000 * batch / median * flops / 1e9})
    return rows


def _add_ratios(rows) -> None:
    """Marks each implementation's fastest harness and adds vs_<impl> (ratio to that impl's fastest path)."""
    best = {}
    for r in rows:
        key = (r["model"], r["mode"], r["implementation"])
        if key not in best or r["images_per_s"] > best[key]["images_per_s"]:
            best[key] = r
    for r in rows:
        r["fastest"] = best[r["model"], r["mode"], r["implementation"]] is r
        for impl in IMPLEMENTATIONS:
            ref = best.get((r["model"], r["mode"], impl))
            r[f"vs_{impl}"] = r["images_per_s"] / ref["images_per_s"] if ref else None


def format_table(rows, all_harnesses: bool = False) -> str:
    """Plain-text table with aligned columns: each implementation's fastest path (every harness with
    ``all_harnesses``, the fastest marked "*"). A "vs <impl>" ratio column for each comparison implementation
    ("tf_keras", "keras") that a row of another implementation has a ratio to."""
    shown = [r for r in rows if all_harnesses or r.get("fastest", True)]
    cols = [("implementation", "implementation", "{}"), ("model", "model", "{}"), ("mode", "mode", "{}"),
            ("harness", "harness", "{}"), ("batch", "batch", "{}"), ("resolution", "resolution", "{}"),
            ("images_per_s", "images/s", "{:.2f}"), ("ms_per_step", "ms/step", "{:.1f}"),
            ("spread", "min-max ms", "{}"), ("gflops_per_s", "GFLOP/s", "{:.1f}")]
    for impl in COMPARISONS:
        if any(r.get(f"vs_{impl}") is not None for r in shown if r["implementation"] != impl):
            cols.append((f"vs_{impl}", f"vs {impl}", "{:.2f}x"))

    def cell(r, k, f):
        if k == "harness":
            label = HARNESS_LABELS.get((r.get("harness"), r.get("mode")), r.get("harness") or "-")
            return label + ("*" if all_harnesses and r.get("fastest") else "")
        if k == "spread":
            return "-" if r.get("ms_min") is None else f"{r['ms_min']:.0f}-{r['ms_max']:.0f}"
        return "-" if r.get(k) is None else f.format(r[k])

    cells = [[h for _, h, _ in cols]] + [[cell(r, k, f) for k, _, f in cols] for r in shown]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    text_cols = {"implementation", "model", "mode", "harness"}

    def fmt(line):
        return "  ".join(c.ljust(w) if k in text_cols else c.rjust(w)
                         for c, w, (k, _, _) in zip(line, widths, cols)).rstrip()

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(line) for line in cells[1:]])
