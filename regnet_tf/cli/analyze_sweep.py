"""`regnet-analyze-sweep` / `python launch/analyze_sweep.py`: plots and an HTML report of one or more sweeps.
Usage: see launch/analyze_sweep.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli
from regnet_tf.design.report import analyze

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("out", None, "Where the PNGs and report.html go (default: <first sweep>/analysis).")
    flags.DEFINE_integer("top", 10, "Best models listed in the report.")


def main(argv):
    import os

    dirs = argv[1:]
    if not dirs:
        raise ValueError("give one or more sweep directories: python launch/analyze_sweep.py sweeps/a [sweeps/b ...]")
    out = FLAGS.out or os.path.join(dirs[0], "analysis")
    paths = analyze(dirs, out, top=FLAGS.top)
    print("\n".join(f"{name}: {path}" for name, path in paths.items()))


def run():
    cli.run(main, define_flags)
