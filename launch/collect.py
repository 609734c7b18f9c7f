"""Collect training runs into one table and draw the study grids' figures (docs/STUDIES.md).

    python launch/collect.py runs/a runs/b --out results        # run directories (each holding recipe.yaml)
    python launch/collect.py runs --out results                 # every run below runs/, at any depth
    python launch/collect.py runs --out results --csv_only      # results/runs.csv only, no plots

Writes results/runs.csv (one row per run), results/paper_points.csv (the paper's points drawn), the plots of the
fast_scaled_* and rs_scaling_* grids found among the runs and results/report.html showing them.
Same as the console script `regnet-collect` (after `pip install -e .`).
"""

from regnet_tf.cli.collect import run

if __name__ == "__main__":
    run()
