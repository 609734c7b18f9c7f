"""Train a model from a recipe (recipes/**/<name>.yaml); resumes from --model_dir's last checkpoint.

    python launch/train.py --recipe demo                                     # built-in demo data, ~3 min on 2 cores
    python launch/train.py --list_recipes
    python launch/train.py --recipe resnet_rs_152_224 --data_dir /data/imagenet --model_dir runs/rs152
    python launch/train.py --recipe resnet_rs_50_160 --data demo --set data.image_size=64 --epochs 2
    python launch/train.py --recipe regnety_016_zoo --data_dir /data/imagenet --strategy mirrored   # all GPUs
    TF_CONFIG=... python launch/train.py --recipe ... --strategy multi_worker                        # each worker
    python launch/train.py --recipe resnet_rs_350_320 --strategy tpu --tpu local --data_dir gs://...  # TPU VM
    python launch/train.py --recipe demo --model_dir runs/demo --eval_only

Prints the resolved recipe and the model's complexity, shows Keras progress bars, writes TensorBoard scalars
(model_dir/train, model_dir/validation), a JSON-lines log (model_dir/metrics.jsonl), checkpoints
(model_dir/checkpoints) and, at the end, a SavedModel (model_dir/export/<step>).

Same as the console script `regnet-train` (after `pip install -e .`); `--verbose` shows the traceback of an
error.
"""

from regnet_tf.cli.train import run

if __name__ == "__main__":
    run()
