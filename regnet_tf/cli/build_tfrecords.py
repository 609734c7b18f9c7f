"""`regnet-build-tfrecords` / `python launch/build_tfrecords.py`: an image folder -> ImageNet-format TFRecord shards
and a label map (`regnet_tf.data.records.folder_to_tfrecords`). Usage: see launch/build_tfrecords.py."""

from __future__ import annotations

import sys

from absl import app, flags

from regnet_tf import cli
from regnet_tf.data.config import MAX_PIXELS, SPLITS  # no TensorFlow at import

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("input", None, "Image folder: <input>/<class name>/<image>.")
    flags.DEFINE_string("output", None, "Output directory for the shards and label_map.txt.")
    flags.DEFINE_integer("shards", 8, "Number of shards.")
    flags.DEFINE_enum("split", SPLITS[0], SPLITS, "Shard name prefix: <split>-00000-of-000NN.")
    flags.DEFINE_integer("workers", 4, "Parallel writer threads.")
    flags.DEFINE_integer("max_pixels", MAX_PIXELS, "Skip (and report) an image whose header declares more decoded "
                         "pixels (frames x height x width) than this; checked before decoding. 0: no limit.")
    flags.mark_flags_as_required(["input", "output"])
    flags.register_validator("shards", lambda n: n >= 1, "--shards must be positive")
    flags.register_validator("workers", lambda n: n >= 1, "--workers must be positive")
    flags.register_validator("max_pixels", lambda n: n >= 0, "--max_pixels must be >= 0 (0: no limit)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from regnet_tf.data.records import folder_to_tfrecords  # imports TensorFlow: only after cli.run set the environment

    result = folder_to_tfrecords(FLAGS.input, FLAGS.output, FLAGS.shards, split=FLAGS.split, workers=FLAGS.workers,
                                 log=lambda m: print(m, file=sys.stderr, flush=True), max_pixels=FLAGS.max_pixels)
    big = len(result["over_budget"])
    print(f"wrote {result['written']} images of {len(result['classes'])} classes into {len(result['files'])} "
          f"shards in {FLAGS.output} (label map: label_map.txt); skipped {result['skipped'] - big} corrupt images "
          f"and {big} over the pixel budget (--max_pixels={FLAGS.max_pixels})")


def run():
    cli.run(main, define_flags)
