"""`regnet-benchmark-input` / `python launch/benchmark_input.py`: training input pipeline throughput (no
augmentation, our RandAugment, Keras 3's RandAugment; `regnet_tf.data.bench`). Usage: see
launch/benchmark_input.py."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from absl import app, flags

from regnet_tf import cli
from regnet_tf.data import bench  # no TensorFlow at import: its VARIANTS are the flag's choices

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("data_dir", None, "Directory with train-* JPEG TFRecords.")
    flags.DEFINE_integer("generate", None, "Generate this many photo-like JPEGs into a temp dir instead.")
    flags.DEFINE_integer("min_size", 300, "Generated image size range (height and width), low.")
    flags.DEFINE_integer("max_size", 500, "Generated image size range (height and width), high.")
    flags.DEFINE_integer("image_size", 224, "Output resolution.")
    flags.DEFINE_integer("batch", 64, "Batch size.")
    flags.DEFINE_float("seconds", 10.0, "Timed seconds per variant (after the warmup batches).")
    flags.DEFINE_integer("warmup", 3, "Untimed batches per variant.")
    flags.DEFINE_integer("num_layers", 2, "RandAugment layers.")
    flags.DEFINE_float("magnitude", 15.0, "RandAugment magnitude.")
    flags.DEFINE_bool("normalize", True, "Normalize to float32 in the pipeline (--nonormalize: uint8 output, for "
                      "models that normalize on the device with include_preprocessing=True).")
    flags.DEFINE_list("variants", list(bench.VARIANTS), "Which pipelines to time, of " + ",".join(bench.VARIANTS)
                      + " (e.g. none,randaugment skips the slow Keras row).")
    flags.DEFINE_bool("stages", False, "Also print where the per-image CPU time goes: the training view's steps, "
                      "cumulative, on encoded images held in memory (regnet_tf.data.bench.stages).")
    flags.DEFINE_integer("repeats", 1, "Time each variant this many times and keep the fastest run (shared machines).")
    flags.DEFINE_bool("bfc_allocator", True, "Run TensorFlow with its BFC CPU allocator (TF_CPU_ALLOCATOR_USE_BFC="
                      "true): the default allocator maps and page-faults every tensor over 32 MB afresh, e.g. each "
                      "float32 batch of 64 x 224 px images (docs/DATA.md). --nobfc_allocator measures TensorFlow's "
                      "default.")
    flags.register_validator("variants", lambda v: set(v) <= set(bench.VARIANTS),
                             f"--variants must be among {','.join(bench.VARIANTS)}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if (FLAGS.data_dir is None) == (FLAGS.generate is None):
        raise app.UsageError("give exactly one of --data_dir and --generate")
    # read when TensorFlow creates its CPU allocator: before anything imports TensorFlow
    os.environ[bench.BFC_ENV] = "true" if FLAGS.bfc_allocator else "false"

    tmp = None
    data_dir = FLAGS.data_dir
    if FLAGS.generate is not None:
        tmp = data_dir = tempfile.mkdtemp(prefix="regnet_tf_bench_")
        print(f"generating {FLAGS.generate} photo-like JPEGs ({FLAGS.min_size}-{FLAGS.max_size} px) in {tmp}",
              file=sys.stderr, flush=True)
    try:
        if tmp:
            bench.generate_photos(tmp, FLAGS.generate, FLAGS.min_size, FLAGS.max_size)
        print(bench.environment(), flush=True)
        rows = bench.run(data_dir, FLAGS.variants, log=lambda m: print(m, file=sys.stderr, flush=True),
                         image_size=FLAGS.image_size, batch=FLAGS.batch, seconds=FLAGS.seconds,
                         warmup=FLAGS.warmup, num_layers=FLAGS.num_layers, magnitude=FLAGS.magnitude,
                         normalize=FLAGS.normalize, repeats=FLAGS.repeats)
        print(bench.format_table(rows))
        if FLAGS.stages:
            print(f"timing the training view's steps ({FLAGS.seconds:g} s each)", file=sys.stderr, flush=True)
            print()
            print(bench.format_stages(bench.stages(data_dir, image_size=FLAGS.image_size, batch=FLAGS.batch,
                                                   seconds=FLAGS.seconds, num_layers=FLAGS.num_layers,
                                                   magnitude=FLAGS.magnitude, repeats=FLAGS.repeats)))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def run():
    cli.run(main, define_flags)
