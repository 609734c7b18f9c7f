"""Training and inference throughput (images/s, ms/step, GFLOP/s) of regnet_tf models on random data.

    python launch/benchmark.py --model regnety_016 --resolution 224 --batch 16 --compare tf_keras
    python launch/benchmark.py --model regnety_016,regnetx_016,resnet50 --batch 32

`--model` takes comma-separated registry names and `resnet50` (keras.applications.ResNet50; its GFLOP/s use
4.09 G multiply-adds at 224, scaled by (resolution/224)^2 - approximate at other sizes). GFLOP/s = images/s x 2 x
multiply-adds, x3 for a training step. `--compare tf_keras` adds rows for the same model from
tf_keras.applications (Keras 2) and a ratio column vs those rows; `--compare keras` for keras.applications.
Comparison rows default to 1 warmup + 2 timed steps (--compare_warmup / --compare_steps), because tf_keras RegNet
training is very slow on CPU (RegNetY016 at 224, batch 16: ~30 s per step).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # fallback if not installed

from absl import app, flags  # noqa: E402

flags.DEFINE_list("model", None, "Comma-separated model names (see regnet_tf.list_models()) and/or resnet50.")
flags.DEFINE_integer("resolution", None, "Image size; default: each model's registered resolution (224 resnet50).")
flags.DEFINE_integer("batch", 16, "Batch size.")
flags.DEFINE_integer("steps", 5, "Timed steps per (model, mode).")
flags.DEFINE_integer("warmup", 2, "Untimed warmup steps (the first one traces the graph).")
flags.DEFINE_multi_enum("compare", [], ["tf_keras", "keras"],
                        "Also time the same model from tf_keras.applications / keras.applications (repeatable).")
flags.DEFINE_integer("compare_steps", None, "Timed steps for comparison rows; default min(--steps, 2) since tf_keras "
                     "RegNet training is very slow on CPU (~30 s/step for RegNetY016 at 224, batch 16).")
flags.DEFINE_integer("compare_warmup", None, "Warmup steps for comparison rows; default min(--warmup, 1).")
flags.DEFINE_enum("mode", "both", ["both", "train", "infer"], "Which steps to time.")
flags.mark_flag_as_required("model")
flags.register_validator("resolution", lambda r: r is None or r >= 32, "--resolution must be at least 32")
flags.register_validator("batch", lambda b: b >= 1, "--batch must be positive")
flags.register_validator("steps", lambda n: n >= 1, "--steps must be positive")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from regnet_tf import get_entry  # pure Python: check the names before importing TensorFlow

    models = [m.strip() for m in FLAGS.model if m.strip()]
    if not models:
        raise app.UsageError("--model needs at least one model name")
    try:
        for name in models:
            if name.lower() != "resnet50":
                get_entry(name)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    from regnet_tf import benchmark

    print(benchmark.environment(), flush=True)
    modes = benchmark.MODES if FLAGS.mode == "both" else (FLAGS.mode,)
    rows = benchmark.run(models, resolution=FLAGS.resolution, batch=FLAGS.batch, compare=FLAGS.compare,
                         steps=FLAGS.steps, warmup=FLAGS.warmup, compare_steps=FLAGS.compare_steps,
                         compare_warmup=FLAGS.compare_warmup, modes=modes,
                         log=lambda note: print(note, flush=True),
                         progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(benchmark.format_table(rows))


if __name__ == "__main__":
    app.run(main)
