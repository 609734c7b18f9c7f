"""`regnet-eval` / `python launch/eval.py`: evaluate a checkpoint (a model_dir) or an exported SavedModel on a data
source. Usage: see launch/eval.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.data.config import SOURCES, SPLITS

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py (its last checkpoint).")
    flags.DEFINE_string("saved_model", None, "An exported SavedModel directory (instead of --model_dir).")
    flags.DEFINE_enum("data", None, SOURCES, "Data source (default: the run's).")
    flags.DEFINE_string("data_dir", None, "Data directory (default: the run's).")
    flags.DEFINE_enum("split", "validation", SPLITS, "Split to evaluate.")
    flags.DEFINE_integer("batch_size", 100, "Batch size.")
    flags.DEFINE_integer("steps", 0, "Evaluate only this many batches (0: the whole split).")
    flags.DEFINE_multi_string("set", [], "Recipe overrides for the data (e.g. data.eval_pattern=val-*).")


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if bool(FLAGS.model_dir) == bool(FLAGS.saved_model):
        raise ValueError("give exactly one of --model_dir (a checkpoint) and --saved_model (an export)")
    from regnet_tf.data.sources import check_data
    from regnet_tf.train import evaluate
    from regnet_tf.train import recipe as recipe_lib

    overrides = shortcut_overrides(FLAGS.data, FLAGS.data_dir) + FLAGS.set
    if FLAGS.saved_model:
        recipe = recipe_lib.from_dict(recipe_lib.apply_overrides({}, overrides))
        check_data(recipe.data, (FLAGS.split,))
        m = evaluate.evaluate_saved_model(FLAGS.saved_model, recipe.data, FLAGS.split, FLAGS.batch_size, FLAGS.steps)
        what = f"SavedModel {FLAGS.saved_model}"
    else:
        from regnet_tf.train.trainer import Trainer

        recipe = evaluate.load_run(FLAGS.model_dir, overrides + [f"train.global_batch_size={FLAGS.batch_size}"])
        check_data(recipe.data, (FLAGS.split,))
        trainer = Trainer(recipe, FLAGS.model_dir)
        step = trainer.restore_or_fail("evaluate")
        m = trainer.evaluate(steps=FLAGS.steps, split=FLAGS.split)
        what = f"{FLAGS.model_dir} step {step} ({'EMA' if trainer.ema else 'raw'} weights)"
    print(f"{what} on {recipe.data.source} {FLAGS.split}: top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}% "
          f"({m['examples']} images)")


def run():
    cli.run(main, define_flags)
