"""A finished run from outside the training loop: its recipe, a serving copy of its model, and the evaluation of an
exported SavedModel through its `serving_default` signature (image bytes in, preprocessing in the graph) or of an
exported file (TFLite, ONNX, OpenVINO: `evaluate_file`). Also the top-k count (`topk_correct`) that the training
loop's evaluation uses too.

    recipe = load_run("runs/demo", overrides=["data.data_dir=/data"])
    metrics = evaluate_saved_model("runs/demo/export/390", recipe.data)
"""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf
import yaml

from regnet_tf.data import folder
from regnet_tf.data.sources import encoded_dataset, input_pipeline
from regnet_tf.files import write_atomic
from regnet_tf.models.common import keras_model
from regnet_tf.train import TrainingError, distribute, swa
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.zoo import complexity, resolve


def load_run(model_dir, overrides=()):
    """The recipe a model_dir was trained with (model_dir/recipe.yaml), with `overrides` applied."""
    path = os.path.join(model_dir, "recipe.yaml")
    if not os.path.exists(path):
        raise TrainingError(f"{model_dir} holds no recipe.yaml: not a model_dir written by launch/train.py "
                            "(or the path is wrong)")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return recipe_lib.from_dict(recipe_lib.apply_overrides(raw, overrides), name=raw.get("name", ""))


def describe_run(trainer):
    """A Trainer's multi-line summary: the model, its complexity at the training resolution, the run's shape."""
    r, cx = trainer.recipe, None
    try:
        cx = complexity(trainer.spec, r.data.image_size, trainer.num_classes)
    except Exception:  # noqa: BLE001 - the summary never blocks training
        pass
    s = r.model.scale
    name = f"{s['base']} scaled x{s['factor']:g} ({s['strategy']})" if s else r.model.name or r.model.kind
    lines = [f"model: {name} {type(trainer.spec).__name__} at {r.data.image_size} px, "
             f"{trainer.num_classes} classes"]
    if cx:
        lines.append(f"complexity: {cx['flops'] / 1e9:.3f} GMACs (multiply-adds), {cx['params'] / 1e6:.3f} M "
                     f"params, {cx['acts'] / 1e6:.3f} M acts")
    lines.append(f"strategy: {distribute.strategy_name(trainer.strategy)} with "
                 f"{trainer.strategy.num_replicas_in_sync} replica(s); precision {trainer.policy}; XLA "
                 f"{'on' if trainer.xla else 'off'}")
    total, spe = trainer.total_steps, trainer.steps_per_epoch
    lines.append(f"schedule: {total} steps ({total / spe:.2f} epochs of {spe} steps), global batch "
                 f"{r.train.global_batch_size}, peak lr {r.peak_lr():.4g} ({r.schedule.name})")
    if trainer.init is not None:
        lines.append(f"fine-tuning from {trainer.init.source}: {trainer.plan.describe(spe)}")
    if r.swa.enabled:
        first, period = swa.snapshot_steps(total, spe, r.swa.start, r.swa.every_epochs)
        lines.append(f"SWA: a snapshot every {period} steps from step {first} on and at step {total}; BN statistics "
                     f"recomputed on {r.swa.bn_examples or 'an epoch of'} training images before evaluation/export")
    return "\n".join(lines)


def write_run_recipe(model_dir, recipe, log=print):
    """Writes model_dir/recipe.yaml (atomically); refuses a model_dir started with another model, logs other
    changes."""
    path = os.path.join(model_dir, "recipe.yaml")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = recipe_lib.from_dict(yaml.safe_load(f))
        changes = recipe_lib.diff(old, recipe)
        model_changes = {k: v for k, v in changes.items() if k.startswith("model.")
                         or k in ("data.image_size", "data.num_classes")}
        if model_changes:
            raise TrainingError(f"{model_dir} holds a run of a different model ({model_changes}); its "
                                "checkpoints cannot be resumed with this recipe. Use another --model_dir.")
        if changes:
            log(f"note: the recipe differs from the one this model_dir was started with: {changes}")
    write_atomic(path, recipe.to_yaml())


def run_model(spec, recipe, weights_config=None):
    """The Keras model a run trains: `spec` at the recipe's image size and class count, logits out, built for the
    weights it starts from (`weights_config` of converted weights: their padding, BN epsilon, input adapter)."""
    size = recipe.data.image_size
    name = recipe.model.name or type(spec).__name__.replace("Spec", "").lower()
    return keras_model(resolve(spec), keras.Input(shape=(size, size, 3)), weights_config=weights_config,
                       classes=recipe.data.num_classes, classifier_activation=None, name=name)


def serving_model(spec, recipe, weights, weights_config=None):
    """A float32 copy of the model (outside any strategy) holding `weights`."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        model = run_model(spec, recipe, weights_config)
        model.set_weights(weights)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return model


def topk_correct(labels, logits, k):
    """Number of examples whose class (argmax of soft labels) is among the top-k logits: the top-1 / top-5 count
    of the training loop's evaluation and of `evaluate_model` / `evaluate_saved_model`."""
    if not labels.dtype.is_integer:
        labels = tf.argmax(labels, axis=-1)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    k = min(k, logits.shape[-1])
    return tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, tf.cast(logits, tf.float32), k), tf.float32))


def _accuracy(batches, predict, steps, what):
    """Top-1 / top-5 over (inputs, labels) batches of ``predict(inputs) -> logits``; ``steps`` > 0 stops early."""
    top1 = top5 = count = 0
    for i, (inputs, labels) in enumerate(batches):
        if steps and i >= steps:
            break
        logits = predict(inputs)
        top1 += float(topk_correct(labels, logits, 1))
        top5 += float(topk_correct(labels, logits, 5))
        count += int(labels.shape[0])
    if not count:
        raise TrainingError(f"no {what} images found")
    return {"top1": 100.0 * top1 / count, "top5": 100.0 * top5 / count, "examples": count}


def evaluate_model(model, data_config, split="validation", batch_size=100, steps=0):
    """Top-1 / top-5 of a Keras model (logits or probabilities out) on a data source's split, through the eval
    pipeline of ``data_config`` (its crop, resize and normalization)."""
    batches = input_pipeline(data_config, split, batch_size, training=False)
    return _accuracy(batches, tf.function(lambda x: model(x, training=False)), steps,
                     f"{split} {data_config.source}")


def evaluate_file(path, data_config, split="validation", batch_size=100, steps=0, threads=None, precision="f32"):
    """Top-1 / top-5 of an exported file (`regnet_tf.deploy`: .tflite, .onnx, OpenVINO .xml) on a data source's
    split: the eval pipeline's uint8 pixels at the file's image size, crop and resize (its sidecar), fed to its
    runtime (`precision`: OpenVINO's, `regnet_tf.runtimes.load`). Returns the metrics and the sidecar."""
    from regnet_tf import runtimes

    runner = runtimes.load(path, threads=threads, precision=precision)
    info, data_config = runner.info, folder.resolve(data_config)
    if data_config.num_classes != info["num_classes"]:
        raise TrainingError(f"{path} has {info['num_classes']} classes and the {data_config.source} data "
                            f"{data_config.num_classes}: evaluate it on the data it was trained for")
    p = info["preprocessing"]
    data = dataclasses.replace(data_config, image_size=info["image_size"], eval_mode=p["eval_mode"],
                               eval_crop_fraction=p.get("crop_fraction", data_config.eval_crop_fraction),
                               eval_short_side=p.get("short_side"), resize_method=p["resize_method"],
                               normalize=False)
    batches = input_pipeline(data, split, batch_size, training=False)
    return _accuracy(batches, lambda images: runner(images.numpy()), steps, f"{split} {data.source}"), info


def evaluate_saved_model(export_dir, data_config, split="validation", batch_size=100, steps=0):
    """Top-1 / top-5 of an exported SavedModel through its `serving_default` signature (image bytes in), i.e. with
    the preprocessing inside the graph, on a data source's split."""
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    return _accuracy(encoded_dataset(data_config, split).batch(batch_size),
                     lambda encoded: serve(image_bytes=encoded)["logits"], steps, f"{split} {data_config.source}")
