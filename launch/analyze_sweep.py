"""Plots and an HTML report of one or more sweeps written by launch/sweep.py (needs the `plot` extra: matplotlib).

    python launch/analyze_sweep.py sweeps/anynetx_a                       # -> sweeps/anynetx_a/analysis/report.html
    python launch/analyze_sweep.py sweeps/anynetx_a sweeps/anynetx_b --out sweeps/a_vs_b

Writes edf.png (error EDFs, "[min|mean]" legends; flops-normalized too for several sweeps), one PNG per statistic
(error vs the statistic with the bootstrap's 95% band and best value), widths.png (per-block widths of the best
models with their quantized linear fits) and report.html (them and a table of the best models). Same as
`regnet-analyze-sweep`.
"""

from regnet_tf.cli.analyze_sweep import run

if __name__ == "__main__":
    run()
