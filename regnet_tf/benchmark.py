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
not installed or has no such model is skipped with a note. Time is measured with `time.perf_counter` around
`train_on_batch` / `predict_on_batch`, which both return numpy values (so the step has finished).
"""

from __future__ import annotations

import gc
import os
import time

import keras
import numpy as np

from regnet_tf import complexity, get_entry

RESNET50 = "resnet50"
RESNET50_MACS_224 = 4_089_184_256
TRAIN_FACTOR = 3  # forward + backward ~ 3x forward
IMPLEMENTATIONS = ("regnet_tf", "keras", "tf_keras")
MODES = ("train", "infer")


def environment() -> str:
    import tensorflow as tf

    return (f"TensorFlow {tf.__version__}, Keras {keras.__version__} (backend {keras.backend.backend()}), "
            f"{os.cpu_count()} CPU cores")


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


def measure(model_fn, batch: int, resolution: int, mode: str, steps: int = 5, warmup: int = 2, lib=keras) -> dict:
    """Times `steps` train (or inference) steps after `warmup` untimed ones on fixed random data.

    ``model_fn()`` returns the model; ``lib`` is its Keras module (`keras` or `tf_keras`), used to compile it
    for training with SGD(0.1, momentum=0.9) and sparse categorical cross-entropy.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0; got steps={steps}, warmup={warmup}")
    model = model_fn()
    rng = np.random.default_rng(0)
    images = rng.random((batch, resolution, resolution, 3), dtype=np.float32)
    labels = rng.integers(0, model.output_shape[-1], size=(batch,)).astype(np.int32)
    if mode == "train":
        model.compile(optimizer=lib.optimizers.SGD(0.1, momentum=0.9),
                      loss=lib.losses.SparseCategoricalCrossentropy(), jit_compile=False)

        def step():
            model.train_on_batch(images, labels)
    else:
        def step():
            model.predict_on_batch(images)
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"images_per_s": batch * steps / seconds, "ms_per_step": 1000 * seconds / steps, "steps": steps,
            "warmup": warmup}


def _model_fn(impl: str, name: str, resolution: int):
    """(model_fn, lib) for one implementation of a model, or a note (str) saying why it is unavailable."""
    shape = (resolution, resolution, 3)
    is_resnet = name.lower() == RESNET50
    if impl == "regnet_tf":
        from regnet_tf.applications import build_model

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
        return f"note: tf_keras.applications (tf_keras {tf_keras.__version__}) has no {factory}; skipping tf_keras {name}"
    # Keywords only: tf_keras RegNet factories take model_name first (include_preprocessing=True by default).
    return (lambda: getattr(tf_keras.applications, factory)(weights=None, input_shape=shape)), tf_keras


def run(models, resolution=None, batch=16, compare=(), steps=5, warmup=2, compare_steps=None,
        compare_warmup=None, modes=MODES, log=print, progress=None) -> list:
    """One row dict per (model, mode, implementation): ours ("regnet_tf"; "keras" for resnet50) plus `compare`.

    ``resolution`` None uses each model's registered resolution. Comparison rows use ``compare_steps`` /
    ``compare_warmup`` (default min(steps, 2) / min(warmup, 1): tf_keras RegNet training is very slow on CPU).
    Unavailable comparisons are skipped with a note passed to ``log``; ``progress`` (if given) gets a line per
    measurement before it starts.
    """
    check_models(models)
    for impl in compare:
        if impl not in ("keras", "tf_keras"):
            raise ValueError(f"compare must be 'keras' or 'tf_keras'; got {impl!r}")
    compare_steps = min(steps, 2) if compare_steps is None else compare_steps
    compare_warmup = min(warmup, 1) if compare_warmup is None else compare_warmup
    rows = []
    for name in models:
        res = resolution or default_resolution(name)
        macs = model_macs(name, res)
        own = "keras" if name.lower() == RESNET50 else "regnet_tf"
        if own in compare:
            log(f"note: {name} already is keras.applications.ResNet50; no separate keras comparison row")
        for impl in [own] + [c for c in dict.fromkeys(compare) if c != own]:
            got = _model_fn(impl, name, res)
            if isinstance(got, str):
                log(got)
                continue
            model = got[0]()
            n, w = (steps, warmup) if impl == own else (compare_steps, compare_warmup)
            for mode in modes:
                if progress:
                    progress(f"timing {impl} {name} {mode}: batch {batch}, {res}x{res}, {w} warmup + {n} steps")
                m = measure(lambda: model, batch, res, mode, n, w, lib=got[1])
                flops = 2 * macs * (TRAIN_FACTOR if mode == "train" else 1)
                rows.append({"implementation": impl, "model": name, "mode": mode, "batch": batch,
                             "resolution": res, "macs": macs, "gflops_per_s": m["images_per_s"] * flops / 1e9, **m})
            del model
            gc.collect()
    order = {n: i for i, n in enumerate(models)}
    rows.sort(key=lambda r: (order[r["model"]], MODES.index(r["mode"]), IMPLEMENTATIONS.index(r["implementation"])))
    base = {(r["model"], r["mode"]): r["images_per_s"] for r in rows if r["implementation"] == "tf_keras"}
    for r in rows:
        ref = base.get((r["model"], r["mode"]))
        r["vs_tf_keras"] = r["images_per_s"] / ref if ref else None
    return rows


def format_table(rows) -> str:
    """Plain-text table with aligned columns; the "vs tf_keras" column only when some row has a ratio."""
    cols = [("implementation", "implementation", "{}"), ("model", "model", "{}"), ("mode", "mode", "{}"),
            ("batch", "batch", "{}"), ("resolution", "resolution", "{}"), ("images_per_s", "images/s", "{:.2f}"),
            ("ms_per_step", "ms/step", "{:.1f}"), ("gflops_per_s", "GFLOP/s", "{:.1f}")]
    if any(r.get("vs_tf_keras") is not None for r in rows):
        cols.append(("vs_tf_keras", "vs tf_keras", "{:.2f}x"))
    cells = [[h for _, h, _ in cols]]
    cells += [["-" if r.get(k) is None else f.format(r[k]) for k, _, f in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    text_cols = {"implementation", "model", "mode"}

    def fmt(line):
        return "  ".join(c.ljust(w) if k in text_cols else c.rjust(w)
                         for c, w, (k, _, _) in zip(line, widths, cols)).rstrip()

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(line) for line in cells[1:]])
