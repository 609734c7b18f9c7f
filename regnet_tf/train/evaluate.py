"""A finished run from outside the training loop: its recipe, a serving copy of its model, and the evaluation of an
exported SavedModel through its `serving_default` signature (image bytes in, preprocessing in the graph).

    recipe = load_run("runs/demo", overrides=["data.data_dir=/data"])
    metrics = evaluate_saved_model("runs/demo/export/390", recipe.data)
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
import yaml

from regnet_tf.train import TrainingError, optim
from regnet_tf.train import recipe as recipe_lib


def load_run(model_dir, overrides=()):
    """The recipe a model_dir was trained with (model_dir/recipe.yaml), with `overrides` applied."""
    path = os.path.join(model_dir, "recipe.yaml")
    if not os.path.exists(path):
        raise TrainingError(f"{model_dir} holds no recipe.yaml: not a model_dir written by launch/train.py "
                            "(or the path is wrong)")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return recipe_lib.from_dict(recipe_lib.apply_overrides(raw, overrides), name=raw.get("name", ""))


def serving_model(spec, recipe, weights):
    """A float32 copy of the model (outside any strategy) holding `weights`."""
    from regnet_tf.applications import build_model

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        size = recipe.data.image_size
        model = build_model(spec, classes=recipe.data.num_classes, input_shape=(size, size, 3),
                            classifier_activation=None, name=recipe.model.name or None)
        model.set_weights(weights)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return model


def _accuracy(batches, predict, steps, what):
    """Top-1 / top-5 over (inputs, labels) batches of ``predict(inputs) -> logits``; ``steps`` > 0 stops early."""
    top1 = top5 = count = 0
    for i, (inputs, labels) in enumerate(batches):
        if steps and i >= steps:
            break
        logits = predict(inputs)
        top1 += float(optim.topk_correct(labels, logits, 1))
        top5 += float(optim.topk_correct(labels, logits, 5))
        count += int(labels.shape[0])
    if not count:
        raise TrainingError(f"no {what} images found")
    return {"top1": 100.0 * top1 / count, "top5": 100.0 * top5 / count, "examples": count}


def evaluate_model(model, data_config, split="validation", batch_size=100, steps=0):
    """Top-1 / top-5 of a Keras model (logits or probabilities out) on a data source's split, through the eval
    pipeline of ``data_config`` (its crop, resize and normalization)."""
    from regnet_tf.data.sources import input_pipeline

    batches = input_pipeline(data_config, split, batch_size, training=False)
    return _accuracy(batches, tf.function(lambda x: model(x, training=False)), steps,
                     f"{split} {data_config.source}")


def evaluate_saved_model(export_dir, data_config, split="validation", batch_size=100, steps=0):
    """Top-1 / top-5 of an exported SavedModel through its `serving_default` signature (image bytes in), i.e. with
    the preprocessing inside the graph, on a data source's split."""
    from regnet_tf.data.sources import encoded_dataset

    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    return _accuracy(encoded_dataset(data_config, split).batch(batch_size),
                     lambda encoded: serve(image_bytes=encoded)["logits"], steps, f"{split} {data_config.source}")
