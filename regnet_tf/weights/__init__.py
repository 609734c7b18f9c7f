"""Trained weights: converters from timm, pycls, tf_keras and Keras, and `weights="imagenet"`.

    from regnet_tf import weights
    model, config = weights.convert("timm", "regnety_040", "model.safetensors")   # a Keras model + its WeightsConfig
    weights.convert_file("timm", "regnety_040", "model.safetensors", "regnety_040.weights.h5")

One module per source (`timm`, `pycls`, `keras_applications` for tf_keras and Keras 3) says how its tensors are
named and how its networks differ from ours (padding, BN epsilon, input normalization); `core` moves the tensors and
refuses a model that does not match. Models are assembled by `regnet_tf.models.common.keras_model`, the builder the
factories use too. A converted ``.weights.h5`` carries its `WeightsConfig`, which that builder applies
(``RegNetY040(weights="regnety_040.weights.h5")``). docs/WEIGHTS.md has the sources, conventions and tolerances.
"""

from __future__ import annotations

import importlib
import os

from regnet_tf.models.registry import unknown_name_error
from regnet_tf.weights.core import ConversionError, Source, WeightsConfig, assign, read_config, read_tensors, save
from regnet_tf.zoo import get_entry

WEIGHT_SOURCES = {"timm": ("regnet_tf.weights.timm", "SOURCE"), "pycls": ("regnet_tf.weights.pycls", "SOURCE"),
                  "tf_keras": ("regnet_tf.weights.keras_applications", "TF_KERAS"),
                  "keras": ("regnet_tf.weights.keras_applications", "KERAS")}

__all__ = ["WEIGHT_SOURCES", "ConversionError", "Source", "WeightsConfig", "convert", "convert_file",
           "get_source", "read_config", "read_tensors", "save"]


def get_source(name: str) -> Source:
    if name not in WEIGHT_SOURCES:
        raise unknown_name_error("weights source", name, sorted(WEIGHT_SOURCES))
    module, attr = WEIGHT_SOURCES[name]
    return getattr(importlib.import_module(module), attr)


def _spec_and_name(model):
    """(the resolved spec, the registry name or "")."""
    if isinstance(model, str):
        return get_entry(model).spec.resolved(), get_entry(model).name
    return model.resolved(), ""


def convert(source: str, model, input, *, arch: str = "", include_top=True, classes=1000, **config_fields):
    """Converts ``input`` (a checkpoint file; for tf_keras / keras also a Keras model or a .h5 file) of a
    ``source`` network into our ``model`` (a registry name or a spec). Returns (keras.Model, WeightsConfig).

    ``arch``: the source's own name of the network when it matters (timm "tf_efficientnet_b0" was trained with
    TensorFlow padding and BN epsilon, "efficientnet_b0" not).
    ``config_fields`` (tag, url, input_size, crop_fraction, interpolation) go into the WeightsConfig.
    Raises `ConversionError` when the tensors do not fit (the message lists what does not match).
    """
    src = get_source(source)
    spec, model_name = _spec_and_name(model)
    if isinstance(input, (str, os.PathLike)) and src.read is None:
        tensors = read_tensors(input)
    else:
        tensors = (src.read or (lambda x, s: x))(input, spec)
    tensors = src.prepare(spec, tensors)
    config = WeightsConfig(model=model_name, source=source, classes=classes, **{**src.options(spec, tensors, arch),
                                                                                 **config_fields})
    # Keras only here: `import regnet_tf.weights` (the convert command's flags read WEIGHT_SOURCES) loads no TensorFlow
    import keras

    from regnet_tf.models import common

    keras_model = common.keras_model(spec, keras.Input(shape=(None, None, 3)), weights_config=config,
                                     include_top=include_top, classes=classes, classifier_activation=None,
                                     name=model_name or "model")
    what = f" of {input}" if isinstance(input, (str, os.PathLike)) else ""
    assign(keras_model, tensors, src, spec.replace(**config.spec), what=what)
    return keras_model, config


def convert_file(source: str, model, input, output, **kwargs) -> WeightsConfig:
    """`convert`, then `save` to ``output`` (a ``.weights.h5`` file that carries the WeightsConfig)."""
    keras_model, config = convert(source, model, input, **kwargs)
    save(keras_model, output, config)
    return config
