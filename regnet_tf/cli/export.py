"""`regnet-export` / `python launch/export.py`: export a model_dir's last checkpoint (EMA or SWA weights), or a model
with trained weights (`--model` + `--weights`), as a versioned SavedModel for TF Serving and/or as TFLite (float32,
float16, int8), ONNX and OpenVINO files (`--format`, `regnet_tf.deploy`). Usage: see launch/export.py."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.data.config import DATA_SOURCES, PIPELINE_SPLITS
from regnet_tf.deploy import FORMATS, GROUPED_CONV
from regnet_tf.imagenet import class_names
from regnet_tf.train import recipe as recipe_lib

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py.")
    flags.DEFINE_string("model", None, "A registered model with --weights (instead of --model_dir).")
    flags.DEFINE_string("weights", "imagenet", "With --model: imagenet, a tag of public weights or a weights file.")
    flags.DEFINE_integer("image_size", None, "With --model: the input size (default: the weights' eval size, else "
                         "the model's resolution).")
    flags.DEFINE_string("export_dir", None, "Output directory: the SavedModel's version directory, and the directory "
                        "of the other formats' files (default: model_dir/export/<step>, model_dir/deploy/<step>).")
    flags.DEFINE_list("format", ["saved_model"], f"Comma-separated formats: {', '.join(FORMATS)}.")
    flags.DEFINE_bool("overwrite", False, "Replace an existing export.")
    flags.DEFINE_bool("fold_batch_norm", True, "Fold BatchNormalization into the convolutions before it.")
    flags.DEFINE_enum("grouped_conv", "native", GROUPED_CONV, "File formats: grouped convolutions as they are, or as "
                      "split + convolutions + concat (for runtimes without grouped convolutions).")
    flags.DEFINE_enum("data", None, DATA_SOURCES, "Calibration data of tflite_int8 (default: the run's).")
    flags.DEFINE_string("data_dir", None, "Its directory (default: the run's).")
    flags.DEFINE_multi_string("set", [], "Recipe overrides for the data (e.g. data.train_pattern=train-0000*).")
    flags.DEFINE_integer("calibration_images", 200, "tflite_int8: calibrate on this many images of the data.")
    flags.DEFINE_enum("calibration_split", "train", PIPELINE_SPLITS, "tflite_int8: the split they come from, "
                      "through the eval view (center crop and resize).")
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


def _formats():
    formats = [f.strip() for f in FLAGS.format if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown --format {','.join(unknown) or '(none)'}; valid: {', '.join(FORMATS)}")
    from regnet_tf.runtimes import check_tools

    for fmt in formats:
        if fmt != "saved_model":
            check_tools(fmt)  # before any model is built
    return sorted(set(formats), key=FORMATS.index)  # the SavedModel first: it wants an empty directory


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if bool(FLAGS.model_dir) == bool(FLAGS.model):
        raise ValueError("give exactly one of --model_dir (a training run) and --model (with --weights)")
    formats = _formats()
    if FLAGS.model:
        return _export_weights(formats)
    from regnet_tf.train.evaluate import load_run  # imports TensorFlow: only after cli.run set the environment
    from regnet_tf.train.trainer import Trainer

    recipe = load_run(FLAGS.model_dir, shortcut_overrides(FLAGS.data, FLAGS.data_dir) + FLAGS.set)
    trainer = Trainer(recipe, FLAGS.model_dir)
    step = trainer.restore_or_fail("export")
    weights = trainer.weights_note().lstrip(", ") or "raw weights"
    if "saved_model" in formats:
        export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export", str(step))
        path = trainer.export(export_dir, overwrite=FLAGS.overwrite or FLAGS.export_dir is None,
                              fold=FLAGS.fold_batch_norm, **_limits())
        print(f"exported step {step} of {recipe.name} ({weights}) to {path}")
    files = [f for f in formats if f != "saved_model"]
    if files:
        from regnet_tf.data import sources
        from regnet_tf.train.export import label_names

        model, metadata = trainer.inference_model()
        d = trainer.recipe.data  # a folder's: resolved, with the run's split and label map
        label_map = sources.label_map_path(d)
        names = label_names(label_map, d.stored_label_offset, d.num_classes) if label_map else None
        export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "deploy", str(step))
        _export_files(files, model, export_dir, d, names, metadata, overwrite=FLAGS.overwrite)
        print(f"exported step {step} of {recipe.name} ({weights}) as {', '.join(files)} to {export_dir}")


def _export_files(formats, model, export_dir, data, names, metadata, overwrite):
    """The file formats of `regnet_tf.deploy`, int8 calibrated on `data`."""
    from regnet_tf import deploy
    from regnet_tf.data.sources import check_data

    calibration = None
    if "tflite_int8" in formats:
        check_data(data, (FLAGS.calibration_split,))
        calibration = deploy.calibration_images(data, FLAGS.calibration_images, FLAGS.calibration_split)
        metadata = {**metadata, "calibration": f"{len(calibration)} {data.source} {FLAGS.calibration_split} images"}
    for fmt in formats:
        deploy.export_file(model, export_dir, fmt, image_size=data.image_size, preprocessing=data.eval_preprocessing,
                           class_names=names, calibration=calibration, fold=FLAGS.fold_batch_norm,
                           grouped_conv=FLAGS.grouped_conv, metadata=metadata, overwrite=overwrite)


def _export_weights(formats):
    """--model + --weights: the model with the weights' eval settings and, for 1000 classes, the ImageNet class
    names; int8 calibrated on --data."""
    import dataclasses

    if not FLAGS.export_dir:
        raise ValueError("--model needs --export_dir (for a SavedModel a version directory, e.g. "
                         "serving/regnety_040/1)")
    if "tflite_int8" in formats and not FLAGS.data:
        raise ValueError("--format tflite_int8 calibrates on real images: give --data (and --data_dir) with images "
                         "like the ones the model will see, e.g. --data folder --data_dir photos/")
    from regnet_tf.applications import build_model, resolve_weights  # imports TensorFlow (after cli.run)
    from regnet_tf.train.export import export_saved_model

    path, config = resolve_weights(FLAGS.model, FLAGS.weights)
    settings = config.eval_settings() if config else {"image_size": None}
    size = FLAGS.image_size or settings["image_size"]
    model = build_model(FLAGS.model, weights=path, classes=config.classes if config else 1000,
                        classifier_activation=None, input_shape=(size, size, 3) if size else None)
    size = size or model.input_shape[1]
    names = class_names() if model.output_shape[-1] == 1000 else None
    metadata = {"model": FLAGS.model, "weights": config.tag if config else FLAGS.weights}
    if "saved_model" in formats:
        out = export_saved_model(
            model, FLAGS.export_dir, image_size=size, eval_mode="crop_fraction",
            crop_fraction=settings.get("eval_crop_fraction", 0.875),
            resize_method=settings.get("resize_method", "bilinear"),
            label_map=dict(enumerate(names)) if names else None, metadata=metadata,
            overwrite=FLAGS.overwrite, fold=FLAGS.fold_batch_norm, **_limits())
        print(f"exported {FLAGS.model} with weights {FLAGS.weights} ({size} px) to {out}")
    files = [f for f in formats if f != "saved_model"]
    if files:
        data = recipe_lib.from_dict(recipe_lib.apply_overrides(
            {}, shortcut_overrides(FLAGS.data or "demo", FLAGS.data_dir) + FLAGS.set)).data
        data = dataclasses.replace(data, image_size=size, **{k: v for k, v in settings.items() if k != "image_size"})
        _export_files(files, model, FLAGS.export_dir, data, names, metadata, overwrite=FLAGS.overwrite)
        print(f"exported {FLAGS.model} with weights {FLAGS.weights} ({size} px) as {', '.join(files)} to "
              f"{FLAGS.export_dir}")


def run():
    cli.run(main, define_flags)
