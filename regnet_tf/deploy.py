"""Exports for other runtimes: TFLite (float32, float16, int8), ONNX, OpenVINO (their runners: `regnet_tf.runtimes`).

    from regnet_tf import deploy, runtimes
    path = deploy.export_file(model, "out", "tflite_int8", image_size=224, calibration=images, class_names=names)
    runner = runtimes.load(path)          # by extension: .tflite, .onnx, .xml (OpenVINO IR), or a SavedModel dir
    logits = runner(pixels)               # uint8 or float [B, S, S, 3] RGB pixels, 0-255 -> float32 [B, K]

`model` is what the SavedModel export takes (`regnet_tf.train.export`): ImageNet mean/std-normalized float32 images
[B, S, S, 3] -> logits [B, K], with the weights to serve already set. Every exported file:

- takes RGB pixels on the 0-255 scale, `images` [B, S, S, 3] (B dynamic), already cropped and resized the eval
  pipeline's way; the mean/std normalization is inside the file (a multiply-add before the network). float32
  input, except int8 (uint8 input: a pixel's value is its own quantized value, scale 1, zero point 0);
- gives logits [B, K]: float32, except int8 (int8 logits, with the scale and zero point in the sidecar);
- is an inference copy: BatchNormalization folded into the convolution before it (`inference.fold_batch_norm`),
  grouped convolutions native or, with ``grouped_conv="split"``, as split + convolutions + concat
  (`inference.split_grouped_convs`) for runtimes without them;
- has a sidecar `<file>.json`: format, image size, input and output dtypes and quantization, the eval crop and
  resize the pixels must go through, the class names, versions, and the check below. `runtimes.load` reads it.

Conversions use Keras's own `model.export(format=...)` for "litert" (TFLite converter, builtin ops only, so the
file runs without the Flex delegate) and "onnx" (tf2onnx, opset 17). "openvino" converts the same traced function
with OpenVINO's TensorFlow frontend directly (`_export_openvino`: Keras's export keeps an extra output per SiLU), not
through ONNX (OpenVINO's ONNX frontend gave wrong outputs for our grouped convolutions, docs/DEPLOY.md). int8 is
full-integer quantization calibrated on the caller's images (the eval view of real data: `calibration_images`),
never on random noise.

Each export is checked before it is kept: the file runs on `CHECK_IMAGES` images (the first calibration images, or
seeded random pixels) and its logits are compared with the Keras model's: float32 formats must agree within
`TOLERANCE` relative, float16 within 5e-2; int8 records its top-1 agreement. The numbers go into the sidecar.
Files are written into a hidden temporary directory and moved into place, the sidecar last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile

import numpy as np

from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.files import write_atomic
# load and read_sidecar: also `deploy.load` / `deploy.read_sidecar`, beside the exports they read
from regnet_tf.runtimes import SIDECAR, TOOLS, ExportError, check_tools, family, load, read_sidecar  # noqa: F401

FORMATS = ("saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx", "openvino")
FILE_NAMES = {"tflite": "model.tflite", "tflite_fp16": "model_fp16.tflite", "tflite_int8": "model_int8.tflite",
              "onnx": "model.onnx", "openvino": "model.xml"}
TOLERANCE = {"tflite": 1e-4, "onnx": 1e-4, "openvino": 1e-4, "tflite_fp16": 5e-2}
CHECK_IMAGES = 4
GROUPED_CONV = ("native", "split")


def tool_versions(fmt):
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pip in ["tensorflow", "keras"] + [p for _, p in TOOLS.get(family(fmt), [])]:
        with contextlib.suppress(PackageNotFoundError):
            out[pip] = version(pip)
    return out


# ------------------------------------------------------------------------------------------------------- export

def export_file(model, export_dir, fmt, *, image_size, preprocessing=None, class_names=None, calibration=None,
                fold=True, grouped_conv="native", metadata=None, overwrite=False, log=print):
    """Writes `model` as `export_dir/FILE_NAMES[fmt]` (+ sidecar) and returns its path (see the module docstring).

    `preprocessing`: the eval crop and resize the input pixels must have gone through ({"eval_mode",
    "crop_fraction", "short_side", "resize_method"}; recorded, not applied). `class_names`: K names or None.
    `calibration`: uint8 pixels [N, S, S, 3] (required for "tflite_int8"). `fold`: fold BatchNormalization.
    `grouped_conv`: "native" or "split". `metadata`: a JSON-serializable dict for the sidecar.
    """
    from regnet_tf.train.export import eval_config, preprocessing_info

    if fmt not in FILE_NAMES:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FILE_NAMES)} (or saved_model)")
    if grouped_conv not in GROUPED_CONV:
        raise ExportError(f"grouped_conv must be one of {GROUPED_CONV}; got {grouped_conv!r}")
    check_tools(fmt)
    config = eval_config(model, image_size, **(preprocessing or {}))
    if class_names is not None and len(class_names) != config["num_classes"]:
        raise ExportError(f"{len(class_names)} class names for a model with {config['num_classes']} outputs")
    if fmt == "tflite_int8":
        calibration = _check_calibration(calibration, image_size)
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise ExportError(f"metadata must be a JSON-serializable dict: {e}") from None
    path = os.path.join(os.path.abspath(os.fspath(export_dir)), FILE_NAMES[fmt])
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; export to another directory, or pass overwrite (--overwrite) to "
                              "replace it")
    net, notes = inference_copy(model, fold, grouped_conv)
    pixels_model = with_normalization(net, image_size)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=os.path.dirname(path))
    try:
        staged = os.path.join(staging, os.path.basename(path))
        _convert(pixels_model, staged, fmt, calibration, model.name)
        images = _check_images(calibration, image_size)
        check = _check(fmt, staged, pixels_model, images, model.name)
        info = {"format": fmt, "file": os.path.basename(path), "model": model.name, "image_size": image_size,
                "num_classes": config["num_classes"], "input": None, "output": None,
                "preprocessing": {**preprocessing_info(config), "normalized_inside": True},
                "class_names": list(class_names) if class_names else None,
                "inference": notes, "calibration_images": None if calibration is None else len(calibration),
                "check": check, "versions": tool_versions(fmt), "metadata": metadata}
        runner = load(staged, info=info)
        info["input"], info["output"] = runner.input_info(), runner.output_info()
        write_atomic(staged + SIDECAR, json.dumps(info, indent=2) + "\n")
        for name in sorted(os.listdir(staging), key=lambda n: (n.endswith(SIDECAR), n.endswith(".xml"))):
            os.replace(os.path.join(staging, name), os.path.join(os.path.dirname(path), name))  # .bin, .xml, .json
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{fmt}: {path} ({_describe(notes)}; {_describe_check(check)})")
    return path


def inference_copy(model, fold=True, grouped_conv="native"):
    """(the model to convert, notes): BN folded, grouped convolutions split if asked, a float32 Functional copy."""
    import keras

    from regnet_tf import inference

    notes = {"batch_norm_folded": 0, "grouped_conv": grouped_conv}
    if model.dtype_policy.name != "float32":
        raise ExportError(f"{model.name} computes in {model.dtype_policy.name}; export a float32 copy (the run's "
                          "exports build one: regnet_tf.train.evaluate.serving_model)")
    before = _count(model, keras.layers.BatchNormalization)
    if fold:
        model = inference.fold_batch_norm(model)
        notes["batch_norm_folded"] = before - _count(model, keras.layers.BatchNormalization)
    if grouped_conv == "split":
        notes["grouped_convs_split"] = sum(getattr(x, "groups", 1) > 1 for x in inference.all_layers(model))
        model = inference.split_grouped_convs(model)
    return model, notes


def with_normalization(model, image_size):
    """pixels [B, S, S, 3] on the 0-255 scale -> ImageNet mean/std normalization -> `model`."""
    import keras

    scale = np.array([1.0 / (255.0 * s) for s in STD_RGB])
    offset = np.array([-m / s for m, s in zip(MEAN_RGB, STD_RGB)])
    pixels = keras.Input((image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(scale=scale, offset=offset, name="normalize")(pixels)
    wrapped = keras.Model(pixels, model(x), name=model.name)
    wrapped(np.zeros((1, image_size, image_size, 3), np.float32))  # the ONNX export wants a model that was called
    return wrapped


def _count(model, cls):
    from regnet_tf.inference import all_layers

    return sum(isinstance(layer, cls) for layer in all_layers(model))


def _check_calibration(calibration, image_size):
    if calibration is None or len(calibration) == 0:
        raise ExportError("tflite_int8 needs calibration images (the eval view of real training images: "
                          "deploy.calibration_images, or --data on the command line); it never calibrates on noise")
    calibration = np.asarray(calibration)
    if calibration.ndim != 4 or calibration.shape[1:] != (image_size, image_size, 3):
        raise ExportError(f"calibration images must be [N, {image_size}, {image_size}, 3] pixels; got "
                          f"{calibration.shape}")
    return calibration


def _check_images(calibration, image_size):
    if calibration is not None:
        return np.asarray(calibration[:CHECK_IMAGES], np.float32)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (CHECK_IMAGES, image_size, image_size, 3)).astype(np.float32)


def _convert(model, path, fmt, calibration, name):
    """Keras's `model.export` for the format, with one-line errors naming the model, the format and the op."""
    import tensorflow as tf

    kwargs = {}
    if family(fmt) == "tflite":
        kwargs = {"format": "litert", "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
        if fmt == "tflite_fp16":
            kwargs.update(optimizations=[tf.lite.Optimize.DEFAULT],
                          target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS],
                                       "supported_types": [tf.float16]})
        if fmt == "tflite_int8":
            images = np.asarray(calibration, np.float32)
            kwargs.update(optimizations=[tf.lite.Optimize.DEFAULT],
                          representative_dataset=lambda: ([images[i:i + 1]] for i in range(len(images))),
                          target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                          inference_input_type=tf.uint8, inference_output_type=tf.int8)
    elif fmt == "onnx":
        kwargs = {"format": "onnx", "opset_version": 17}
    try:
        with _quiet():
            if fmt == "openvino":
                _export_openvino(model, path)
            else:
                model.export(path, verbose=False, **kwargs)
    except Exception as e:  # noqa: BLE001 - any converter failure becomes one line naming the operation
        raise ExportError(f"{name} cannot be exported as {fmt}: {_operation(e)}") from e


def _export_openvino(model, path):
    """`model` (one input, one output) as OpenVINO IR through OpenVINO's TensorFlow frontend, with its input named
    "images" and its output "logits". Not Keras's ``model.export(format="openvino")``: converting the same traced
    function, it keeps a Result for every ``tf.nn.silu`` (the custom gradient's IdentityN), 49 extra outputs for
    EfficientNet-B0 that made the file 2.5x slower (docs/DEPLOY.md). Here only the function's output stays."""
    import openvino as ov
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="images")
    function = tf.function(lambda images: model(images, training=False)).get_concrete_function(spec)
    ov_model = ov.convert_model(function)
    outputs = {t.name for t in function.outputs}
    for result in ov_model.get_results():
        if not result.input_value(0).get_names() & outputs:
            ov_model.remove_result(result)
    if len(ov_model.outputs) != 1:
        raise ValueError(f"OpenVINO's converter gave {len(ov_model.outputs)} outputs for the model's 1")
    ov_model.inputs[0].get_tensor().set_names({"images"})
    ov_model.outputs[0].get_tensor().set_names({"logits"})
    ov.save_model(ov_model, path, compress_to_fp16=False)


def _operation(exc):
    """The operation a converter error names (e.g. "tf.XlaConv"), else the error's first line."""
    text = str(exc)
    ops = sorted(set(re.findall(r"\b(tf\.[A-Z][A-Za-z0-9_]*)", text)))  # TensorFlow op names: tf.CamelCase
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    if ops:
        return f"unsupported operation {', '.join(ops)} (no builtin kernel: rewrite that layer, or use another format)"
    return first[:300]


@contextlib.contextmanager
def _quiet():
    """Converters log every step at INFO (tf2onnx, absl); only their warnings stay visible during an export."""
    floors = {"tf2onnx": logging.WARNING, "absl": logging.WARNING, "openvino": logging.WARNING,
              "tensorflow": logging.ERROR}  # its tracing warns about tables of an earlier SavedModel export
    loggers = [logging.getLogger(n) for n in floors]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.level, floors[lg.name]))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _check(fmt, path, model, images, name):
    """The exported file against the Keras model on `images`: max relative difference of the logits (max abs diff /
    max abs logit) and top-1 agreement; ExportError past the format's tolerance."""
    ref = np.asarray(model(images, training=False))
    try:
        runner = load(path, info={"format": fmt, "image_size": images.shape[1]})
        out = runner(images)
    except Exception as e:  # noqa: BLE001 - a converter bug: the file exists but its runtime refuses it
        raise ExportError(f"the {fmt} export of {name} converts but does not run: {_operation(e)}") from e
    rel = relative_difference(out, ref)
    agree = float(np.mean(out.argmax(-1) == ref.argmax(-1)))
    limit = TOLERANCE.get(fmt)
    if limit is not None and not rel <= limit:
        raise ExportError(f"the {fmt} export of {name} computes other outputs than the Keras model: relative "
                          f"difference {rel:.3g} > {limit:g} on {len(images)} images (a converter bug: try "
                          "grouped_conv='split' or another format, and report it)")
    check = {"images": len(images), "max_relative_difference": rel, "top1_agreement": agree}
    if hasattr(runner, "delegate"):
        check["tflite_delegate"] = runner.delegate  # "builtin" where XNNPACK refused the file
    return check


def relative_difference(out, ref) -> float:
    """max |out - ref| / max |ref|: the measure of the export check (and of `launch/benchmark.py --formats`)."""
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12))


def _describe(notes):
    parts = [f"{notes['batch_norm_folded']} BatchNormalization folded"]
    if notes.get("grouped_convs_split"):
        parts.append(f"{notes['grouped_convs_split']} grouped convolutions split")
    return ", ".join(parts)


def _describe_check(check):
    return (f"checked on {check['images']} images: relative difference {check['max_relative_difference']:.2g}, "
            f"top-1 agreement {check['top1_agreement']:.0%}")


def calibration_images(data_config, n, split="train"):
    """uint8 pixels [n', S, S, 3], n' = min(n, the split's size): the first `n` images of `split` in file order
    through the eval view (crop, resize; no normalization) at the data config's image size."""
    import dataclasses

    from regnet_tf.data.sources import input_pipeline

    data = dataclasses.replace(data_config, normalize=False, deterministic=True, cache=False)
    batches, taken = [], 0
    for images, _ in input_pipeline(data, split, min(n, 64), training=False):
        batches.append(images.numpy()[: n - taken])
        taken += len(batches[-1])
        if taken >= n:
            break
    if not taken:
        raise ExportError(f"no {split} images in {data_config.source} data to calibrate on")
    return np.concatenate(batches)
