"""`regnet-convert` / `python launch/convert.py`: convert timm, pycls, tf_keras or Keras weights into a regnet_tf
`.weights.h5` (which carries what the weights need: padding, BN epsilon, input adapter, eval settings). Usage: see
launch/convert.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli, zoo
from regnet_tf.data.config import RESIZE_METHODS
from regnet_tf.weights import WEIGHT_SOURCES, convert_file

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_enum("from", None, sorted(WEIGHT_SOURCES), "Where the weights come from.")
    flags.DEFINE_string("model", None, "Our registered model name (python launch/models.py lists them).")
    flags.DEFINE_string("input", None, "The source file: .safetensors / .npz / .pth (timm), .pyth (pycls), .h5 "
                                       "(tf_keras / Keras weights or model).")
    flags.DEFINE_string("output", None, "The converted weights, a .weights.h5 file.")
    flags.DEFINE_string("arch", "", "The source's own model name when it matters (timm tf_efficientnet_b0: "
                                    "TensorFlow padding and BN epsilon).")
    flags.DEFINE_string("tag", "", "A name for these weights, kept in the file.")
    flags.DEFINE_integer("input_size", None, "Eval resolution the weights were measured at (default: the model's).")
    flags.DEFINE_float("crop_fraction", 0.875, "Eval center-crop fraction the weights were measured with.")
    flags.DEFINE_enum("interpolation", "bilinear", RESIZE_METHODS, "Eval resize method of the weights.")
    flags.DEFINE_integer("classes", 1000, "Classes of the source's classifier.")
    for name in ("from", "model", "input", "output"):
        flags.mark_flag_as_required(name)


def main(argv):
    del argv
    entry = zoo.get_entry(FLAGS.model)
    source = FLAGS["from"].value
    config = convert_file(source, entry.name, FLAGS.input, FLAGS.output, arch=FLAGS.arch, tag=FLAGS.tag,
                          classes=FLAGS.classes, input_size=FLAGS.input_size or entry.resolution,
                          crop_fraction=FLAGS.crop_fraction, interpolation=FLAGS.interpolation)
    print(f"converted {source} weights {FLAGS.input} -> {FLAGS.output} ({entry.name})")
    for key, value in sorted(config.spec.items()):
        print(f"  spec option: {key} = {value}")
    if config.input_adapter():
        print(f"  input adapter: the weights expect RGB normalized with mean {list(config.input_mean)} and std "
              f"{list(config.input_std)}; the model computes that from the usual input")
    for note in config.notes:
        print(f"  note: {note}")
    print(f"use: regnet_tf.applications.{entry.factory}(weights={FLAGS.output!r})")


def run():
    cli.run(main, define_flags)
