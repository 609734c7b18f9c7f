"""Inference of a model in several runtimes side by side: exported formats, the Keras model, timm (`launch/benchmark.py
--formats`; docs/SPEED.md). The model-throughput benchmark it shares its timing with is `regnet_tf.benchmark`.

Length: one study in one place (export every format, load the runners, the timm rows, alternate the rounds, the
table and its ratios), as docs/SPEED.md reads it.

    from regnet_tf import benchmark_formats
    rows = benchmark_formats.run_formats(["regnety_016"], ["keras_folded", "saved_model", "tflite", "onnx"], batch=32)
    print(benchmark_formats.format_formats_table(rows))

`export_model` builds the model (random init with a trained network's kind of BatchNormalization statistics,
`trained_statistics`; float32, 1000 classes, logits) and writes each format (`FORMATS`:
the `regnet_tf.deploy` formats, "saved_model_unfolded" = the SavedModel export with fold=False, "openvino_bf16" =
the OpenVINO file at bf16 precision, and the Keras model in a tf.function: "keras", "keras_folded" (BatchNormalization
folded by `regnet_tf.inference.fold_batch_norm`), "keras_frozen" (that with its weights as graph constants,
`regnet_tf.inference.freeze`), "keras_xla" (keras_folded with jit_compile=True)); `time_exports` loads
them with `regnet_tf.runtimes.load` (XNNPACK, ORT_ENABLE_ALL, OpenVINO's CPU plugin) at a thread count and times
them in alternating rounds: per round and format `latency_steps` batch-1 calls, each timed (median and 90th
percentile over all rounds), and `steps` batch-B calls (images/s from the median round); warm-up calls are not
timed. With `micro_batches` each runner's batch-B throughput is also timed as consecutive calls of those sizes, and
its row reports the fastest way (on a CPU a small batch can keep its activations in cache). Every runner gets the
same random uint8 pixels [B, S, S, 3] (0-255; normalization is inside every format) converted once to its input
dtype, and returns numpy logits. `compare=["timm"]` adds timm's model of the same name in PyTorch (NCHW,
channels_last, and channels_last under torch.compile; with a bf16 row of ours also that under autocast to bfloat16).
The ratio columns compare each row with a baseline format of the same model and thread count (`add_format_ratios`;
against timm, a bf16 row with timm's bf16 row), and the table ends with the fastest row of each precision that has
a baseline of its own (`fastest_rows`). The GFLOP/s column is the batch-B throughput in flops (2 per
multiply-add of `regnet_tf.zoo.complexity`, the papers' count), and "% peak" divides it by `dense_peak_gflops`, a
large float32 matmul timed in the same process at the same thread count: how close each runtime gets to what this
CPU computes at all, which bounds every ratio between runtimes. TensorFlow's thread count is fixed at its first op
in a process: the CLI times each thread count in a child process of its own.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import statistics
import time

import numpy as np

from regnet_tf import deploy  # numpy only at import: its FORMATS are flag choices
from regnet_tf.benchmark import default_resolution, time_steps
from regnet_tf.zoo import complexity

KERAS_FORMATS = ("keras", "keras_folded", "keras_frozen", "keras_xla")
SAVED_MODELS = ("saved_model", "saved_model_unfolded")
OPENVINO_BF16 = "openvino_bf16"
FORMATS = KERAS_FORMATS + deploy.FORMATS + ("saved_model_unfolded", OPENVINO_BF16)
TIMM = "timm"
TIMM_COMPILED = "timm_compiled"
MAX_COMPILED_SIZES = 64  # batch sizes timm_compiled compiles a graph for (one per size, micro-batches included)
TIMM_ROWS = ("timm_nchw", "timm_channels_last", TIMM_COMPILED)  # timm eager in two memory formats, and compiled
TIMM_COMPILED_BF16 = "timm_compiled_bf16"  # timm_compiled under autocast to bfloat16: timed beside our bf16 rows
# What each row computes in, where not float32. A ratio against timm compares rows of one precision (bf16 with
# timm_compiled_bf16); int8 and fp16 rows have no timm row of their own and are not among the fastest rows.
PRECISIONS = {OPENVINO_BF16: "bf16", TIMM_COMPILED_BF16: "bf16", "tflite_int8": "int8", "tflite_fp16": "fp16"}
TIMM_NAMES = {"resnet_rs_50": "resnetrs50"}  # timm's name where it is not ours
GROUPED_CONV = ("native", "split", "both")
SPLIT = "+split"  # label suffix of a file exported with grouped_conv="split"
CALIBRATION_IMAGES = 100
PEAK_SIZE = 2048  # the matmul of dense_peak_gflops: 17 GFLOP, ~0.15 s per call at 1 thread here
# PyTorch's CPU allocator maps each large activation afresh and page-faults it on every call. With huge pages
# (PyTorch reads the variable when it starts) timm ran EfficientNet-B0 at batch 16 on 1 thread 1.5x faster here (33 ->
# 50 images/s, 9x fewer page faults). Our side has the same fix on: the launchers' TF_CPU_ALLOCATOR_USE_BFC.
TORCH_HUGE_PAGES = {"THP_MEM_ALLOC_ENABLE": "1"}
MANIFEST = "manifest.json"
KERAS_FILE = "model.keras"
FORMAT_NOTES = {
    "keras": "the Keras model (pixels -> normalization -> model) in a tf.function",
    "keras_folded": "the same, BatchNormalization folded (regnet_tf.inference.fold_batch_norm)",
    "keras_frozen": "keras_folded with its weights as graph constants (regnet_tf.inference.freeze)",
    "keras_xla": "keras_folded in a tf.function(jit_compile=True) (XLA)",
    "saved_model": "serving_image_tensor signature (uint8 pixels; in-graph center crop + resize, softmax, top-5), "
                   "BatchNormalization folded",
    "saved_model_unfolded": "the same SavedModel export with fold=False",
    "tflite": "ai-edge-litert interpreter (XNNPACK)",
    "tflite_fp16": "float16 weights, XNNPACK",
    "tflite_int8": "full-integer int8, calibrated on the demo data's images (eval view); less exact",
    "onnx": "onnxruntime CPU, ORT_ENABLE_ALL graph optimizations",
    "openvino": "OpenVINO CPU plugin, float32 precision hint (matches Keras to 1e-4), compiled per batch size",
    OPENVINO_BF16: "OpenVINO CPU plugin, bf16 precision hint (its default on bf16 CPUs): LESS EXACT (~1e-2)",
    "timm_nchw": "timm in PyTorch, eval(), torch.inference_mode(), NCHW (launch/benchmark.py: THP_MEM_ALLOC_ENABLE=1)",
    "timm_channels_last": "the same in channels_last memory format",
    TIMM_COMPILED: "timm_channels_last under torch.compile (Inductor, freezing: weights as constants, BatchNorm "
                   "folded; one compile per batch size, at warm-up): PyTorch's fastest CPU inference path",
    TIMM_COMPILED_BF16: "timm_compiled under torch.autocast to bfloat16 (timed when a bf16 row is): PyTorch's fastest "
                        "bf16 path; LESS EXACT",
}


def check_formats(formats) -> tuple:
    """The formats, deduplicated; a one-line ValueError listing the valid ones for an unknown name."""
    formats = tuple(dict.fromkeys(f.strip() for f in formats if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"unknown format {', '.join(map(repr, bad)) or '(none given)'}; valid formats: "
                         f"{', '.join(FORMATS)}")
    return formats


def check_format_options(formats, compare=(), threads=(1,), baseline=None) -> tuple:
    """(formats, thread counts, baseline) checked before anything is built: one-line ValueErrors for an unknown
    format, a comparison other than timm, a thread count < 1 and a baseline that is not timed."""
    formats = check_formats(formats)
    if set(compare) - {TIMM}:
        raise ValueError(f"with formats, compare takes only {TIMM!r}; got {', '.join(map(repr, compare))}")
    try:
        threads = [int(t) for t in threads]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        raise ValueError("threads must be positive integers")
    baseline = baseline or default_baseline(formats, compare)
    timed = formats + tuple(f + SPLIT for f in formats) + ((TIMM,) if TIMM in compare else ())
    if baseline not in timed:
        raise ValueError(f"baseline {baseline!r} is not among the timed formats {', '.join(formats)}")
    return formats, list(dict.fromkeys(threads)), baseline


def check_micro_batches(sizes) -> tuple:
    """The micro-batch sizes (`time_runners`) as sorted distinct positive ints; a one-line ValueError otherwise."""
    try:
        sizes = sorted({int(m) for m in sizes if str(m).strip()})
    except ValueError:
        sizes = [0]
    if sizes and sizes[0] < 1:
        raise ValueError("micro-batch sizes must be positive integers, e.g. --micro_batch 1,2,4,8")
    return tuple(sizes)


def versions() -> str:
    """Installed versions of the runtimes the format rows use (missing ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pip in ("tensorflow", "keras", "ai-edge-litert", "onnxruntime", "tf2onnx", "openvino", "torch", "timm"):
        try:
            out.append(f"{pip} {version(pip)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def set_threads(threads, log=print) -> None:
    """TensorFlow's intra- and inter-op threads = `threads` (None: leave them), before TensorFlow's first op; once
    its thread pools exist they cannot change: a note says so (the CLI times each thread count in its own
    process)."""
    import tensorflow as tf

    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        now = tf.config.threading.get_intra_op_parallelism_threads()
        if now != threads:
            log(f"note: TensorFlow's thread pools exist already in this process ({now or 'default'} intra-op "
                f"threads); its rows run with those, not {threads}")


# --- export

def export_model(name, formats, out_dir, resolution=None, grouped_conv="native", fold=True,
                 calibration_images=CALIBRATION_IMAGES, log=print) -> dict:
    """Builds `name` (registered name or spec; random init with `trained_statistics`, float32, 1000 classes,
    logits) and writes what `formats` need into `out_dir`: the Keras model (`KERAS_FILE`: the keras rows and the
    reference logits), the SavedModels and the `regnet_tf.deploy` files (BatchNormalization folded if `fold`;
    grouped convolutions `grouped_conv` "native", "split" or "both"; int8 calibrated on the demo data). Returns the
    manifest (also written as `out_dir/MANIFEST`): {"model", "resolution", "macs" (multiply-adds per image),
    "entries": {label: entry}}. A format that cannot be exported is left out with a note."""
    from regnet_tf.applications import build_model

    formats = check_formats(formats)
    if grouped_conv not in GROUPED_CONV:
        raise ValueError(f"grouped_conv must be one of {GROUPED_CONV}; got {grouped_conv!r}")
    res = resolution or default_resolution(name)
    model = build_model(name, weights=None, input_shape=(res, res, 3), classifier_activation=None)
    trained_statistics(model)
    os.makedirs(out_dir, exist_ok=True)
    model.save(os.path.join(out_dir, KERAS_FILE))
    entries, calibration = {}, None
    if "tflite_int8" in formats:
        calibration = demo_calibration(res, calibration_images)
    for fmt in formats:
        if fmt in KERAS_FORMATS:
            entries[fmt] = {"kind": "keras", "fold": fmt != "keras", "jit": fmt == "keras_xla",
                            "frozen": fmt == "keras_frozen"}
        elif fmt in SAVED_MODELS:
            entries.update(_export_saved_model(model, fmt, out_dir, res, log))
        else:
            entries.update(_export_files(model, fmt, out_dir, res, _variants(model, grouped_conv, log), fold,
                                         calibration, log))
    manifest = {"model": model.name, "resolution": res, "macs": complexity(name, res)["flops"], "entries": entries}
    with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def trained_statistics(model, seed=0) -> None:
    """Gives each BatchNormalization of `model` statistics of the kind a trained network has (seeded): gamma and
    moving variance ~ U(0.5, 1.5), beta and moving mean ~ N(0, 0.1). A freshly built model has gamma 1, beta 0,
    mean 0 and variance 1, so its folded biases are exactly zero; TensorFlow's graph optimizer then removes them,
    and a convolution without its BiasAdd is not fused with its activation: a graph no trained model has."""
    import keras

    from regnet_tf.inference import all_layers

    rng = np.random.default_rng(seed)
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.normal(0, 0.1, n),
                      "moving_mean": rng.normal(0, 0.1, n), "moving_variance": rng.uniform(0.5, 1.5, n)}
            for attr, value in values.items():
                variable = getattr(layer, attr, None)
                if variable is not None:
                    variable.assign(value.astype(variable.dtype))


def dense_peak_gflops(size=PEAK_SIZE, calls=3) -> float:
    """GFLOP/s of a float32 `size` x `size` matmul in TensorFlow (2 size^3 flops; the fastest of `calls` calls after
    one warm-up) at the process's thread setting: near the most this CPU computes in float32 (a 3x3 convolution
    with 256 channels and numpy's and PyTorch's matmuls measured within 10% of it here), the "% peak" roofline."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.random((size, size), dtype=np.float32)) for _ in range(2))
    matmul = tf.function(lambda: tf.matmul(a, b))
    matmul().numpy()
    return 2 * size ** 3 / min(time_steps(lambda: matmul().numpy(), 1) for _ in range(calls)) / 1e9


def demo_calibration(resolution, n=CALIBRATION_IMAGES):
    """uint8 pixels [n, S, S, 3]: the built-in demo data's training images through the eval view (never noise)."""
    from regnet_tf.data.config import DataConfig

    return deploy.calibration_images(DataConfig(source="demo", image_size=resolution), n)


def _variants(model, grouped_conv, log):
    """The grouped_conv settings to export: "native" and/or "split" ("split" = "native" without grouped convs)."""
    from regnet_tf.inference import all_layers

    wanted = ["native", "split"] if grouped_conv == "both" else [grouped_conv]
    if "split" in wanted and not any(getattr(layer, "groups", 1) > 1 for layer in all_layers(model)):
        log(f"note: {model.name} has no grouped convolutions: grouped_conv='split' is the native export")
        return ["native"]
    return wanted


def _export_saved_model(model, fmt, out_dir, res, log):
    from regnet_tf.train.export import export_saved_model

    path = export_saved_model(model, os.path.join(out_dir, fmt, "1"), image_size=res, fold=fmt == "saved_model")
    log(f"{fmt}: {path}")
    return {fmt: {"kind": "saved_model", "path": path}}


def _export_files(model, fmt, out_dir, res, variants, fold, calibration, log):
    """{label: entry} of one deploy format (openvino_bf16: the openvino file at bf16) per grouped_conv variant."""
    file_fmt = "openvino" if fmt == OPENVINO_BF16 else fmt
    entries = {}
    for variant in variants:
        directory = os.path.join(out_dir, variant)
        path = os.path.join(directory, deploy.FILE_NAMES[file_fmt])
        try:
            if not os.path.exists(path):  # openvino and openvino_bf16 share the file
                deploy.export_file(model, directory, file_fmt, image_size=res, calibration=calibration, fold=fold,
                                   grouped_conv=variant, log=log)
        except deploy.ExportError as e:
            log(f"note: skipping {fmt} ({variant} grouped convolutions) of {model.name}: {e}")
            continue
        label = fmt + (SPLIT if variant == "split" else "")
        entries[label] = {"kind": "file", "path": path, "precision": "bf16" if fmt == OPENVINO_BF16 else "f32"}
    return entries


# --- runners

def load_runners(out_dir, manifest, threads=None, compare=(), log=print) -> dict:
    """{label: (runner(pixels) -> logits, input dtype)} for the manifest's entries (`regnet_tf.runtimes.load` for
    files and SavedModels, a tf.function for the Keras rows) and the `compare` rows ("timm": `TIMM_ROWS`, and
    `TIMM_COMPILED_BF16` when a bf16 row of ours is timed), plus "reference": the Keras model called eagerly (for
    the relative difference)."""
    import keras

    from regnet_tf import runtimes
    from regnet_tf.inference import fold_batch_norm

    res = manifest["resolution"]
    net = keras.saving.load_model(os.path.join(out_dir, KERAS_FILE))
    runners = {"reference": (lambda x: np.asarray(deploy.with_normalization(net, res)(x, training=False)),
                             np.float32)}
    folded = None
    for label, entry in manifest["entries"].items():
        if entry["kind"] == "keras":
            if entry["fold"] and folded is None:
                folded = fold_batch_norm(net)
            runners[label] = _keras_runner(folded if entry["fold"] else net, res, entry["jit"], entry.get("frozen"))
        elif entry.get("precision") == "bf16" and not _openvino_has_bf16():
            log(f"note: this CPU has no bfloat16 units (OpenVINO's OPTIMIZATION_CAPABILITIES): skipping {label}")
        else:
            runner = runtimes.load(entry["path"], threads=threads, precision=entry.get("precision", "f32"))
            runners[label] = (runner, runner.input_dtype)
    if TIMM in compare:
        bf16 = any(precision(label) == "bf16" for label in runners)
        runners.update(timm_runners(manifest["model"], res, threads, log, bf16=bf16))
    return runners


def _keras_runner(net, res, jit, frozen=False):
    import tensorflow as tf

    from regnet_tf.inference import freeze

    model = deploy.with_normalization(net, res)
    fn = freeze(model) if frozen else tf.function(lambda x: model(x, training=False), jit_compile=jit,
                                                  input_signature=[tf.TensorSpec([None, res, res, 3], tf.float32)])
    return (lambda pixels: fn(pixels).numpy()), np.float32


def _openvino_has_bf16():
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def import_timm() -> bool:
    """Imports torch and timm (False if missing). Call it before TensorFlow is imported: with the CUDA wheels of
    torch, timm's import of triton crashes the process (segmentation fault) once TensorFlow is loaded."""
    try:
        import timm  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def timing_environment(compare, environ) -> dict:
    """A copy of `environ` with what the timing process needs for `compare`: for timm, PyTorch's huge pages
    (`TORCH_HUGE_PAGES`) unless the user set those variables."""
    env = dict(environ)
    if TIMM in compare:
        for key, value in TORCH_HUGE_PAGES.items():
            env.setdefault(key, value)
    return env


def timm_runners(name, resolution, threads=None, log=print, bf16=False) -> dict:
    """{label: (runner, float32)} for `TIMM_ROWS`: timm's `name` (one random init for every row, eval(),
    torch.inference_mode()) in NCHW, in channels_last, and channels_last under torch.compile (`_compiled`: its first
    compile runs here, at batch 1 and `resolution`; the row is left out with a note where it cannot compile); with
    `bf16` also `TIMM_COMPILED_BF16`, the compiled row under torch.autocast to bfloat16 (float32 logits out). A
    runner takes the same NHWC 0-255 pixels and normalizes them in PyTorch. {} with a note when torch or timm is
    missing or timm has no such model."""
    if not import_timm():
        log(f"note: --compare timm needs torch and timm (pip install torch timm); skipping timm {name}")
        return {}
    import timm
    import torch

    timm_name = TIMM_NAMES.get(name, name)
    if not timm.is_model(timm_name):
        log(f"note: timm {timm.__version__} has no model {timm_name!r}; skipping timm {name}")
        return {}
    if threads:
        torch.set_num_threads(threads)
    from regnet_tf.data.format import MEAN_RGB, STD_RGB

    scale = torch.tensor([1 / (255 * s) for s in STD_RGB]).view(1, 3, 1, 1)
    offset = torch.tensor([-m / s for m, s in zip(MEAN_RGB, STD_RGB)]).view(1, 3, 1, 1)
    base = timm.create_model(timm_name, pretrained=False, num_classes=1000).eval()
    torch.compiler.reset()  # the previous model's graphs (see _compiled)
    runners = {}
    rows = TIMM_ROWS + ((TIMM_COMPILED_BF16,) if bf16 else ())
    formats = (torch.contiguous_format, torch.channels_last, torch.channels_last, torch.channels_last)
    for label, memory_format in zip(rows, formats):
        model = copy.deepcopy(base).to(memory_format=memory_format)  # the same weights in every row
        forward = lambda x, model=model: model(x * scale + offset)  # noqa: E731
        if label == TIMM_COMPILED_BF16:
            forward = lambda x, model=model: _in_bf16(model, x * scale + offset)  # noqa: E731
        if label in (TIMM_COMPILED, TIMM_COMPILED_BF16):
            forward = _compiled(forward, (1, 3, resolution, resolution), f"timm {timm_name}", log, label)
            if forward is None:
                continue

        def run(pixels, forward=forward, memory_format=memory_format):
            with torch.inference_mode():
                x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
                return forward(x).float().numpy()

        runners[label] = (run, np.float32)
    return runners


def _in_bf16(model, x):
    """`model(x)` under torch.autocast to bfloat16 on the CPU (convolutions and matmuls in bf16), as PyTorch's users
    run mixed precision; traced by torch.compile like any other context manager."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(x)


def _compiled(forward, shape, what, log, label=TIMM_COMPILED):
    """`forward` under torch.compile, as PyTorch runs CPU inference fastest: Inductor with freezing (weights become
    constants, so BatchNorm folds into the convolution and oneDNN keeps its own weight layout) and dynamic=False (a
    graph specialized to each batch size, compiled at that size's first call), after a first call on zeros of
    `shape`. None with a note naming `what` and the row `label` when that call fails (torch.compile needs a C++
    compiler on the CPU).

    TorchDynamo keeps at most `recompile_limit` (8) graphs per Python function and then runs it uncompiled, without
    a word; every model's runner compiles the same function, a graph per batch size. So `timm_runners` first drops
    every graph torch.compile holds in this process (`torch.compiler.reset`: the benchmark times one model's rows
    before it builds the next), and these calls allow `MAX_COMPILED_SIZES` graphs and fail beyond them rather than
    run eager."""
    import torch
    from torch._dynamo import config as dynamo
    from torch._inductor import config as inductor

    compiled = torch.compile(forward, dynamic=False)

    def run(x):
        # read when a batch size compiles, so set here rather than process-wide
        with inductor.patch(freezing=True), dynamo.patch(recompile_limit=MAX_COMPILED_SIZES,
                                                         fail_on_recompile_limit_hit=True):
            return compiled(x)

    try:
        with torch.inference_mode():
            run(torch.zeros(shape).contiguous(memory_format=torch.channels_last))
    except Exception as e:  # torch._dynamo wraps the compiler's own errors: any of them means "cannot compile here"
        reason = (str(e).strip().splitlines() or [""])[0][:200]
        log(f"note: torch.compile failed for {what} ({type(e).__name__}: {reason}); skipping {label}")
        return None
    return run


# --- timing

def time_runners(runners, pixels, rounds=3, steps=2, latency_steps=10, warmup=2, micro_batches=(),
                 progress=None) -> dict:
    """{label: {"latency_ms": [...], "batch_ms": [...], "micro_batch_ms": {m: [...]}, "output": first batch output}}.

    `runners`: {label: (runner, input dtype)}; each gets `pixels` (uint8 [B, S, S, 3]) converted once to its dtype.
    Warm-up, untimed: `warmup` calls (at least 1) at batch B and at batch 1, and one batch-B pass per micro-batch
    size. Then `rounds` alternating rounds over the runners: `latency_steps` batch-1 calls, each timed; `steps`
    batch-B calls timed together; and the same for each size m < B of `micro_batches`, the batch run as consecutive
    calls of m images (`regnet_tf.runtimes.in_micro_batches`), whatever the runner (timm's included)."""
    from regnet_tf.runtimes import in_micro_batches

    sizes = sorted({int(m) for m in micro_batches if int(m) < len(pixels)})
    inputs = {label: np.asarray(pixels, dtype) for label, (_, dtype) in runners.items()}
    out = {}
    for label, (run, _) in runners.items():
        if progress:
            progress(f"warmup {label}: {warmup} calls at batch 1 and at batch {len(pixels)}")
        output = run(inputs[label])  # the first batch-B call (traces or compiles; its logits are compared)
        for _ in range(warmup - 1):
            run(inputs[label])
        for _ in range(max(warmup, 1)):
            run(inputs[label][:1])
        for m in sizes:
            in_micro_batches(run, inputs[label], m)
        out[label] = {"latency_ms": [], "batch_ms": [], "micro_batch_ms": {m: [] for m in sizes}, "output": output}
    for r in range(rounds):
        for label, (run, _) in runners.items():
            if progress:
                progress(f"timing {label}: round {r + 1}/{rounds}")
            one, batch = inputs[label][:1], inputs[label]
            for _ in range(latency_steps):
                start = time.perf_counter()
                run(one)
                out[label]["latency_ms"].append(1000 * (time.perf_counter() - start))
            out[label]["batch_ms"].append(1000 * time_steps(lambda: run(batch), steps))
            for m in sizes:
                out[label]["micro_batch_ms"][m].append(
                    1000 * time_steps(lambda: in_micro_batches(run, batch, m), steps))
    return out


def fastest_way(batch_ms, micro_batch_ms, batch) -> tuple:
    """(size, its round times) of the fastest way to run the batch by median round time: the whole `batch` (its
    `batch_ms`) or consecutive calls of one of the sizes of `micro_batch_ms` ({size: round times}); ties: the
    larger size."""
    ways = {batch: batch_ms, **micro_batch_ms}
    size = min(sorted(ways, reverse=True), key=lambda m: statistics.median(ways[m]))
    return size, ways[size]


def time_exports(out_dirs, threads=None, batch=32, rounds=3, steps=2, latency_steps=10, warmup=2, compare=(),
                 micro_batches=(), log=print, progress=None) -> list:
    """Rows (one per model and format) timing the exports in `out_dirs` (`export_model`'s directories), model by
    model, with TensorFlow and every runtime at `threads` threads (None: their defaults). Row keys: model, format,
    threads, resolution, batch, latency_ms / latency_p90_ms (median and 90th percentile of the batch-1 calls),
    images_per_s (batch / median batch-B round time, by the row's fastest way when `micro_batches` are timed:
    micro_batch is then its size, B for one call, and images_per_s_by_micro_batch the rate of each way),
    ms_min / ms_max (fastest and slowest batch-B round of that way),
    max_rel_diff (vs the Keras model's logits on the same pixels; None for SavedModels, which crop first, and
    timm, other weights), gflops (2 x multiply-adds x images_per_s / 1e9) and peak_gflops (`dense_peak_gflops`,
    timed once here)."""
    if TIMM in compare:
        if any(os.environ.get(k) != v for k, v in TORCH_HUGE_PAGES.items()):
            log("note: timm runs without huge pages (set THP_MEM_ALLOC_ENABLE=1 before torch loads, as "
                "launch/benchmark.py does): PyTorch then page-faults its activations on every call")
        import_timm()  # before TensorFlow (see there)
    set_threads(threads, log)
    peak = dense_peak_gflops()
    rows = []
    for out_dir in out_dirs:
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
        res = manifest["resolution"]
        runners = load_runners(out_dir, manifest, threads, compare, log)
        ref = runners.pop("reference")[0]
        pixels = np.random.default_rng(0).integers(0, 256, (batch, res, res, 3), dtype=np.uint8)
        times = time_runners(runners, pixels, rounds, steps, latency_steps, warmup, micro_batches,
                             progress and (lambda line, m=manifest["model"]: progress(f"{m} {line}")))
        reference = ref(pixels.astype(np.float32))
        for label, t in times.items():
            size, batch_ms = fastest_way(t["batch_ms"], t["micro_batch_ms"], batch)
            median = statistics.median(batch_ms)
            exact = not (label in SAVED_MODELS or label.startswith(TIMM))
            row = {"model": manifest["model"], "format": label, "threads": threads, "resolution": res,
                   "batch": batch, "rounds": rounds, "steps": steps, "latency_steps": latency_steps,
                   "latency_ms": statistics.median(t["latency_ms"]),
                   "latency_p90_ms": float(np.percentile(t["latency_ms"], 90)),
                   "images_per_s": 1000 * batch / median, "ms_min": min(batch_ms), "ms_max": max(batch_ms),
                   "gflops": 2 * manifest["macs"] * batch / median / 1e6, "peak_gflops": peak,
                   "max_rel_diff": deploy.relative_difference(t["output"], reference) if exact else None}
            if t["micro_batch_ms"]:
                row["micro_batch"] = size
                row["images_per_s_by_micro_batch"] = {
                    str(m): 1000 * batch / statistics.median(ms)
                    for m, ms in sorted({batch: t["batch_ms"], **t["micro_batch_ms"]}.items())}
            rows.append(row)
        del runners, times
        gc.collect()
    return rows


def run_formats(models, formats, resolution=None, batch=32, threads=None, rounds=3, steps=2, latency_steps=10,
                warmup=2, grouped_conv="native", fold=True, compare=(), baseline=None,
                calibration_images=CALIBRATION_IMAGES, micro_batches=(), log=print, progress=None) -> list:
    """`export_model` for each model into a temporary directory, then `time_exports` in this process and
    `add_format_ratios` (vs `baseline`; default `default_baseline`). TensorFlow's threads can only be set before
    its first op: the CLI runs each thread count in a process of its own."""
    import tempfile

    formats = check_formats(formats)
    with tempfile.TemporaryDirectory(prefix="regnet-benchmark-") as root:
        dirs = export_models(models, formats, root, resolution, grouped_conv, fold, calibration_images, log)
        rows = time_exports(dirs, threads, batch, rounds, steps, latency_steps, warmup, compare, micro_batches, log,
                            progress)
    add_format_ratios(rows, baseline or default_baseline(formats, compare))
    return rows


def export_models(models, formats, root, resolution=None, grouped_conv="native", fold=True,
                  calibration_images=CALIBRATION_IMAGES, log=print) -> list:
    """`export_model` of each model into `root/<i>-<name>`; returns the directories."""
    dirs = []
    for i, name in enumerate(models):
        dirs.append(os.path.join(root, f"{i}-{name if isinstance(name, str) else 'spec'}"))
        export_model(name, formats, dirs[-1], resolution, grouped_conv, fold, calibration_images, log)
        gc.collect()
    return dirs


# --- table

def default_baseline(formats, compare=()) -> str:
    """"timm" with the timm comparison, else "keras" if timed, else "saved_model" if timed, else the first."""
    if TIMM in compare:
        return TIMM
    return next((f for f in ("keras", "saved_model") if f in formats), formats[0])


def precision(label) -> str:
    """What a row computes in: "f32", or "bf16", "int8", "fp16" (`PRECISIONS`; a +split label as its format)."""
    return PRECISIONS.get(label.removesuffix(SPLIT), "f32")


def _baseline_labels(baseline, label=None):
    """The rows `label` is compared with: `baseline`, or for "timm" timm's rows of the label's precision (bf16:
    `TIMM_COMPILED_BF16`; otherwise `TIMM_ROWS`, float32). With no label: every baseline row."""
    if baseline != TIMM:
        return (baseline,)
    if label is None:
        return TIMM_ROWS + (TIMM_COMPILED_BF16,)
    return (TIMM_COMPILED_BF16,) if precision(label) == "bf16" else TIMM_ROWS


def add_format_ratios(rows, baseline) -> None:
    """Adds "b1_vs" (baseline's batch-1 median latency / the row's: > 1 is faster) and "bn_vs" (the row's images/s /
    the baseline's) per (model, threads); the baseline "timm" is the faster of `TIMM_ROWS` on each measure, and
    for a bf16 row `TIMM_COMPILED_BF16` (`_baseline_labels`). None where the baseline was not timed."""
    for r in rows:
        base = [b for b in rows if b["format"] in _baseline_labels(baseline, r["format"])
                and (b["model"], b["threads"]) == (r["model"], r["threads"])]
        r["baseline"] = baseline
        r["b1_vs"] = min(b["latency_ms"] for b in base) / r["latency_ms"] if base else None
        r["bn_vs"] = r["images_per_s"] / max(b["images_per_s"] for b in base) if base else None


def fastest_rows(rows) -> list:
    """Per (model, threads, precision) with a timed baseline of that precision: {"model", "threads", "precision",
    "b1": (format, b1_vs), "bn": (format, bn_vs)}, the fastest row other than the baseline's at batch 1 and at batch
    B (after `add_format_ratios`): each implementation on its fastest path, which is what a ratio between
    implementations should compare. A row is only weighed against a baseline computing in its own precision: a
    bf16 row against timm's bf16 row, never a bf16 or int8 row against a float32 baseline."""
    out = {}
    for r in rows:
        own = _baseline_labels(r["baseline"], r["format"])  # the baseline rows this row was compared with
        if (r.get("b1_vs") is None or r["format"] in _baseline_labels(r["baseline"])
                or precision(r["format"]) != precision(own[0])):
            continue
        key = (r["model"], r["threads"], precision(r["format"]))
        best = out.setdefault(key, {"model": r["model"], "threads": r["threads"], "precision": key[2],
                                    "b1": (r["format"], r["b1_vs"]), "bn": (r["format"], r["bn_vs"])})
        for key, ratio in (("b1", r["b1_vs"]), ("bn", r["bn_vs"])):
            if ratio > best[key][1]:
                best[key] = (r["format"], ratio)
    return list(out.values())


def format_formats_table(rows) -> str:
    """Aligned table of `time_exports` rows (after `add_format_ratios`), then a line per format saying what it
    is, and per model and thread count the fastest row against the baseline (`fastest_rows`)."""
    if not rows:
        return "(no rows)"
    n, base = rows[0]["batch"], rows[0].get("baseline")
    base_name = f"{base}'s fastest" if base == TIMM else base
    cols = [("model", "model", "{}"), ("format", "format", "{}"), ("threads", "threads", "{}"),
            ("resolution", "px", "{}"), ("latency_ms", "b1 median ms", "{:.1f}"),
            ("latency_p90_ms", "b1 p90 ms", "{:.1f}"), ("images_per_s", f"b{n} images/s", "{:.1f}"),
            ("spread", f"b{n} min-max ms", "{}"), ("gflops", f"b{n} GFLOP/s", "{:.0f}"), ("peak", "% peak", "{}"),
            ("micro_batch", f"b{n} as", "{}"),
            ("b1_vs", f"b1 vs {base_name}", "{:.2f}x"),
            ("bn_vs", f"b{n} vs {base_name}", "{:.2f}x"), ("max_rel_diff", "rel diff", "{:.1g}")]

    def way(m):  # how a batch of n ran: one call, or calls x images
        return "1 call" if m >= n else f"{-(-n // m)} x {m}"

    def cell(r, k, f):
        if k == "spread":
            return f"{r['ms_min']:.0f}-{r['ms_max']:.0f}"
        if k == "peak":
            return f"{100 * r['gflops'] / r['peak_gflops']:.0f}%" if r.get("peak_gflops") else "-"
        if k == "threads":
            return str(r[k] or "default")
        if k == "micro_batch":
            return "-" if r.get(k) is None else way(r[k])
        if k.startswith("way "):
            ips = r.get("images_per_s_by_micro_batch", {}).get(k[4:])
            return "-" if ips is None else f"{ips:.1f}"
        return "-" if r.get(k) is None else f.format(r[k])

    swept = sorted({int(m) for r in rows for m in r.get("images_per_s_by_micro_batch", {})} - {n})
    if not swept:
        cols = [c for c in cols if c[0] != "micro_batch"]
    table = _aligned(cols, rows, cell)
    if swept:  # the rate of each way the "bN as" column chose from
        ways = cols[:3] + [(f"way {m}", way(m), "") for m in [n] + swept[::-1]]
        table += ["", f"b{n} images/s by how the batch ran (calls x images):"] + _aligned(ways, rows, cell)

    labels = dict.fromkeys(r["format"] for r in rows)
    notes = [f"{label}: {FORMAT_NOTES.get(label.removesuffix(SPLIT), '')}"
             + (" (grouped convolutions split)" if label.endswith(SPLIT) else "") for label in labels]
    notes.append("b1 vs / bN vs: speedup over the baseline (> 1.00x: faster); rel diff: max |logits - Keras's| / "
                 "max |Keras's| on the batch")
    if swept:
        notes.append(f"b{n} images/s: each row's fastest way to run the batch of {n}, one call or consecutive calls of "
                     f"{', '.join(map(str, swept))} images (b{n} as: calls x images), timm's rows included")
    peaks = {r["threads"]: r["peak_gflops"] for r in rows if r.get("peak_gflops")}
    if peaks:
        notes.append(f"GFLOP/s: 2 x multiply-adds x images/s at batch {n}; % peak: of a {PEAK_SIZE} x {PEAK_SIZE} "
                     "float32 matmul in TensorFlow, same process and threads ("
                     + ", ".join(f"{v:.0f} GFLOP/s at {t or 'default'} thread{'s' if t != 1 else ''}"
                                 for t, v in peaks.items()) + ")")
    fastest = [f"{f['model']}, {f['threads'] or 'default'} thread{'s' if f['threads'] != 1 else ''}"
               + ("" if f["precision"] == "f32" else f", {f['precision']}") + f": batch 1 "
               f"{f['b1'][0]} {f['b1'][1]:.2f}x, batch {n} {f['bn'][0]} {f['bn'][1]:.2f}x" for f in fastest_rows(rows)]
    if base == TIMM and any(precision(r["format"]) == "bf16" for r in rows):
        notes.append(f"bf16 rows are compared with {TIMM_COMPILED_BF16}, every other row with timm's float32 rows")
    if fastest:
        notes += ["", f"fastest of the other rows vs {base_name}:"] + fastest
    return "\n".join(table + [""] + notes)


def _aligned(cols, rows, cell) -> list:
    """Lines of a table: a header of `cols` ((key, header, format)), a rule, then `cell(row, key, format)` per row;
    model and format left-aligned, the rest right-aligned."""
    cells = [[h for _, h, _ in cols]] + [[cell(r, k, f) for k, _, f in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]

    def fmt(line):
        return "  ".join(c.ljust(w) if k in ("model", "format") else c.rjust(w)
                         for c, w, (k, _, _) in zip(line, widths, cols)).rstrip()

    return [fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(line) for line in cells[1:]]
