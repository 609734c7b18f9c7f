"""Training input pipeline throughput: no augmentation vs our RandAugment vs Keras 3's RandAugment, one run.

    python launch/benchmark_input.py --generate 512              # photo-like 300-500 px JPEGs in a temp dir
    python launch/benchmark_input.py --data_dir /data/imagenet   # train-* TFRecords

Every row is the full training pipeline (regnet_tf.data.input_pipeline) at --image_size; only the augmentation
differs: none; RandAugment (--num_layers, --magnitude; default 2 layers, m=15); keras.layers.RandAugment
(value_range=(0, 255), its defaults) in the same place. The table has images/s and the ratios to the
no-augmentation and Keras rows. Wall-clock numbers: other processes on the machine lower them (--repeats N keeps
the fastest of N runs). --stages adds a table of the per-image CPU time of each step of the training view
(crop window, decode, resize, round and flip, normalize, RandAugment). TensorFlow runs with its BFC CPU
allocator unless --nobfc_allocator (see docs/DATA.md).

Same as the console script `regnet-benchmark-input` (after `pip install -e .`).
"""

from regnet_tf.cli.benchmark_input import run

if __name__ == "__main__":
    run()
