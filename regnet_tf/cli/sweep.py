"""`regnet-sweep` / `python launch/sweep.py`: sample a population of models from a design space and train each with a
recipe, one JSON record per model; resumable and shardable over hosts. Usage: see launch/sweep.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.data.config import DATA_SOURCES
from regnet_tf.design import sweep
from regnet_tf.design.spaces import SPACES

FLAGS = flags.FLAGS


def define_population_flags(space_default):
    """The flags of a population of sampled models (launch/sweep.py and launch/search.py)."""
    flags.DEFINE_enum("space", space_default, sorted(SPACES), "The design space to sample.")
    flags.DEFINE_integer("samples", 32, "Models in the population.")
    flags.DEFINE_integer("seed", 0, "The sample list is a deterministic function of the seed.")
    flags.DEFINE_integer("resolution", 224, "Resolution of the flop regime (the paper's: 224).")
    flags.DEFINE_string("recipe", "regnet_design_space", "Recipe every model trains with.")
    flags.DEFINE_multi_string("set", [], "Recipe overrides, as in launch/train.py (--set train.steps=5).")
    flags.DEFINE_enum("data", None, DATA_SOURCES, "Data source (default: the recipe's).")
    flags.DEFINE_string("data_dir", None, "Data directory.")


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    define_population_flags(None)
    flags.DEFINE_string("regime", "400MF", "Flop regime: a name such as 400MF (= 360MF-400MF) or a range lo-hi.")
    flags.DEFINE_string("out", None, "The sweep directory: plan.json, records/ (local or gs://), runs/.")
    flags.DEFINE_string("shard", "0/1", "i/n: this host trains the models with index % n == i.")
    for name in ("space", "out"):
        flags.mark_flag_as_required(name)


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    shard = sweep.parse_shard(FLAGS.shard)
    overrides = shortcut_overrides(FLAGS.data, FLAGS.data_dir) + FLAGS.set
    plan = sweep.make_plan(FLAGS.space, FLAGS.regime, FLAGS.samples, FLAGS.seed, FLAGS.resolution,
                           FLAGS.recipe, overrides)
    sweep.model_recipe(plan, 0)  # a bad recipe or override fails here, before any training
    records = sweep.run_sweep(FLAGS.out, plan, shard)
    top = sweep.best(records)
    print(f"{len(records)} of {len(plan['specs'])} models finished in {FLAGS.out}/records"
          + (f"; best so far: model {top['index']}, error {top['error']:.2f}%" if top else ""))


def run():
    cli.run(main, define_flags)
