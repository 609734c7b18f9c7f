"""`regnet-sweep` / `python launch/sweep.py`: sample a population of models from a design space and train each with a
recipe, one JSON record per model; resumable and shardable over hosts. Usage: see launch/sweep.py."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.data.config import DATA_SOURCES
from regnet_tf.design import sweep
from regnet_tf.design.spaces import SPACES

FLAGS = flags.FLAGS


def define_population_flags(space_default, samples_default=32):
    """The flags of a population of sampled models (launch/sweep.py and launch/search.py)."""
    flags.DEFINE_enum("space", space_default, sorted(SPACES), "The design space to sample.")
    flags.DEFINE_integer("samples", samples_default, "Models in the population (with --study: per population and "
                         "regime, replacing the study's count, e.g. for a trial).")
    flags.DEFINE_integer("seed", 0, "The sample list is a deterministic function of the seed.")
    flags.DEFINE_integer("resolution", 224, "Resolution of the flop regime (the paper's: 224).")
    flags.DEFINE_string("recipe", "regnet_design_space", "Recipe every model trains with (with --study: except a "
                        "population with a recipe of its own, Figure 22's EfficientNets).")
    flags.DEFINE_multi_string("set", [], "Recipe overrides, as in launch/train.py (--set train.steps=5).")
    flags.DEFINE_enum("data", None, DATA_SOURCES, "Data source (default: the recipe's).")
    flags.DEFINE_string("data_dir", None, "Data directory.")


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    define_population_flags(None, samples_default=None)
    flags.DEFINE_string("regime", "400MF", "Flop regime: a name such as 400MF (= 360MF-400MF) or a range lo-hi.")
    flags.DEFINE_string("out", None, "The sweep directory: plan.json, records/ (local or gs://), runs/; with --study "
                        "the study's directory, one sweep per population and regime in it.")
    flags.DEFINE_string("shard", "0/1", "i/n: this host trains the models with index % n == i.")
    flags.DEFINE_string("study", None, "Run a study of the RegNet paper, named after its figure (figure_14): all of "
                        "its populations and regimes (--list_studies).")
    flags.DEFINE_boolean("list_studies", False, "List the studies: figure, populations, the compute they need.")
    flags.DEFINE_list("populations", None, "With --study: only these populations (labels or their file names, e.g. "
                      "regnetx_g_1), e.g. to spread a study's populations over machines.")
    flags.DEFINE_list("regimes", None, "With --study: only these flop regimes (or, for a fixed-model population, "
                      "these models), e.g. 400MF.")


def run_study(name, out, shard, overrides):
    """Every sweep of a study under ``out`` (<population>_<regime>), this shard's models of each."""
    from regnet_tf.design import studies

    study = studies.get_study(name)
    todo = studies.plans(study, FLAGS.samples, FLAGS.seed, FLAGS.resolution, FLAGS.recipe, overrides,
                         populations=FLAGS.populations, regimes=FLAGS.regimes)
    for _, plan in todo:
        sweep.model_recipe(plan, 0)  # a bad recipe or override fails here, before any training
    print(studies.describe(study))
    for sweep_name, plan in todo:
        records = sweep.run_sweep(os.path.join(out, sweep_name), plan, shard)
        top = sweep.best(records)
        print(f"{sweep_name}: {len(records)} of {len(plan['specs'])} models finished"
              + (f"; best error {top['error']:.2f}%" if top else ""))
    print(f"analyze: python launch/analyze_sweep.py {out} --study {study.name}")


def main(argv):
    del argv
    from absl import logging

    from regnet_tf.design import studies

    if FLAGS.list_studies:
        print("\n".join(studies.describe(s) for s in studies.STUDIES.values()))
        return
    if not FLAGS.out or not (FLAGS.space or FLAGS.study):
        raise ValueError("give --out and either --space (one population) or --study (a figure of the paper; "
                         "--list_studies)")
    if FLAGS.space and FLAGS.study:
        raise ValueError("give --space or --study, not both: a study names its own spaces")
    if (FLAGS.populations or FLAGS.regimes) and not FLAGS.study:
        raise ValueError("--populations and --regimes choose among a study's sweeps: give --study too (one population "
                         "of a space: --space with --regime)")
    logging.set_verbosity(logging.WARNING)
    shard = sweep.parse_shard(FLAGS.shard)
    overrides = shortcut_overrides(FLAGS.data, FLAGS.data_dir) + FLAGS.set
    if FLAGS.study:
        return run_study(FLAGS.study, FLAGS.out, shard, overrides)
    plan = sweep.make_plan(FLAGS.space, FLAGS.regime, FLAGS.samples or 32, FLAGS.seed, FLAGS.resolution,
                           FLAGS.recipe, overrides)
    sweep.model_recipe(plan, 0)  # a bad recipe or override fails here, before any training
    records = sweep.run_sweep(FLAGS.out, plan, shard)
    top = sweep.best(records)
    print(f"{len(records)} of {len(plan['specs'])} models finished in {FLAGS.out}/records"
          + (f"; best so far: model {top['index']}, error {top['error']:.2f}%" if top else ""))


def run():
    cli.run(main, define_flags)
