"""`regnet-benchmark` / `python launch/benchmark.py`: training and inference throughput on random data.

Flags and `main`; the measuring is `regnet_tf.benchmark` (TensorFlow loads inside its functions, after
`regnet_tf.cli.prepare_environment`). docs/SPEED.md explains the two harnesses and what the ratios mean.
"""

from __future__ import annotations

import sys

from absl import app, flags

from regnet_tf import benchmark as bench  # no TensorFlow at import: its constants are the flag choices
from regnet_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_list("model", None, "Comma-separated model names (see regnet_tf.list_models()) and/or resnet50.")
    flags.DEFINE_integer("resolution", None, "Image size; default: each model's registered resolution (224 resnet50).")
    flags.DEFINE_integer("batch", 16, "Batch size.")
    flags.DEFINE_integer("steps", 2, "Timed steps per round for each (model, mode, implementation, harness).")
    flags.DEFINE_integer("rounds", 3, "Alternating rounds over implementations and harnesses; a row shows the median.")
    flags.DEFINE_integer("warmup", 2, "Untimed warmup steps per harness (the first one traces the graph).")
    flags.DEFINE_multi_enum("compare", [], bench.COMPARISONS,
                            "Also time the same model from tf_keras.applications / keras.applications (repeatable).")
    flags.DEFINE_integer("compare_steps", None, "Timed steps per round for comparison rows; default min(--steps, 1): "
                         "tf_keras RegNet training is very slow on CPU (~35 s/step for RegNetY016 at 224, batch 16).")
    flags.DEFINE_integer("compare_warmup", None, "Warmup steps for comparison rows; default min(--warmup, 1).")
    flags.DEFINE_enum("mode", "both", ("both",) + bench.MODES, "Which steps to time.")
    flags.DEFINE_enum("harness", "both", ("both",) + bench.HARNESSES,
                      "Time train_on_batch/predict_on_batch (on_batch), a plain tf.function step, or both.")
    flags.DEFINE_boolean("all_harnesses", False, "Show a row per harness (the fastest marked *), not only the fastest.")
    flags.mark_flag_as_required("model")
    flags.register_validator("resolution", lambda r: r is None or r >= 32, "--resolution must be at least 32")
    flags.register_validator("batch", lambda b: b >= 1, "--batch must be positive")
    flags.register_validator("steps", lambda n: n >= 1, "--steps must be positive")
    flags.register_validator("rounds", lambda n: n >= 1, "--rounds must be positive")
    flags.register_validator("warmup", lambda n: n >= 0, "--warmup must be >= 0")
    flags.register_validator("compare_steps", lambda n: n is None or n >= 1, "--compare_steps must be positive")
    flags.register_validator("compare_warmup", lambda n: n is None or n >= 0, "--compare_warmup must be >= 0")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    models = [m.strip() for m in FLAGS.model if m.strip()]
    if not models:
        raise app.UsageError("--model needs at least one model name")
    bench.check_models(models)  # pure Python: the names are checked before TensorFlow loads (one-line error)
    print(bench.environment(), flush=True)
    rows = bench.run(models, resolution=FLAGS.resolution, batch=FLAGS.batch, compare=FLAGS.compare,
                     steps=FLAGS.steps, warmup=FLAGS.warmup, rounds=FLAGS.rounds,
                     harnesses=bench.HARNESSES if FLAGS.harness == "both" else (FLAGS.harness,),
                     compare_steps=FLAGS.compare_steps, compare_warmup=FLAGS.compare_warmup,
                     modes=bench.MODES if FLAGS.mode == "both" else (FLAGS.mode,),
                     log=lambda note: print(note, flush=True),
                     progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(bench.format_table(rows, all_harnesses=FLAGS.all_harnesses))


def run():
    """Console-script entry point (`regnet-benchmark`)."""
    cli.run(main, define_flags)
