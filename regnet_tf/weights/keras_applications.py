"""Keras weights -> ours: ``tf_keras.applications`` (Keras 2) RegNetX/Y, ResNet-RS and EfficientNet B0-B7, and
Keras 3's ``keras.applications`` EfficientNet B0-B7.

    from regnet_tf import weights
    model, config = weights.convert("tf_keras", "regnety_040", tf_keras_model)       # a model object
    model, config = weights.convert("tf_keras", "regnety_040", "regnety040.h5")      # or a weights / model file
    model, config = weights.convert("keras", "efficientnet_b0", "efficientnetb0.h5")

Input (`read`): a tf_keras or Keras 3 model (nested models are walked), a ``.keras`` file, a full-model ``.h5``
(loaded by the library that wrote it), or a weights-only ``.h5`` / ``.weights.h5``: then the source's application
of the same architecture (``RegNetY040``, ``ResNetRS50``, ``EfficientNetB0``: our factory names) is built with
``weights=None`` and the file loaded into it, as the applications load their own files (by layer order, so
names in the file do not matter). tf_keras is needed only for tf_keras files (``pip install tf_keras``).

Tensors are keyed ``"{layer}/{kernel|bias|gamma|beta|moving_mean|moving_variance}"`` (depthwise kernels too) in
Keras layout, with the source's layer names made independent of its name counters: the RegNet model-name prefix
(``regnety040_``) is dropped and the head dense (``1head_dense``) is ``head_dense``; the ResNet-RS stem drops its
counter (``stem_1_stem_conv_1`` -> ``stem_conv_1``). EfficientNet names are fixed (``block2a_expand_conv``).

Conventions (`options`):

- tf_keras RegNet: TensorFlow "SAME" padding on strided convolutions (``padding="tf_same"``); input RGB scaled to
  [0, 1] by its ``Rescaling(1/255)`` (mean 0, std 1: the converted model gets an input adapter); BN 0.9 / 1e-5.
- tf_keras ResNet-RS: symmetric ``fixed_padding`` (ours); ImageNet mean/std; BN epsilon 1e-5 (its momentum 0.0, a
  known tf_keras bug, is not carried over).
- EfficientNet (both): "SAME" padding (``correct_pad`` on a known input size), BN epsilon 1e-3; input
  ``Rescaling(1/255)`` then its ``Normalization`` layer, whose mean and variance are weights. With
  ``weights="imagenet"`` Keras stores the ImageNet std as the "variance" and adds a ``1/sqrt(std)`` rescaling
  (tensorflow/tensorflow#49930): ImageNet mean/std overall. A model object is read as built; a file is taken as
  ImageNet-built when its variance is the ImageNet std.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from typing import Dict, Optional, Tuple

import numpy as np

from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.weights.core import ConversionError, Source, architecture
from regnet_tf.zoo import get_entry, list_models

_RENAMED_VARS = {"depthwise_kernel": "kernel"}  # tf_keras's DepthwiseConv2D kernel
_REGNET = {"a": "conv_1x1_1", "a_bn": "conv_1x1_1_bn", "b": "conv_3x3", "b_bn": "conv_3x3_bn",
           "se_reduce": "squeeze_and_excite_squeeze", "se_expand": "squeeze_and_excite_excite", "c": "conv_1x1_2",
           "c_bn": "conv_1x1_2_bn", "proj": "skip_1x1", "proj_bn": "skip_bn"}
_RS_STEM = {"stem_conv1": "conv_1", "stem_conv1_bn": "batch_norm_1", "stem_conv2": "conv_2",
            "stem_conv2_bn": "batch_norm_2", "stem_conv3": "conv_3", "stem_conv3_bn": "batch_norm_3",
            "stem_pool_conv": "conv_4", "stem_pool_conv_bn": "batch_norm_4"}
_RS = {"a": "_conv_1", "a_bn": "batch_norm_1", "b": "_conv_2", "b_bn": "_batch_norm_2", "c": "_conv_3",
       "c_bn": "_batch_norm_3", "se_reduce": "_se_se_reduce", "se_expand": "_se_se_expand",
       "proj": "_projection_conv", "proj_bn": "_projection_batch_norm"}  # tf_keras: "block_0_batch_norm_1" (sic)
_EFFNET = {"expand": "expand_conv", "expand_bn": "expand_bn", "dw": "dwconv", "dw_bn": "bn", "se_reduce": "se_reduce",
           "se_expand": "se_expand", "project": "project_conv", "project_bn": "project_bn"}
_FIXED = {"anynet": {"stem_conv": "stem_conv", "stem_conv_bn": "stem_bn", "predictions": "head_dense"},
          "resnet": {**{k: f"stem_{v}" for k, v in _RS_STEM.items()}, "predictions": "predictions"},
          "efficientnet": {"stem_conv": "stem_conv", "stem_conv_bn": "stem_bn", "head_conv": "top_conv",
                           "head_conv_bn": "top_bn", "predictions": "predictions"}}
_FAMILIES = {"anynet": "RegNet", "resnet": "ResNet-RS", "efficientnet": "EfficientNet"}


class KerasTensors(dict):
    """{source key: array}, plus ``input_norm``: the (mean, std) on the 0-1 scale that the source model's own
    preprocessing layers apply, when it has weights of its own (EfficientNet's Normalization), else None."""

    input_norm: Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]] = None


# ---- layer names ---- #


def _block(name: str):
    m = re.fullmatch(r"s(\d+)_b(\d+)_(.+)", name)
    return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def _prefix(spec, name: str) -> Optional[str]:
    fixed = _FIXED.get(spec.kind, {})
    if name in fixed:
        return fixed[name]
    parsed = _block(name)
    if parsed is None:
        return None
    i, j, part = parsed
    if spec.kind == "anynet" and spec.block in ("X", "Y") and part in _REGNET:
        return f"Stage_{i - 1}_{spec.block}Block_{j - 1}_{_REGNET[part]}"
    if spec.kind == "resnet" and part in _RS:
        return f"BlockGroup{i + 1}__block_{j - 1}_{_RS[part]}"
    if spec.kind == "efficientnet" and part in _EFFNET and j <= 26:
        return f"block{i}{chr(96 + j)}_{_EFFNET[part]}"
    return None


def prefixes(spec, names) -> Dict[str, str]:
    """{our layer name: the source's (normalized) layer name} for our layers that have a Keras counterpart."""
    out = {n: _prefix(spec, n) for n in names}
    return {n: p for n, p in out.items() if p is not None}


def head(spec) -> Tuple[str, ...]:
    name = _FIXED.get(spec.kind, {}).get("predictions", "predictions")
    return f"{name}/kernel", f"{name}/bias"


def normalize_names(kind: str, names) -> Dict[str, str]:
    """{source layer name: the name `prefixes` uses}: the RegNet model-name prefix (found from its
    ``{model_name}_stem_conv`` layer) and the head's counter dropped; the ResNet-RS stem's counter dropped."""
    names = list(names)
    out = {n: n for n in names}
    if kind == "anynet":
        stems = [n for n in names if n.endswith("_stem_conv")]
        if len(stems) == 1:
            model_prefix = stems[0][:-len("stem_conv")]
            out.update({n: n[len(model_prefix):] for n in names if n.startswith(model_prefix)})
        out.update({n: "head_dense" for n in names if re.fullmatch(r"\d*head_dense", n)})
    elif kind == "resnet":
        out.update({n: m.group(1) for n in names for m in [re.fullmatch(r"stem_\d+_(stem_.+)", n)] if m})
    return out


# ---- reading a model ---- #


def _is_model(obj) -> bool:
    return hasattr(obj, "layers") and hasattr(obj, "weights") and not isinstance(obj, (str, os.PathLike))


def _flat_layers(model):
    for layer in model.layers:
        if _is_model(layer):
            yield from _flat_layers(layer)
        else:
            yield layer


def _var_name(v) -> str:
    name = v.name.split("/")[-1].split(":")[0]
    return _RENAMED_VARS.get(name, name)


def _is_normalization(layer) -> bool:
    return type(layer).__name__ == "Normalization"


def _norm_stats(layer):
    """(mean, variance) per channel of a Normalization layer (adapted or given)."""
    if getattr(layer, "input_mean", None) is None and hasattr(layer, "adapt_mean"):
        mean, var = layer.adapt_mean, layer.adapt_variance
    else:
        mean, var = layer.mean, layer.variance
    return (np.broadcast_to(np.asarray(mean, "float64").reshape(-1), (3,)),
            np.broadcast_to(np.asarray(var, "float64").reshape(-1), (3,)))


def _effnet_input_norm(layers, from_file: bool):
    """(mean, std) on the 0-1 scale of an EfficientNet's Rescaling(1/255) -> Normalization [-> 1/sqrt(std)]."""
    names = [layer.name for layer in layers]
    norms = [k for k, layer in enumerate(layers) if _is_normalization(layer)]
    if not norms or "stem_conv" not in names:
        return None
    k = norms[0]
    mean, var = _norm_stats(layers[k])
    factor = np.ones(3)
    imagenet = np.asarray(STD_RGB)  # Keras's IMAGENET_STDDEV_RGB
    for layer in layers[k + 1:names.index("stem_conv")]:
        if type(layer).__name__ == "Rescaling":  # Keras 3 (weights="imagenet")
            factor = factor * np.broadcast_to(np.asarray(layer.scale, "float64").reshape(-1), (3,))
        elif layer.name.startswith("tf.math.multiply"):  # tf_keras (weights="imagenet"): a raw op, constant inside
            factor = factor / np.sqrt(imagenet)
    if from_file and np.allclose(var, imagenet, rtol=0, atol=1e-6):  # a file saved from a weights="imagenet" model
        factor = 1 / np.sqrt(imagenet)
    std = np.sqrt(var) / factor
    if np.allclose(mean, MEAN_RGB, rtol=0, atol=1e-6) and np.allclose(std, STD_RGB, rtol=0, atol=1e-6):
        return tuple(MEAN_RGB), tuple(STD_RGB)  # exactly (Keras holds them in float32)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def read_model(model, kind: str, from_file: bool = False) -> KerasTensors:
    """A Keras (tf_keras or Keras 3) model's weights as `KerasTensors` with normalized layer names."""
    layers = list(_flat_layers(model))
    rename = normalize_names(kind, [layer.name for layer in layers])
    tensors, owner = KerasTensors(), {}
    for layer in layers:
        if _is_normalization(layer):
            continue  # preprocessing: read into input_norm
        for v in layer.weights:
            var = _var_name(v)
            if "seed_generator" in v.name or var == "seed_generator_state":
                continue
            key = f"{rename[layer.name]}/{var}"
            if key in tensors:
                raise ConversionError(f"two layers of the Keras model are both read as {key}: {owner[key]} and "
                                      f"{layer.name}; pass the application model itself")
            tensors[key], owner[key] = np.asarray(v.numpy() if hasattr(v, "numpy") else v), layer.name
    if kind == "efficientnet":
        tensors.input_norm = _effnet_input_norm(layers, from_file)
    return tensors


# ---- files ---- #


def _tf_keras():
    try:
        import tf_keras
    except ImportError:
        raise ConversionError("reading tf_keras (Keras 2) files needs the tf_keras package: pip install tf_keras") \
            from None
    return tf_keras


def application_name(spec) -> str:
    """The Keras application of ``spec``'s architecture: our factory name (``RegNetX002``, ``ResNetRS50``,
    ``EfficientNetB0``), which tf_keras / Keras also use. Raises `ConversionError` when there is none."""
    pattern = {"anynet": r"regnet[xy]_\d+", "resnet": r"resnet_rs_\d+", "efficientnet": r"efficientnet_b\d"}
    want = architecture(spec)
    for name in list_models():
        if re.fullmatch(pattern.get(spec.kind, "(?!)"), name):
            theirs = get_entry(name).spec.resolved()
            if type(theirs) is type(spec) and architecture(theirs) == want:
                return get_entry(name).factory
    raise ConversionError(f"this {spec.kind} model is none of the Keras applications (tf_keras RegNetX/Y002-320, "
                          "ResNetRS50-420, EfficientNetB0-B7): convert from a model object instead of a file")


def _h5_info(path: str):
    """(keras_version or "", is a full model, number of classes of a classifier dense or 0) of an .h5 file."""
    import h5py

    classes = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim == 2:
            classes.append(int(obj.shape[-1]))

    try:
        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version", b"")
            full = "model_config" in f.attrs
            f.visititems(visit)
    except OSError as e:
        raise ConversionError(f"{path} is not an HDF5 (.h5) file: {e}") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    return version, full, (classes[-1] if classes else 0)


def _keras_file_version(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("metadata.json")).get("keras_version", "")
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ConversionError(f"{path} is not a .keras model file: {e}") from None


def _load_model(path: str, version: str):
    """A whole saved model, by the library that wrote it (Keras 2 -> tf_keras)."""
    try:
        if version.startswith("2."):
            return _tf_keras().models.load_model(path, compile=False)
        import keras

        return keras.saving.load_model(path, compile=False)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 - Keras raises many types for a bad file
        raise ConversionError(f"cannot load the Keras model in {path}: {e}") from None


def _load_weights(path: str, spec, library: str, classes: int):
    """The source's application of ``spec``'s architecture, built with weights=None, with ``path`` loaded."""
    name = application_name(spec)
    if library == "tf_keras":
        apps = _tf_keras().applications
    else:
        import keras

        apps = keras.applications
    if not hasattr(apps, name):
        raise ConversionError(f"{library} has no {name} application (Keras 3 has EfficientNet only; tf_keras has "
                              "RegNet, ResNet-RS and EfficientNet): convert with the other source")
    kwargs = dict(weights=None, include_top=bool(classes), classes=classes or 1000)
    kwargs["input_shape"] = (224, 224, 3) if classes else (None, None, 3)
    try:
        model = getattr(apps, name)(**kwargs)
        model.load_weights(path)
    except Exception as e:  # noqa: BLE001
        raise ConversionError(f"cannot load {path} into {library} {name}(include_top={bool(classes)}): {e}") from None
    return model


def read_file(path, spec, library: str) -> KerasTensors:
    """A ``.keras`` / ``.h5`` / ``.weights.h5`` file (see the module docstring) as `KerasTensors`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError(f"no such Keras file: {path}")
    if path.endswith(".keras"):
        return read_model(_load_model(path, _keras_file_version(path)), spec.kind)
    if not path.endswith(".h5"):
        raise ConversionError(f"{path}: a Keras source reads a model object, .keras, .h5 or .weights.h5 files")
    version, full, classes = _h5_info(path)
    if full:
        return read_model(_load_model(path, version), spec.kind)
    return read_model(_load_weights(path, spec, library, classes), spec.kind, from_file=True)


def _reader(library: str):
    def read(input, spec) -> KerasTensors:
        """``input``: a Keras model, a file (`read_file`) or a dict already keyed as `read_model` keys."""
        if _is_model(input):
            return read_model(input, spec.kind)
        if isinstance(input, dict):
            return input if isinstance(input, KerasTensors) else KerasTensors(input)
        return read_file(input, spec, library)

    return read


# ---- conventions ---- #


def options(spec, tensors, arch: str = "") -> dict:
    """WeightsConfig fields for Keras weights of ``spec``'s family (see the module docstring)."""
    family = _FAMILIES.get(spec.kind, spec.kind)
    if spec.kind == "anynet":
        return {"spec": {"padding": "tf_same", "bn_eps": 1e-5}, "input_mean": (0.0, 0.0, 0.0),
                "input_std": (1.0, 1.0, 1.0),
                "notes": ("tf_keras RegNet: TensorFlow 'SAME' padding on strided convolutions (padding='tf_same')",
                          "tf_keras RegNet input: RGB / 255 (its Rescaling layer); an input adapter maps ours to it")}
    if spec.kind == "resnet":
        return {"spec": {"padding": "symmetric", "bn_eps": 1e-5}, "input_mean": tuple(MEAN_RGB),
                "input_std": tuple(STD_RGB),
                "notes": ("tf_keras ResNet-RS: symmetric fixed padding and ImageNet mean/std, as ours; its BN "
                          "momentum 0.0 is not carried over",)}
    if spec.kind == "efficientnet":
        mean, std = getattr(tensors, "input_norm", None) or (tuple(MEAN_RGB), tuple(STD_RGB))
        return {"spec": {"padding": "tf_same", "bn_eps": 1e-3}, "input_mean": mean, "input_std": std,
                "notes": (f"Keras {family}: TensorFlow 'SAME' padding (padding='tf_same'), BN epsilon 1e-3",
                          "input normalization from its Rescaling / Normalization layers: mean "
                          f"{tuple(round(m, 6) for m in mean)}, std {tuple(round(s, 6) for s in std)}")}
    raise ConversionError(f"Keras has no {family} weights for regnet_tf to convert (only RegNet X/Y, ResNet-RS "
                          "and EfficientNet)")


TF_KERAS = Source(name="tf_keras", style="keras", prefixes=prefixes, head=head, options=options,
                  read=_reader("tf_keras"))
KERAS = Source(name="keras", style="keras", prefixes=prefixes, head=head, options=options, read=_reader("keras"))
