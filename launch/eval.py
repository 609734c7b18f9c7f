"""Evaluate a checkpoint (a model_dir written by launch/train.py) or an exported SavedModel on a data source.

    python launch/eval.py --model_dir runs/demo                              # last checkpoint, EMA weights
    python launch/eval.py --saved_model runs/demo/export/390 --data demo     # through serving_default (bytes in)
    python launch/eval.py --model_dir runs/rs152 --data_dir /data/imagenet --split validation
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import regnet_tf  # noqa: E402,F401
from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py (its last checkpoint).")
flags.DEFINE_string("saved_model", None, "An exported SavedModel directory (instead of --model_dir).")
flags.DEFINE_enum("data", None, ["demo", "tfrecord", "tfds", "folder"], "Data source (default: the run's).")
flags.DEFINE_string("data_dir", None, "Data directory (default: the run's).")
flags.DEFINE_enum("split", "validation", ["train", "validation"], "Split to evaluate.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("steps", 0, "Evaluate only this many batches (0: the whole split).")
flags.DEFINE_multi_string("set", [], "Recipe overrides for the data (e.g. data.eval_pattern=val-*).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    from regnet_tf.train import loop
    from regnet_tf.train import recipe as recipe_lib

    if bool(FLAGS.model_dir) == bool(FLAGS.saved_model):
        sys.exit("error: give exactly one of --model_dir (a checkpoint) and --saved_model (an export)")
    try:
        overrides = recipe_lib.shortcut_overrides(FLAGS.data, FLAGS.data_dir) + FLAGS.set
        if FLAGS.saved_model:
            recipe = recipe_lib.from_dict(recipe_lib.apply_overrides({}, overrides))
            loop.check_data(recipe.data, (FLAGS.split,))
            m = loop.evaluate_saved_model(FLAGS.saved_model, recipe.data, FLAGS.split, FLAGS.batch_size, FLAGS.steps)
            what = f"SavedModel {FLAGS.saved_model}"
        else:
            recipe = loop.load_run(FLAGS.model_dir, overrides + [f"train.global_batch_size={FLAGS.batch_size}"])
            loop.check_data(recipe.data, (FLAGS.split,))
            trainer = loop.Trainer(recipe, FLAGS.model_dir)
            step = trainer.restore()
            if not step:
                raise loop.TrainingError(f"no checkpoint in {trainer.manager.directory}")
            m = trainer.evaluate(steps=FLAGS.steps, split=FLAGS.split)
            what = f"{FLAGS.model_dir} step {step} ({'EMA' if trainer.ema else 'raw'} weights)"
    except (ValueError, FileNotFoundError, loop.TrainingError) as e:
        sys.exit(f"error: {e}")
    print(f"{what} on {recipe.data.source} {FLAGS.split}: top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}% "
          f"({m['examples']} images)")


if __name__ == "__main__":
    app.run(main)
