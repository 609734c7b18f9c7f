"""`regnet-search` / `python launch/search.py`: random search at a flop budget; writes the best model as a ready
recipe file. Usage: see launch/search.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.cli.sweep import define_population_flags
from regnet_tf.design import report, sweep

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    define_population_flags("regnety")
    flags.DEFINE_float("flops", 400e6, "Flop budget (multiply-adds): models in [0.9 x flops, flops].")
    flags.DEFINE_string("out", None, "The search directory (default: searches/<space>_<flops>MF).")


def main(argv):
    del argv
    import os

    from absl import logging

    logging.set_verbosity(logging.WARNING)
    out = FLAGS.out or os.path.join("searches", f"{FLAGS.space}_{FLAGS.flops / 1e6:.0f}MF")
    overrides = shortcut_overrides(FLAGS.data, FLAGS.data_dir) + FLAGS.set
    plan = sweep.make_plan(FLAGS.space, [0.9 * FLAGS.flops, FLAGS.flops], FLAGS.samples, FLAGS.seed,
                           FLAGS.resolution, FLAGS.recipe, overrides)
    sweep.model_recipe(plan, 0)  # a bad recipe or override fails here, before any training
    top = sweep.best(sweep.run_sweep(out, plan))
    path = os.path.join(out, "best.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(report.best_recipe(top, FLAGS.recipe))
    print(f"best of {FLAGS.samples}: model {top['index']}, error {top['error']:.2f}%, "
          f"{top['complexity']['flops'] / 1e6:.0f} MF; its recipe: {path} (python launch/train.py --recipe {path})")


def run():
    cli.run(main, define_flags)
