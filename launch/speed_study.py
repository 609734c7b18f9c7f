"""The papers' speed claims timed on this machine: runtime vs flops, params and activations (fast-scaling paper,
Figure 2), RegNetY vs EfficientNet at equal flops (RegNet paper, Table 4), speed-accuracy Pareto curves (Revisiting
ResNets, Table 7 / Figures 1 and 4). Writes CSV files (one row per model, one per timed round), plots and
report.html to --out.

    python launch/speed_study.py --base efficientnet_b0 --strategies dw,w --factors 1,2,4 --resolution 64 --batch 4 --out DIR
    python launch/speed_study.py --set figure2 --resolution 128 --batch 8 --out out/figure2
    python launch/speed_study.py --set table4 --resolution_scale 0.5 --train_batch 8 --out out/table4
    python launch/speed_study.py --set table7 --out out/table7 --precision mixed_bfloat16
    python launch/speed_study.py --models regnety_016,resnet_rs_50_160 --out out/mine
    python launch/speed_study.py --space regnetx --samples 20 --regime 400MF --out out/regnetx
    python launch/speed_study.py --from_csv gpu_run/models.csv --out out/gpu     # re-plot another machine's run
    python launch/speed_study.py --list_sets

Same as the console script `regnet-speed-study`. docs/SPEED.md has the tables measured here and what they mean.
"""

from regnet_tf.cli.speed_study import run

if __name__ == "__main__":
    run()
