"""Train a model from a recipe (recipes/**/<name>.yaml); resumes from --model_dir's last checkpoint.

    python launch/train.py --recipe demo                                     # built-in demo data, ~3 min on 2 cores
    python launch/train.py --list_recipes
    python launch/train.py --recipe resnet_rs_152_224 --data_dir /data/imagenet --model_dir runs/rs152
    python launch/train.py --recipe resnet_rs_50_160 --data demo --set data.image_size=64 --epochs 2
    python launch/train.py --recipe regnety_016_zoo --data_dir /data/imagenet --strategy mirrored   # all GPUs
    TF_CONFIG=... python launch/train.py --recipe ... --strategy multi_worker                        # each worker
    python launch/train.py --recipe resnet_rs_350_320 --strategy tpu --tpu local --data_dir gs://...  # TPU VM
    python launch/train.py --recipe demo --model_dir runs/demo --eval_only

Prints the resolved recipe and the model's complexity, shows Keras progress bars, writes TensorBoard scalars
(model_dir/train, model_dir/validation), a JSON-lines log (model_dir/metrics.jsonl), checkpoints
(model_dir/checkpoints) and, at the end, a SavedModel (model_dir/export/<step>).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's C++ INFO lines
# TensorFlow's BFC CPU allocator: its default one maps and page-faults every tensor over 32 MB afresh, e.g. each
# float32 input batch of 64 x 224 px images (docs/DATA.md, "Input speed"). Read once, when TensorFlow starts.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import regnet_tf  # noqa: E402,F401  (before TensorFlow: turns on oneDNN for grouped-conv gradients on CPUs)
from absl import app, flags  # noqa: E402

flags.DEFINE_string("recipe", None, "Recipe name (--list_recipes) or path to a recipe YAML file.")
flags.DEFINE_multi_string("set", [], "Override a recipe value: --set train.epochs=2 --set data.image_size=128.")
flags.DEFINE_enum("data", None, ["demo", "tfrecord", "tfds", "folder"], "Data source (default: the recipe's).")
flags.DEFINE_string("data_dir", None, "TFRecord / TFDS / image-folder directory.")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs and exports (default: runs/<recipe>).")
flags.DEFINE_enum("strategy", "auto", ["auto", "cpu", "mirrored", "multi_worker", "tpu"], "Distribution strategy.")
flags.DEFINE_string("tpu", None, "TPU name, grpc://address:8470, or 'local' (with --strategy tpu).")
flags.DEFINE_enum("mixed_precision", None, ["auto", "none", "bfloat16", "float16"], "Overrides the recipe's.")
flags.DEFINE_integer("global_batch_size", None, "Overrides the recipe's; the learning rate scales linearly.")
flags.DEFINE_float("epochs", None, "Overrides train.epochs.")
flags.DEFINE_integer("steps", None, "Overrides train.steps (train this many steps in all).")
flags.DEFINE_bool("eval_only", False, "Evaluate the last checkpoint of --model_dir and exit.")
flags.DEFINE_bool("export", True, "Export a SavedModel at the end of training.")
flags.DEFINE_bool("list_recipes", False, "List the recipes and exit.")
flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into N logical devices (to run --strategy mirrored "
                     "without GPUs, e.g. in tests).")
FLAGS = flags.FLAGS


def _list_recipes():
    from regnet_tf.train import recipe as recipe_lib

    for name in recipe_lib.list_recipes():
        r = recipe_lib.load(name)
        paper = f"  [{r.paper_top1}% {r.paper_ref}]" if r.paper_top1 is not None else ""
        print(f"{name:36s} {r.description}{paper}")


def main(argv):
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TensorFlow's Python INFO lines (checkpoint sharding, ...)
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]} (values go in flags, e.g. --set train.epochs=2)")
    if FLAGS.num_cpu_devices > 1:
        from regnet_tf.train.loop import use_logical_cpus

        use_logical_cpus(FLAGS.num_cpu_devices)
    from regnet_tf.train import loop
    from regnet_tf.train import recipe as recipe_lib

    if FLAGS.list_recipes:
        return _list_recipes()
    if not FLAGS.recipe:
        sys.exit("error: --recipe is required (python launch/train.py --list_recipes lists them; "
                 "--recipe demo trains on built-in data)")
    try:
        overrides = recipe_lib.shortcut_overrides(FLAGS.data, FLAGS.data_dir, FLAGS.global_batch_size, FLAGS.epochs,
                                                  FLAGS.steps, FLAGS.mixed_precision) + FLAGS.set
        recipe = recipe_lib.load(FLAGS.recipe, overrides)
        loop.check_data(recipe.data)
        model_dir = FLAGS.model_dir or os.path.join("runs", recipe.name)
        print(f"recipe {recipe.name}: {recipe.description}\n--- resolved recipe ---\n{recipe.to_yaml()}---",
              flush=True)
        strategy = loop.make_strategy(FLAGS.strategy, FLAGS.tpu)
        trainer = loop.Trainer(recipe, model_dir, strategy)
        if FLAGS.eval_only:
            step = trainer.restore()
            if not step:
                raise loop.TrainingError(f"--eval_only: no checkpoint in {trainer.manager.directory}")
            print(trainer.describe(), flush=True)
            m = trainer.evaluate()
            print(f"evaluation at step {step}: top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}%, loss {m['loss']:.4f} "
                  f"({m['examples']} images{', EMA weights' if trainer.ema else ''})")
            return
        trainer.train(export=FLAGS.export)
    except (ValueError, FileNotFoundError, loop.TrainingError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    app.run(main)
