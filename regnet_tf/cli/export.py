"""`regnet-export` / `python launch/export.py`: export a model_dir's last checkpoint (EMA weights) as a versioned
SavedModel for TF Serving. Usage: see launch/export.py."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py.")
    flags.DEFINE_string("export_dir", None, "Versioned output directory (default: model_dir/export/<step>).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing export_dir.")
    flags.mark_flag_as_required("model_dir")


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    from regnet_tf.train.evaluate import load_run
    from regnet_tf.train.trainer import Trainer

    recipe = load_run(FLAGS.model_dir)
    trainer = Trainer(recipe, FLAGS.model_dir)
    step = trainer.restore_or_fail("export")
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export", str(step))
    path = trainer.export(export_dir, overwrite=FLAGS.overwrite or FLAGS.export_dir is None)
    print(f"exported step {step} of {recipe.name} ({'EMA' if trainer.ema else 'raw'} weights) to {path}")


def run():
    cli.run(main, define_flags)
