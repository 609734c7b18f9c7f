"""`regnet-collect` / `python launch/collect.py`: training runs (recipe.yaml, metrics.jsonl) into one CSV table, the
study grids' figures and an HTML report (`regnet_tf.studies.collect`). Usage: see launch/collect.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("out", None, "Output directory: runs.csv, paper_points.csv, the plots, report.html.")
    flags.DEFINE_bool("csv_only", False, "Write runs.csv only (no plots: matplotlib not needed).")
    flags.mark_flag_as_required("out")


def main(argv):
    import os

    from regnet_tf.studies import collect

    paths = argv[1:]
    if not paths:
        raise ValueError("give the run directories to collect: python launch/collect.py runs/a runs/b --out DIR "
                         "(a directory holding runs is searched at any depth)")
    rows = collect.collect(paths)
    if FLAGS.csv_only:
        os.makedirs(FLAGS.out, exist_ok=True)
        written = {"csv": collect.write_csv(rows, os.path.join(FLAGS.out, "runs.csv"))}
    else:
        try:
            written = collect.report(rows, FLAGS.out)
        except ImportError as e:  # matplotlib: the `plot` extra
            raise ValueError(f"{e}; or add --csv_only for the table alone") from e
    done = sum(r["finished"] for r in rows)
    print(f"{len(rows)} runs ({done} finished, {len(rows) - done} unfinished)")
    for r in rows:
        error = "-" if r["error"] is None else f"{r['error']:.2f}%"
        print(f"  {r['recipe']}: {r['flops'] / 1e9:.3f} GF, error {error} on {r['eval_split']}, step {r['steps']}/"
              f"{r['total_steps']}{'' if r['finished'] else ' (unfinished)'}  [{r['run']}]")
    for name, path in written.items():
        print(f"wrote {name}: {path}")


def run():
    cli.run(main, define_flags)
