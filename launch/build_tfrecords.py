"""Image folder -> ImageNet-format TFRecord shards plus a label map, in parallel, with a progress bar.

    python launch/build_tfrecords.py --input photos/train --output records --shards 8 [--split train] [--workers 4]

The input is root/<class name>/*.jpg|jpeg|png|gif|bmp|webp|jxl (the formats of regnet_tf.data.format); classes
sorted by name get ids 0..N-1, stored 1-based in `image/class/label` (the ImageNet convention, read back with the
default label_offset=-1). Writes <output>/<split>-00000-of-000NN ... and <output>/label_map.txt. Every image is
decoded once: a corrupt or truncated image is reported on stderr and skipped, and the summary counts it.
`--max_pixels N` (default 64,000,000; 0: no limit) skips, names and counts images whose header declares more than
N decoded pixels (frames x height x width), read before decoding.

Same as the console script `regnet-build-tfrecords` (after `pip install -e .`).
"""

from regnet_tf.cli.build_tfrecords import run

if __name__ == "__main__":
    run()
