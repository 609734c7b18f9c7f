"""`regnet-eval` / `python launch/eval.py`: evaluate a checkpoint (a model_dir), an exported SavedModel, an exported
TFLite / ONNX / OpenVINO file, or a model with trained weights (`--model` + `--weights`, with the weights' own eval
settings) on a data source. Usage: see launch/eval.py.

`--data imagenet_v2` evaluates on ImageNetV2 (TFDS `imagenet_v2`, the variant `--imagenet_v2`, prepared in the TFDS
data_dir `--data_dir`; docs/DATA.md "ImageNetV2") with the run's or the weights' eval view:

    python launch/eval.py --model regnety_016 --weights imagenet --data imagenet_v2 --data_dir ~/tensorflow_datasets
    python launch/eval.py --model_dir runs/rs50 --data imagenet_v2 --imagenet_v2 topimages --data_dir DIR
"""

from __future__ import annotations

import json

from absl import flags

from regnet_tf import cli
from regnet_tf.cli.shortcuts import shortcut_overrides
from regnet_tf.data.config import DATA_SOURCES, IMAGENET_V2_VARIANTS, PIPELINE_SPLITS, imagenet_v2_fields
from regnet_tf.runtimes import PRECISIONS
from regnet_tf.train import recipe as recipe_lib

FLAGS = flags.FLAGS
IMAGENET_V2 = "imagenet_v2"  # --data imagenet_v2: TFDS imagenet_v2, not a DataConfig source (it is source "tfds")


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py (its last checkpoint).")
    flags.DEFINE_string("saved_model", None, "An exported SavedModel directory (instead of --model_dir).")
    flags.DEFINE_string("tflite", None, "An exported .tflite file (launch/export.py --format tflite[_fp16|_int8]).")
    flags.DEFINE_string("onnx", None, "An exported .onnx file (launch/export.py --format onnx).")
    flags.DEFINE_string("openvino", None, "An exported OpenVINO .xml file (launch/export.py --format openvino).")
    flags.DEFINE_integer("threads", None, "Exported files: the runtime's threads (default: its own).")
    flags.DEFINE_enum("precision", "f32", PRECISIONS, "With --openvino: the CPU plugin's inference "
                      "precision; bf16 is ~2x faster on CPUs with bfloat16 units and less exact: this measures what "
                      "it costs on your data.")
    flags.DEFINE_string("model", None, "A registered model with --weights (instead of --model_dir).")
    flags.DEFINE_string("weights", "imagenet", "With --model: imagenet, a tag of public weights or a weights file.")
    flags.DEFINE_enum("data", None, (*DATA_SOURCES, IMAGENET_V2), "Data source (default: the run's); imagenet_v2: "
                      "ImageNetV2 (TFDS imagenet_v2, variant --imagenet_v2) in the TFDS data_dir --data_dir.")
    flags.DEFINE_enum("imagenet_v2", IMAGENET_V2_VARIANTS[0], IMAGENET_V2_VARIANTS,
                      "The ImageNetV2 variant of --data imagenet_v2 (given alone, it implies --data imagenet_v2).")
    flags.DEFINE_string("data_dir", None, "Data directory (default: the run's; for --data imagenet_v2: TFDS's "
                        "default, ~/tensorflow_datasets or $TFDS_DATA_DIR).")
    flags.DEFINE_enum("split", "validation", PIPELINE_SPLITS, "Split to evaluate (minival: the training shards a "
                      "recipe with data.minival_shards holds out).")
    flags.DEFINE_integer("batch_size", 100, "Batch size.")
    flags.DEFINE_integer("steps", 0, "Evaluate only this many batches (0: the whole split).")
    flags.DEFINE_multi_string("set", [], "Recipe overrides for the data (e.g. data.eval_pattern=val-*).")


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    files = {flag: FLAGS[flag].value for flag in ("tflite", "onnx", "openvino") if FLAGS[flag].value}
    if sum(map(bool, (FLAGS.model_dir, FLAGS.saved_model, FLAGS.model))) + len(files) != 1:
        raise ValueError("give exactly one of --model_dir (a checkpoint), --saved_model (an export), --tflite / "
                         "--onnx / --openvino (an exported file) and --model (with --weights)")
    if FLAGS.precision != "f32" and "openvino" not in files:
        raise ValueError(f"--precision {FLAGS.precision} is OpenVINO's inference precision: use it with --openvino "
                         "F.xml")
    from regnet_tf.data.sources import check_data  # imports TensorFlow: only after cli.run set the environment
    from regnet_tf.train import evaluate

    overrides = _data_overrides() + FLAGS.set
    if FLAGS.model:
        m, what, recipe = _evaluate_weights(recipe_lib, check_data, evaluate, overrides)
    elif files:
        (flag, path), = files.items()
        _check_extension(flag, path)
        recipe = recipe_lib.from_dict(recipe_lib.apply_overrides({}, overrides))
        check_data(recipe.data, (FLAGS.split,))
        m, info = evaluate.evaluate_file(path, recipe.data, FLAGS.split, FLAGS.batch_size, FLAGS.steps,
                                         FLAGS.threads, FLAGS.precision)
        what = f"{info['format']} {path}" + (f" at {FLAGS.precision}" if FLAGS.precision != "f32" else "")
    elif FLAGS.saved_model:
        recipe = recipe_lib.from_dict(recipe_lib.apply_overrides({}, overrides))
        check_data(recipe.data, (FLAGS.split,))
        m = evaluate.evaluate_saved_model(FLAGS.saved_model, recipe.data, FLAGS.split, FLAGS.batch_size, FLAGS.steps)
        what = f"SavedModel {FLAGS.saved_model}"
    else:
        from regnet_tf.train.trainer import Trainer  # imports TensorFlow (as above)

        recipe = evaluate.load_run(FLAGS.model_dir, overrides + [f"train.global_batch_size={FLAGS.batch_size}"])
        check_data(recipe.data, (FLAGS.split,))
        trainer = Trainer(recipe, FLAGS.model_dir)
        step = trainer.restore_or_fail("evaluate")
        m = trainer.evaluate(steps=FLAGS.steps, split=FLAGS.split)
        what = f"{FLAGS.model_dir} step {step} ({trainer.weights_note().lstrip(', ') or 'raw weights'})"
    data = recipe.data
    on = (f"ImageNetV2 {data.imagenet_v2_variant} (TFDS {data.tfds_name} {data.tfds_eval_split})"
          if data.imagenet_v2_variant else f"{data.source} {FLAGS.split}")
    print(f"{what} on {on}: top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}% ({m['examples']} images)")


def _data_overrides():
    """--data and --data_dir as recipe overrides. --data imagenet_v2 (or --imagenet_v2 alone): the data fields of
    `config.imagenet_v2_fields` (source tfds, imagenet_v2/<variant>, its test split, the sizes of ImageNetV2, no
    minival) on the run's or the default recipe, whose eval view (size, crop, resize) stays."""
    if FLAGS.data != IMAGENET_V2 and not FLAGS["imagenet_v2"].present:
        return shortcut_overrides(FLAGS.data, FLAGS.data_dir)
    if FLAGS.data not in (None, IMAGENET_V2):
        raise ValueError(f"--imagenet_v2 picks the variant of --data imagenet_v2; got --data {FLAGS.data}")
    return imagenet_v2_overrides(FLAGS.imagenet_v2, FLAGS.data_dir)


def imagenet_v2_overrides(variant, data_dir=None):
    """`config.imagenet_v2_fields` as `data.key=value` recipe overrides (values as YAML: JSON)."""
    return [f"data.{key}={json.dumps(value)}" for key, value in imagenet_v2_fields(variant, data_dir).items()]


def _check_extension(flag, path):
    expected = {"tflite": ".tflite", "onnx": ".onnx", "openvino": ".xml"}[flag]
    if not path.endswith(expected):
        raise ValueError(f"--{flag} takes a {expected} file; got {path}")


def _evaluate_weights(recipe_lib, check_data, evaluate, overrides):
    """--model + --weights: the model with the weights' eval settings (resolution, crop, resize) on the data."""
    import dataclasses

    from regnet_tf.applications import build_model, resolve_weights  # imports TensorFlow (after cli.run)
    from regnet_tf.data import folder

    _, config = resolve_weights(FLAGS.model, FLAGS.weights)
    recipe = recipe_lib.from_dict(recipe_lib.apply_overrides({}, overrides))
    data = recipe.data if config is None else dataclasses.replace(recipe.data, **config.eval_settings())
    data = folder.resolve(data)  # an image folder: its class count (the classifier's outputs) and split sizes
    model = build_model(FLAGS.model, weights=FLAGS.weights, classes=data.num_classes, classifier_activation=None,
                        input_shape=(data.image_size, data.image_size, 3))
    check_data(data, (FLAGS.split,))
    m = evaluate.evaluate_model(model, data, FLAGS.split, FLAGS.batch_size, FLAGS.steps)
    what = f"{FLAGS.model} with weights {FLAGS.weights} at {data.image_size} px"
    return m, what, dataclasses.replace(recipe, data=data)


def run():
    cli.run(main, define_flags)
