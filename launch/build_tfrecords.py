"""Image folder -> ImageNet-format TFRecord shards plus a label map, in parallel, with a progress bar.

    python launch/build_tfrecords.py --input photos/train --output records --shards 8 [--split train] [--workers 4]

The input is root/<class name>/*.jpg|jpeg|png|bmp|gif; classes sorted by name get ids 0..N-1, stored 1-based in
`image/class/label` (the ImageNet convention, read back with the default label_offset=-1). Writes
<output>/<split>-00000-of-000NN ... and <output>/label_map.txt. Every image is decoded once: a corrupt or
truncated image is reported on stderr and skipped, and the summary counts it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # fallback if not installed

from absl import app, flags  # noqa: E402

flags.DEFINE_string("input", None, "Image folder: <input>/<class name>/<image>.")
flags.DEFINE_string("output", None, "Output directory for the shards and label_map.txt.")
flags.DEFINE_integer("shards", 8, "Number of shards.")
flags.DEFINE_string("split", "train", "Shard name prefix (train, validation).")
flags.DEFINE_integer("workers", 4, "Parallel writer threads.")
flags.mark_flags_as_required(["input", "output"])
flags.register_validator("shards", lambda n: n >= 1, "--shards must be positive")
flags.register_validator("workers", lambda n: n >= 1, "--workers must be positive")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from regnet_tf.data.records import folder_to_tfrecords

    try:
        result = folder_to_tfrecords(FLAGS.input, FLAGS.output, FLAGS.shards, split=FLAGS.split,
                                     workers=FLAGS.workers, log=lambda m: print(m, file=sys.stderr, flush=True))
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {result['written']} images of {len(result['classes'])} classes into {len(result['files'])} "
          f"shards in {FLAGS.output} (label map: label_map.txt); skipped {result['skipped']} corrupt images")


if __name__ == "__main__":
    app.run(main)
