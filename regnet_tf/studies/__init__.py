"""The papers' studies, measured and gathered: the speed study and the results collection of the study grids.

- `paper`: the papers' speed and accuracy tables the studies compare with (each value with its table and quote).
- `speed`: runtime vs complexity (fast-scaling paper, Figure 2), RegNet vs EfficientNet at equal flops (RegNet paper,
  Table 4 / Figures 12 and 18) and speed-accuracy Pareto curves (Revisiting ResNets, Figures 1 and 4 / Table 7),
  timed on this machine (`launch/speed_study.py`).
- `collect`: run directories (recipe.yaml, metrics.jsonl) into one table and the grids' figures
  (`launch/collect.py`).

No TensorFlow at import; the timing imports it when it runs.
"""
