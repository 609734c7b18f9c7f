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

Exported formats side by side (inference; docs/SPEED.md "Exported formats and folded batch norm"):

    python launch/benchmark.py --model regnety_016,efficientnet_b0 --formats keras,saved_model,tflite,onnx,openvino
    python launch/benchmark.py --model regnety_016 --formats keras_folded,keras_xla,onnx --compare timm --batch 16

`--formats` (keras, keras_folded, keras_xla, saved_model, saved_model_unfolded, tflite, tflite_fp16, tflite_int8,
onnx, openvino, openvino_bf16) exports each model (random init) once into a temporary directory, int8 calibrated
on the built-in demo data, then times every format in alternating rounds: batch-1 latency (median and p90 ms over
--rounds x --latency_steps calls) and batch-N throughput (--steps calls per round), warm-up excluded, each thread
count of --threads (default 1,2) in its own child process. --grouped_conv native|split|both exports grouped
convolutions as they are and/or split (rows "+split"); --nofold_batch_norm keeps BatchNormalization in the files.
--compare timm adds timm's model in PyTorch (NCHW, channels_last, and torch.compile, which needs a C++ compiler; needs
torch and timm). The ratio columns compare with --baseline (default: timm's fastest row with --compare timm, else
keras, else saved_model).
"""

from regnet_tf.cli.benchmark import run

if __name__ == "__main__":
    run()
