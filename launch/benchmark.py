"""Training and inference throughput (images/s, ms/step, GFLOP/s) of regnet_tf models on random data.

    python launch/benchmark.py --model regnety_016 --resolution 224 --batch 16 --compare tf_keras
    python launch/benchmark.py --model regnety_016,regnetx_016,resnet50 --batch 32 --all_harnesses

`--model` takes comma-separated registry names and `resnet50` (keras.applications.ResNet50; its GFLOP/s use
4.09 G multiply-adds at 224, scaled by (resolution/224)^2 - approximate at other sizes). GFLOP/s = images/s x 2 x
multiply-adds, x3 for a training step. `--compare tf_keras` adds rows for the same model from
tf_keras.applications (Keras 2) and a ratio column vs those rows; `--compare keras` for keras.applications.
Each implementation is timed on two harnesses (`train_on_batch`/`predict_on_batch` and a plain tf.function step)
in alternating rounds (--rounds, --steps per round); the table shows each implementation's fastest path
(--all_harnesses: both) and the ratios compare fastest paths (docs/SPEED.md). Comparison rows default to 1 warmup
+ 1 timed step per round (--compare_warmup / --compare_steps), because tf_keras RegNet training is very slow on
CPU (RegNetY016 at 224, batch 16: ~35 s per step). Same as the console script `regnet-benchmark`.
"""

from regnet_tf.cli.benchmark import run

if __name__ == "__main__":
    run()
