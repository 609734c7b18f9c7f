"""`regnet-benchmark` / `python launch/benchmark.py`: training and inference throughput on random data, or (with
`--formats`) the inference latency and throughput of exported files side by side.

Flags and `main`; the measuring is `regnet_tf.benchmark` (TensorFlow loads inside its functions, after
`regnet_tf.cli.prepare_environment`). docs/SPEED.md explains the two harnesses and what the ratios mean.

With `--formats`, this process exports every model once into a temporary directory, then times the exports in one
child process per `--threads` value (TensorFlow's thread pools are process-wide and fixed at its first op): the
child is this command again with one thread count and the internal `--child_export_dirs` / `--child_rows`
flags; it writes its rows as JSON and this process prints them as one table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from absl import app, flags

from regnet_tf import benchmark as bench  # no TensorFlow at import: its constants are the flag choices
from regnet_tf import benchmark_formats as fbench
from regnet_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_list("model", None, "Comma-separated model names (see regnet_tf.list_models()) and/or resnet50.")
    flags.DEFINE_integer("resolution", None, "Image size; default: each model's registered resolution (224 resnet50).")
    flags.DEFINE_integer("batch", None, "Batch size; default 16 (with --formats: 32, the throughput batch).")
    flags.DEFINE_integer("steps", 2, "Timed steps per round for each (model, mode, implementation, harness); with "
                         "--formats: timed batch-N calls per round and format.")
    flags.DEFINE_integer("rounds", 3, "Alternating rounds over implementations and harnesses; a row shows the median.")
    flags.DEFINE_integer("warmup", 2, "Untimed warmup steps per harness (the first one traces the graph).")
    flags.DEFINE_multi_enum("compare", [], bench.COMPARISONS + (fbench.TIMM,),
                            "Also time the same model from tf_keras.applications / keras.applications (repeatable); "
                            "with --formats: timm (PyTorch inference, NCHW, channels_last and torch.compile; with "
                            "openvino_bf16 also torch.compile under bfloat16 autocast, which bf16 rows are compared "
                            "with).")
    flags.DEFINE_integer("compare_steps", None, "Timed steps per round for comparison rows; default min(--steps, 1): "
                         "tf_keras RegNet training is very slow on CPU (~35 s/step for RegNetY016 at 224, batch 16).")
    flags.DEFINE_integer("compare_warmup", None, "Warmup steps for comparison rows; default min(--warmup, 1).")
    flags.DEFINE_enum("mode", "both", ("both",) + bench.MODES, "Which steps to time.")
    flags.DEFINE_enum("harness", "both", ("both",) + bench.HARNESSES,
                      "Time train_on_batch/predict_on_batch (on_batch), a plain tf.function step, or both.")
    flags.DEFINE_boolean("all_harnesses", False, "Show a row per harness (the fastest marked *), not only the fastest.")
    _define_format_flags()
    flags.mark_flag_as_required("model")
    flags.register_validator("resolution", lambda r: r is None or r >= 32, "--resolution must be at least 32")
    flags.register_validator("batch", lambda b: b is None or b >= 1, "--batch must be positive")
    flags.register_validator("steps", lambda n: n >= 1, "--steps must be positive")
    flags.register_validator("rounds", lambda n: n >= 1, "--rounds must be positive")
    flags.register_validator("warmup", lambda n: n >= 0, "--warmup must be >= 0")
    flags.register_validator("compare_steps", lambda n: n is None or n >= 1, "--compare_steps must be positive")
    flags.register_validator("compare_warmup", lambda n: n is None or n >= 0, "--compare_warmup must be >= 0")


def _define_format_flags():
    flags.DEFINE_list("formats", None, "Time these inference formats side by side instead (comma-separated): "
                      f"{', '.join(fbench.FORMATS)}. keras*: the Keras model in a tf.function (folded: "
                      "BatchNormalization folded; xla: jit_compile=True); saved_model_unfolded: exported with "
                      "fold=False; openvino_bf16: OpenVINO at bf16 (less exact).")
    flags.DEFINE_list("threads", ["1", "2"], "With --formats: thread counts, each timed in its own process "
                      "(TensorFlow's intra/inter-op threads and each runtime's thread option).")
    flags.DEFINE_integer("latency_steps", 10, "With --formats: timed batch-1 calls per round and format.")
    flags.DEFINE_list("micro_batch", [], "With --formats: also time the batch-N throughput as consecutive calls of "
                      "these sizes (e.g. 1,2,4,8), for every row, timm's included; each row reports its fastest way.")
    flags.DEFINE_enum("grouped_conv", "native", fbench.GROUPED_CONV, "With --formats: file exports with native "
                      "grouped convolutions, split into plain convolutions (label +split), or both.")
    flags.DEFINE_boolean("fold_batch_norm", True, "With --formats: fold BatchNormalization in the file exports.")
    flags.DEFINE_integer("calibration_images", fbench.CALIBRATION_IMAGES,
                         "With --formats tflite_int8: calibrate on this many demo images (eval view).")
    flags.DEFINE_string("baseline", None, "With --formats: the format the ratio columns compare with; default timm "
                        "with --compare timm, else keras, else saved_model, else the first format.")
    flags.DEFINE_list("child_export_dirs", None, "Internal (--formats): time these export directories.")
    flags.DEFINE_string("child_rows", None, "Internal (--formats): write the rows as JSON to this file.")
    flags.register_validator("latency_steps", lambda n: n >= 1, "--latency_steps must be positive")
    flags.register_validator("calibration_images", lambda n: n >= 1, "--calibration_images must be positive")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    models = [m.strip() for m in FLAGS.model if m.strip()]
    if not models:
        raise app.UsageError("--model needs at least one model name")
    bench.check_models(models)  # pure Python: the names are checked before TensorFlow loads (one-line error)
    if FLAGS.formats is not None:
        return _main_formats(models)
    if fbench.TIMM in FLAGS.compare:
        raise app.UsageError("--compare timm times inference of --formats (e.g. --formats keras,keras_folded,keras_xla "
                             "--compare timm)")
    print(bench.environment(), flush=True)
    rows = bench.run(models, resolution=FLAGS.resolution, batch=FLAGS.batch or 16, compare=FLAGS.compare,
                     steps=FLAGS.steps, warmup=FLAGS.warmup, rounds=FLAGS.rounds,
                     harnesses=bench.HARNESSES if FLAGS.harness == "both" else (FLAGS.harness,),
                     compare_steps=FLAGS.compare_steps, compare_warmup=FLAGS.compare_warmup,
                     modes=bench.MODES if FLAGS.mode == "both" else (FLAGS.mode,),
                     log=lambda note: print(note, flush=True),
                     progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(bench.format_table(rows, all_harnesses=FLAGS.all_harnesses))


def _main_formats(models):
    """--formats: export in this process, time each thread count in a child process, print one table."""
    compare = list(dict.fromkeys(FLAGS.compare))
    # pure Python: one-line errors before TensorFlow loads
    formats, threads, baseline = fbench.check_format_options(FLAGS.formats, compare, FLAGS.threads, FLAGS.baseline)
    micro_batches = fbench.check_micro_batches(FLAGS.micro_batch)
    batch = FLAGS.batch or 32
    if FLAGS.child_export_dirs:  # a child: time one thread count
        rows = fbench.time_exports(FLAGS.child_export_dirs, threads[0], batch, FLAGS.rounds, FLAGS.steps,
                                  FLAGS.latency_steps, FLAGS.warmup, compare, micro_batches, log=_log,
                                  progress=_progress)
        with open(FLAGS.child_rows, "w", encoding="utf-8") as f:
            json.dump(rows, f)
        return
    print(bench.environment(), flush=True)
    print(fbench.versions(), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="regnet-benchmark-") as root:
        dirs = fbench.export_models(models, formats, root, FLAGS.resolution, FLAGS.grouped_conv,
                                   FLAGS.fold_batch_norm, FLAGS.calibration_images, log=_log)
        for n in threads:
            rows += _child(dirs, n, formats, compare, batch, micro_batches, root)
    fbench.add_format_ratios(rows, baseline)
    print(fbench.format_formats_table(rows))


def _child(dirs, threads, formats, compare, batch, micro_batches, root):
    """Rows of this command re-run with one thread count on the exported `dirs` (its output passes through)."""
    out = os.path.join(root, f"rows-{threads}.json")
    args = [f"--model={','.join(FLAGS.model)}", f"--formats={','.join(formats)}", f"--threads={threads}",
            f"--batch={batch}", f"--rounds={FLAGS.rounds}", f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}",
            f"--latency_steps={FLAGS.latency_steps}", f"--micro_batch={','.join(map(str, micro_batches))}",
            f"--child_export_dirs={','.join(dirs)}", f"--child_rows={out}"]
    args += [f"--compare={c}" for c in compare] + (["--verbose"] if FLAGS.verbose else [])
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = fbench.timing_environment(compare, dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))))
    _log(f"timing with {threads} thread(s) in a child process")
    code = subprocess.call([sys.executable, "-c", "from regnet_tf.cli.benchmark import run; run()", *args], env=env)
    if code:
        cli.fail(RuntimeError(f"the timing process for --threads {threads} failed (exit code {code}; its error is "
                              "above)"))
    with open(out, encoding="utf-8") as f:
        return json.load(f)


def _log(note):
    print(note, flush=True)


def _progress(line):
    print(line, file=sys.stderr, flush=True)


def run():
    """Console-script entry point (`regnet-benchmark`)."""
    cli.run(main, define_flags)
