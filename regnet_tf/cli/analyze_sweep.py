"""`regnet-analyze-sweep` / `python launch/analyze_sweep.py`: plots and an HTML report of one or more sweeps.
Usage: see launch/analyze_sweep.py."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli
from regnet_tf.design.report import analyze

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("out", None, "Where the PNGs and report.html go (default: <first sweep>/analysis).")
    flags.DEFINE_integer("top", 10, "Best models listed in the report.")
    flags.DEFINE_string("study", None, "The directory is a study's (launch/sweep.py --study): draw its figure's "
                        "plots (EDFs per regime, parameter trends, or error vs lr and wd).")


def study_populations(study, out):
    """{population label: {regime: records}} of a study directory (sweeps not started yet: no records)."""
    from regnet_tf.design import sweep

    populations = {}
    for name, p, regime in study.sweeps():
        path = os.path.join(out, name)
        records = sweep.load_records(path) if os.path.isdir(os.path.join(path, sweep.RECORDS)) else []
        populations.setdefault(p.label, {})[regime] = records
    return populations


def main(argv):
    dirs = argv[1:]
    if FLAGS.study:
        from regnet_tf.design import studies
        from regnet_tf.design.report import analyze_study

        if len(dirs) != 1:
            raise ValueError("with --study give the study's directory once: python launch/analyze_sweep.py "
                             "sweeps/figure_14 --study figure_14")
        study = studies.get_study(FLAGS.study)
        out = FLAGS.out or os.path.join(dirs[0], "analysis")
        paths = analyze_study(f"{study.figure}: {study.title}", study_populations(study, dirs[0]), study.plot, out,
                              top=FLAGS.top)
        print("\n".join(f"{name}: {path}" for name, path in paths.items()))
        return
    if not dirs:
        raise ValueError("give one or more sweep directories: python launch/analyze_sweep.py sweeps/a [sweeps/b ...]")
    out = FLAGS.out or os.path.join(dirs[0], "analysis")
    paths = analyze(dirs, out, top=FLAGS.top)
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))


def run():
    cli.run(main, define_flags)
