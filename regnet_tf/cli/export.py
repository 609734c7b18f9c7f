"""`regnet-export` / `python launch/export.py`: export a model_dir's last checkpoint (EMA or SWA weights), or a model with
trained weights (`--model` + `--weights`), as a versioned SavedModel for TF Serving. Usage: see launch/export.py."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli
from regnet_tf.imagenet import class_names

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py.")
    flags.DEFINE_string("model", None, "A registered model with --weights (instead of --model_dir).")
    flags.DEFINE_string("weights", "imagenet", "With --model: imagenet, a tag of public weights or a weights file.")
    flags.DEFINE_string("export_dir", None, "Versioned output directory (default: model_dir/export/<step>).")
    flags.DEFINE_bool("overwrite", False, "Replace an existing export_dir.")
    flags.DEFINE_integer("max_pixels", None, "Serving limit: decoded pixels per image (frames x height x width, read "
                         "from the header before decoding); 0: no limit. Default: the recipe's data.max_pixels, "
                         "else 64000000.")
    flags.DEFINE_integer("max_batch", None, "Serving limit: images per request; 0: no limit. Default 256.")
    flags.DEFINE_integer("max_request_bytes", None, "Serving limit: encoded bytes per serving_default request; "
                         "0: no limit. Default 67108864 (64 MiB).")
    flags.DEFINE_bool("name_decode_errors", None, "A file the decoder refuses fails naming its index "
                      "(image_bytes[i]), at ~25-50 ms more per request; default off (TensorFlow's decoder message).")


def _limits():
    """The request limits given on the command line (the others keep their defaults)."""
    names = ("max_pixels", "max_batch", "max_request_bytes", "name_decode_errors")
    return {name: FLAGS[name].value for name in names if FLAGS[name].value is not None}


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if bool(FLAGS.model_dir) == bool(FLAGS.model):
        raise ValueError("give exactly one of --model_dir (a training run) and --model (with --weights)")
    if FLAGS.model:
        return _export_weights()
    from regnet_tf.train.evaluate import load_run  # imports TensorFlow: only after cli.run set the environment
    from regnet_tf.train.trainer import Trainer

    recipe = load_run(FLAGS.model_dir)
    trainer = Trainer(recipe, FLAGS.model_dir)
    step = trainer.restore_or_fail("export")
    export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export", str(step))
    path = trainer.export(export_dir, overwrite=FLAGS.overwrite or FLAGS.export_dir is None, **_limits())
    print(f"exported step {step} of {recipe.name} ({trainer.weights_note().lstrip(', ') or 'raw weights'}) to {path}")


def _export_weights():
    """--model + --weights: a SavedModel of the model with the weights' eval settings and, for 1000 classes, the
    ImageNet class names."""
    from regnet_tf.applications import build_model, resolve_weights  # imports TensorFlow (after cli.run)
    from regnet_tf.train.export import export_saved_model

    if not FLAGS.export_dir:
        raise ValueError("--model needs --export_dir (a version directory, e.g. serving/regnety_040/1)")
    path, config = resolve_weights(FLAGS.model, FLAGS.weights)
    settings = config.eval_settings() if config else {"image_size": None}
    size = settings["image_size"]
    model = build_model(FLAGS.model, weights=path, classes=config.classes if config else 1000,
                        classifier_activation=None, input_shape=(size, size, 3) if size else None)
    size = size or model.input_shape[1]
    labels = dict(enumerate(class_names())) if model.output_shape[-1] == 1000 else None
    out = export_saved_model(
        model, FLAGS.export_dir, image_size=size, eval_mode="crop_fraction",
        crop_fraction=settings.get("eval_crop_fraction", 0.875),
        resize_method=settings.get("resize_method", "bilinear"),
        label_map=labels, metadata={"model": FLAGS.model, "weights": config.tag if config else FLAGS.weights},
        overwrite=FLAGS.overwrite, **_limits())
    print(f"exported {FLAGS.model} with weights {FLAGS.weights} ({size} px) to {out}")


def run():
    cli.run(main, define_flags)
