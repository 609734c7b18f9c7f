"""`regnet-train` / `python launch/train.py`: train a model from a recipe; resumes from --model_dir's last
checkpoint. Usage: see launch/train.py."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import load_recipe, shortcut_overrides
from regnet_tf.data.config import DATA_SOURCES
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train.recipe import DISTRIBUTION_STRATEGIES, PRECISIONS

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("recipe", None, "Recipe name (--list_recipes) or path to a recipe YAML file.")
    flags.DEFINE_multi_string("set", [], "Override a recipe value: --set train.epochs=2 --set data.image_size=128.")
    flags.DEFINE_enum("data", None, DATA_SOURCES, "Data source (default: the recipe's; with --data_dir on a demo recipe: "
                      "what the directory holds).")
    flags.DEFINE_string("data_dir", None, "TFRecord / TFDS / image-folder directory.")
    flags.DEFINE_string("weights", None, "Fine-tune: start from 'imagenet', a weights tag, a .weights.h5 / .keras "
                        "file or another run's model_dir (sets finetune.weights; docs/TRANSFER.md).")
    flags.DEFINE_string("model_dir", None, "Checkpoints, logs and exports (default: runs/<recipe>).")
    flags.DEFINE_enum("strategy", "auto", DISTRIBUTION_STRATEGIES, "Distribution strategy.")
    flags.DEFINE_string("tpu", None, "TPU name, grpc://address:8470, or 'local' (with --strategy tpu).")
    flags.DEFINE_enum("mixed_precision", None, PRECISIONS, "Overrides the recipe's runtime.mixed_precision.")
    flags.DEFINE_integer("global_batch_size", None, "Overrides the recipe's; the learning rate scales linearly.")
    flags.DEFINE_float("epochs", None, "Overrides train.epochs.")
    flags.DEFINE_integer("steps", None, "Overrides train.steps (train this many steps in all).")
    flags.DEFINE_bool("eval_only", False, "Evaluate the last checkpoint of --model_dir and exit.")
    flags.DEFINE_bool("export", True, "Export a SavedModel at the end of training.")
    flags.DEFINE_bool("list_recipes", False, "List the recipes and exit.")
    flags.DEFINE_integer("num_cpu_devices", 0, "Split the CPU into N logical devices (to run --strategy mirrored "
                         "without GPUs, e.g. in tests).")


def _list_recipes():
    for name in recipe_lib.list_recipes():
        r = recipe_lib.load(name)
        paper = f"  [{r.paper_top1}% {r.paper_ref}]" if r.paper_top1 is not None else ""
        print(f"{name:36s} {r.description}{paper}")
    for grid in recipe_lib.list_grids():
        print(f"grid: {grid.summary()}: {len(grid.names())} recipes. {grid.file.get('description', '')}")


def main(argv):
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TensorFlow's Python INFO lines (checkpoint sharding, ...)
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]} (values go in flags, e.g. --set train.epochs=2)")
    if FLAGS.list_recipes:
        return _list_recipes()
    if not FLAGS.recipe:
        raise ValueError("--recipe is required (python launch/train.py --list_recipes lists them; --recipe demo "
                         "trains on built-in data)")
    shortcuts = shortcut_overrides(FLAGS.data, FLAGS.data_dir, FLAGS.global_batch_size, FLAGS.epochs, FLAGS.steps,
                                   FLAGS.mixed_precision, FLAGS.weights)
    # a bad recipe fails here, before TensorFlow loads
    recipe = load_recipe(FLAGS.recipe, shortcuts, FLAGS.set, FLAGS.data, FLAGS.data_dir)
    from regnet_tf.train import distribute  # imports TensorFlow: only after cli.run set the environment

    if FLAGS.num_cpu_devices > 1:
        distribute.use_logical_cpus(FLAGS.num_cpu_devices)
    from regnet_tf.data.sources import check_data
    from regnet_tf.train.trainer import Trainer

    check_data(recipe.data)
    model_dir = FLAGS.model_dir or os.path.join("runs", recipe.name)
    print(f"recipe {recipe.name}: {recipe.description}\n--- resolved recipe ---\n{recipe.to_yaml()}---", flush=True)
    trainer = Trainer(recipe, model_dir, distribute.make_strategy(FLAGS.strategy, FLAGS.tpu))
    if not FLAGS.eval_only:
        trainer.train(export=FLAGS.export)
        return
    step = trainer.restore_or_fail("evaluate (--eval_only)")
    print(trainer.describe(), flush=True)
    m = trainer.evaluate()
    print(f"evaluation at step {step}: top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}%, loss {m['loss']:.4f} "
          f"({m['examples']} images{trainer.weights_note()})")


def run():
    cli.run(main, define_flags)

