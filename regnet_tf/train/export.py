"""SavedModel export for TF Serving: one versioned directory, two signatures, the eval preprocessing in the graph.

    from regnet_tf.train.export import export_saved_model
    export_saved_model(model, "exports/regnety_016/1", image_size=224, label_map="records/label_map.txt")

`model` maps ImageNet mean/std-normalized float32 RGB images [B, S, S, 3] (S = `image_size`) to logits [B, K]
(built with ``classifier_activation=None``), with the weights to serve (the EMA weights) already set.

Signatures (B: any batch size, including 0):

    serving_default        image_bytes  string [B]           encoded JPEG / PNG / GIF / BMP / WebP / JPEG XL
    serving_image_tensor   images       uint8  [B, H, W, 3]  decoded RGB pixels, one size per batch

    outputs of both: logits         float32 [B, K]
                     probabilities  float32 [B, K]   softmax of the logits
                     top_k_classes  int32   [B, k]   class indices, best first, k = min(5, K)
                     top_k_scores   float32 [B, k]   their probabilities
                     top_k_names    string  [B, k]   their names (only with a label map)

Choices:

- The preprocessing is the evaluation pipeline's, inside the graph. `serving_default` runs
  `preprocess.eval_image` on each image (tf.map_fn on the CPU), `serving_image_tensor` runs `preprocess.eval_view`
  (the same crop, resize and normalization, on pixels) on the batch. A served prediction equals the Keras model
  on the eval pipeline's image of the same file. (In "crop_fraction" mode a JPEG's bytes decode only the crop
  window, `decode_and_crop_jpeg`, whose pixels near the window edges can differ by a few levels from a full
  decode's: `serving_image_tensor` on fully decoded JPEG pixels is close to, not bit-equal to, `serving_default`.)
- Bad input fails the request with InvalidArgumentError (`regnet_tf.train.serving_input`). Bytes in none of the
  formats `tf.io.decode_image` reads (`regnet_tf.data.format.IMAGE_FORMATS`, the table the TFRecord writer uses
  too) fail with "image_bytes[i] could not be decoded: not a JPEG, PNG, GIF, BMP, WebP or JPEG XL image (n bytes)";
  a corrupt or truncated file of a known format fails in TensorFlow's decoder ("Invalid JPEG data ...", in the
  scope `decode_image_bytes`), or, exported with `name_decode_errors=True`, with "image_bytes[i] could not be
  decoded: corrupt or truncated image data (n bytes; ...)" at ~25-50 ms more per request.
- Request limits (export options, stored in the metadata; 0 disables one), enforced in the graph with an
  InvalidArgumentError naming the input, the value, the limit and the option: `max_batch` images per request
  (both signatures) and `max_request_bytes` encoded bytes per request, checked before any decoding; then per image
  `max_pixels` (frames x height x width declared in the header, `format.check_pixel_budget`) before it is decoded,
  so a decompression bomb costs no memory. `serving_image_tensor` checks H x W against `max_pixels`. Animated GIFs:
  the first frame is served (the decoder reads every frame, so the budget counts them all). See docs/SERVING.md.
- Mixed precision: the model computes under its own policy; every output is float32.
- BatchNormalization is folded into the convolution before it (``fold=True``, `regnet_tf.inference`): the served
  graph has one op less per convolution, outputs within 1e-5 relative of the model (docs/DEPLOY.md).
- Grouped convolutions (RegNet): TensorFlow's graph optimizer (grappler's remapper) fuses Conv2D + BatchNorm
  (+ ReLU) into `_FusedConv2D`, whose CPU kernel rejects grouped convolutions unless oneDNN is on ("Fused conv
  implementation does not support grouped convolutions for now"). TF Serving and TensorFlow on CPUs without
  AVX-512 run without oneDNN, so the serving functions call a copy of the model that shares its layers and
  weights and has a no-op `EnsureShape` after every grouped convolution, which keeps it out of the fusion (the
  other convolutions are still fused). With BN folded, a grouped convolution has a bias, which the remapper would
  fuse too: its bias is added after the `EnsureShape`.
- The saved object tracks the serving functions, the label table and the variables the functions read, not the
  Keras model object (as `keras.Model.export`): TF1-style loaders (TF Serving, `saved_model_cli run`) cannot find
  the variables of a SavedModel whose object graph holds a Keras 3 model.
- `label_map` (a label_map.txt, or {class index: name}) must name each class 0..K-1 exactly once. It is stored as
  the asset `assets/label_map.txt` in the one label-map format (`regnet_tf.data.format`: one `<stored label>
  <class name>` line per class, in class order, stored label = class index - `label_offset`), from which a hash
  table (initialized when the model is loaded) gives `top_k_names`.
- Atomic: the SavedModel is written into a hidden sibling directory (`.1.tmp-<random>`; TF Serving loads only
  numeric version directories), then renamed to `export_dir` (local file systems), so a crash never leaves a
  half-written version. A non-empty `export_dir` is refused unless ``overwrite=True``, which moves the old
  version aside and deletes it after the rename (TF Serving may briefly see no version: prefer a new number).
- `assets.extra/regnet_tf.json` (ignored by TF Serving) records the image size, the eval preprocessing, the
  number of classes, the signatures' inputs and outputs, versions and the caller's `metadata`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

import keras
import tensorflow as tf

import regnet_tf  # its __version__ goes into the export's metadata
from regnet_tf.data import preprocess
from regnet_tf.data.config import eval_short_side
from regnet_tf.data.format import (LABEL_MAP, LABEL_OFFSET, MAX_PIXELS, MEAN_RGB, STD_RGB, check_label_names,
                                   label_map_file, read_label_map, stored_label, write_label_map)
from regnet_tf.train import serving_input
from regnet_tf.train.serving_input import INPUT_BYTES, INPUT_IMAGES

SERVING_DEFAULT = "serving_default"
SERVING_IMAGE_TENSOR = "serving_image_tensor"
TOP_K = 5
LABEL_MAP_ASSET = LABEL_MAP
METADATA_FILE = os.path.join("assets.extra", "regnet_tf.json")
MAX_BATCH = 256  # images per request
MAX_REQUEST_BYTES = 64 * 2 ** 20  # encoded bytes per request (serving_default)


def export_saved_model(model, export_dir, *, image_size, eval_mode="crop_fraction",
                       crop_fraction=preprocess.CENTER_CROP_FRACTION, short_side=None, resize_method="bilinear",
                       label_map=None, label_offset=LABEL_OFFSET, metadata=None, overwrite=False,
                       max_pixels=MAX_PIXELS, max_batch=MAX_BATCH, max_request_bytes=MAX_REQUEST_BYTES,
                       name_decode_errors=False, fold=True):
    """Writes `model` as a TF Serving SavedModel into `export_dir` (a version directory, e.g. `.../1`).

    See the module docstring for the signatures. `eval_mode`, `crop_fraction`, `short_side` and `resize_method`
    are the eval pipeline's (`preprocess.eval_image`). `label_map`: None, the path of a label_map.txt (or of the
    directory holding it) with stored labels = class index - `label_offset`, or a dict {class index: name}.
    `metadata`: a JSON-serializable dict stored in `assets.extra/regnet_tf.json`. `max_pixels` (decoded pixels
    per image), `max_batch` (images per request), `max_request_bytes` (encoded bytes per request): the request
    limits, ints >= 0, 0 = no limit. `name_decode_errors`: a file the decoder refuses fails naming its index, at
    ~25-50 ms per request (`serving_input`). `fold`: serve an inference copy with BatchNormalization folded into
    the convolutions (`regnet_tf.inference.fold_batch_norm`; within 1e-5 of the model), for float32 models (a
    mixed-precision model is served as it computes). Returns `export_dir`.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    config = eval_config(model, image_size, eval_mode, crop_fraction, short_side, resize_method)
    config["label_offset"] = label_offset
    config["limits"] = serving_input.check_limits(max_pixels=max_pixels, max_batch=max_batch,
                                                  max_request_bytes=max_request_bytes)
    config["name_decode_errors"] = bool(name_decode_errors)
    names = None if label_map is None else label_names(label_map, label_offset, config["num_classes"])
    info = _metadata(model, config, names is not None, label_offset, metadata)
    fold = fold and model.dtype_policy.compute_dtype == "float32"  # in bfloat16/float16 folding moves the rounding
    info["batch_norm_folded"] = fold
    _check_target(export_dir, overwrite)
    if fold:
        from regnet_tf.inference import fold_batch_norm

        model = fold_batch_norm(model)
    staging = _sibling(export_dir, "tmp")
    os.makedirs(staging)  # not mkdtemp: its mode 0700 would hide the export from a TF Serving of another user
    try:
        with tempfile.TemporaryDirectory() as scratch:
            label_file = None if names is None else write_label_map(scratch, names, label_offset)
            module, signatures = serving_module(model, config, label_file)
            tf.saved_model.save(module, staging, signatures=signatures)
        _write_json(os.path.join(staging, METADATA_FILE), info)
        _commit(staging, export_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir


def serving_module(model, config, label_file=None):
    """(tf.Module to save, {signature name: concrete function}). The module tracks the serving functions, the
    label table (and its asset) and the variables the functions read, not the Keras model (see the module
    docstring)."""
    labels = None if label_file is None else _label_table(label_file)
    server = _Server(without_grouped_conv_fusion(model), config, labels)
    module = tf.Module(name="regnet_tf_serving")
    module.serve_bytes = tf.function(server.serve_bytes, input_signature=[
        tf.TensorSpec([None], tf.string, name=INPUT_BYTES)])
    module.serve_images = tf.function(server.serve_images, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_IMAGES)])
    signatures = {SERVING_DEFAULT: module.serve_bytes.get_concrete_function(),
                  SERVING_IMAGE_TENSOR: module.serve_images.get_concrete_function()}
    module.labels = labels
    used = {id(v): v for fn in signatures.values() for v in fn.variables}
    module.model_variables = list(used.values())
    return module, signatures


class _Server:
    """The serving computations (plain Python, not tracked; see `serving_module`)."""

    def __init__(self, model, config, labels):
        self.model, self.config, self.labels = model, config, labels
        self.eval_args = dict(size=config["image_size"], mode=config["eval_mode"],
                              crop_fraction=config["crop_fraction"], short_side=config["short_side"],
                              resize_method=config["resize_method"], dtype="float32", normalized=True)

    def serve_bytes(self, image_bytes):
        with tf.device("/cpu:0"):
            images = serving_input.decode_request(image_bytes, self.config["limits"],
                                                  lambda e: preprocess.eval_image(e, **self.eval_args),
                                                  self.config["image_size"], self.config["name_decode_errors"])
        return self.predict(images)

    def serve_images(self, images):
        limits = self.config["limits"]
        with tf.name_scope("request_limits"):
            shape = tf.shape(images, out_type=tf.int64)
            images = serving_input.checked(images, [
                serving_input.limit(shape[0], limits["max_batch"], INPUT_IMAGES + ": the request holds {} images",
                                    "max_batch"),
                serving_input.limit(shape[1] * shape[2], limits["max_pixels"], INPUT_IMAGES + ": the images are {} x "
                                    "{} pixels = {} pixels each", "max_pixels", (shape[2], shape[1]))])
        return self.predict(preprocess.eval_view(images, **self.eval_args))

    def predict(self, images):
        images = tf.cast(images, self.model.inputs[0].dtype)
        logits = tf.cast(self.model(images, training=False), tf.float32)
        probabilities = tf.nn.softmax(logits)
        top = tf.math.top_k(logits, k=min(TOP_K, self.config["num_classes"]))
        outputs = {"logits": logits, "probabilities": probabilities, "top_k_classes": top.indices,
                   "top_k_scores": tf.gather(probabilities, top.indices, batch_dims=1)}
        if self.labels is not None:
            outputs["top_k_names"] = self.names(top.indices)
        return outputs

    def names(self, classes):
        stored = stored_label(tf.cast(classes, tf.int64), self.config["label_offset"])
        lines = self.labels.lookup(stored)  # "<stored label> <name>"
        return tf.strings.regex_replace(lines, "^[^ ]* ", "", replace_global=False)


def _label_table(path):
    """Hash table {stored label: "<stored label> <name>" line} initialized from the asset `path`."""
    initializer = tf.lookup.TextFileInitializer(
        tf.saved_model.Asset(path), key_dtype=tf.int64, key_index=0, value_dtype=tf.string,
        value_index=tf.lookup.TextFileIndex.WHOLE_LINE, delimiter=" ")
    return tf.lookup.StaticHashTable(initializer, default_value="")


class _NoFusion(keras.layers.Layer):
    """Identity (an `EnsureShape`) that keeps grappler from fusing the op before it with the ones after it."""

    def call(self, x):
        return tf.ensure_shape(x, x.shape)


class _NoFusionConv(keras.layers.Layer):
    """A grouped convolution with a bias (BN folded into it) computed as conv -> `EnsureShape` -> bias add, so
    that grappler does not fuse the convolution with its own bias either. Shares the layer's weights."""

    def __init__(self, conv, **kwargs):
        super().__init__(**kwargs)
        self.conv = conv

    def call(self, x):
        y = self.conv.convolution_op(x, self.conv.kernel)
        y = tf.nn.bias_add(tf.ensure_shape(y, y.shape), tf.cast(self.conv.bias, y.dtype))
        return self.conv.activation(y)


def without_grouped_conv_fusion(model):
    """`model`, or for a Functional model with grouped convolutions a copy sharing its layers (and weights) with
    a `_NoFusion` after each grouped convolution, or, for one with a bias, the convolution computed by a
    `_NoFusionConv` (see the module docstring)."""
    def grouped(layer):
        return isinstance(layer, keras.layers.Conv2D) and layer.groups > 1

    if not _is_functional(model) or not any(grouped(layer) for layer in model.layers):
        return model

    def call(layer, *args, **kwargs):
        if not grouped(layer):
            return layer(*args, **kwargs)
        if layer.use_bias:
            return _NoFusionConv(layer, dtype=layer.dtype_policy, name=f"{layer.name}_no_fusion")(*args)
        outputs = layer(*args, **kwargs)
        return _NoFusion(dtype=layer.dtype_policy, autocast=False, name=f"{layer.name}_no_fusion")(outputs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)


def _is_functional(model):
    # Keras's Functional class is not public; Sequential models (no call_function in clone_model) are left alone
    return hasattr(model, "_run_through_graph") and not isinstance(model, keras.Sequential)


def eval_config(model, image_size, eval_mode="crop_fraction", crop_fraction=preprocess.CENTER_CROP_FRACTION,
                short_side=None, resize_method="bilinear"):
    """Validated export settings: image size, eval preprocessing and the number of classes (the SavedModel's and
    `regnet_tf.deploy`'s)."""
    if not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int; got {image_size!r}")
    if eval_mode not in preprocess.EVAL_MODES:
        raise ValueError(f"eval_mode must be one of {preprocess.EVAL_MODES}; got {eval_mode!r}")
    if resize_method not in preprocess.RESIZE_METHODS:
        raise ValueError(f"resize_method must be one of {preprocess.RESIZE_METHODS}; got {resize_method!r}")
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1]; got {crop_fraction}")
    if eval_mode == "resize_short":
        short_side = eval_short_side(image_size, short_side)
    if any(isinstance(layer, keras.layers.Normalization) for layer in model.layers):
        raise ValueError("the model normalizes its input itself (include_preprocessing=True?); the export feeds it "
                         "ImageNet mean/std-normalized images: build it without include_preprocessing")
    input_shape, output_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(input_shape) != 4 or input_shape[-1] != 3 or any(n not in (None, image_size) for n in input_shape[1:3]):
        raise ValueError(f"the model takes inputs of shape {input_shape}; the export feeds [B, {image_size}, "
                         f"{image_size}, 3] images (image_size={image_size})")
    if len(output_shape) != 2 or output_shape[-1] is None:
        raise ValueError(f"the model must output logits [B, K] (include_top=True, classifier_activation=None); "
                         f"its output has shape {output_shape}")
    return {"image_size": image_size, "eval_mode": eval_mode, "crop_fraction": float(crop_fraction),
            "short_side": short_side if eval_mode == "resize_short" else None, "resize_method": resize_method,
            "num_classes": int(output_shape[-1])}


def label_names(label_map, label_offset, num_classes):
    """[name of class 0, ..., name of class K-1] from a label_map.txt path or a {class index: name} dict."""
    if isinstance(label_map, dict):
        names, source = {int(k): str(v) for k, v in label_map.items()}, "the label_map dict"
    else:
        path = label_map_file(label_map)
        names, source = read_label_map(path, label_offset), f"{path} (with label_offset={label_offset})"
    expected = set(range(num_classes))
    if set(names) != expected:
        missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
        raise ValueError(f"{source} must name every class 0..{num_classes - 1} of the model exactly once; "
                         f"missing class indices {missing[:10]}, unknown class indices {extra[:10]}")
    check_label_names(names, source)
    return [names[k] for k in range(num_classes)]


def _metadata(model, config, has_labels, label_offset, metadata):
    """The content of `assets.extra/regnet_tf.json` (checked JSON-serializable before anything is written)."""
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be None or a JSON-serializable dict; got {type(metadata).__name__}")
    outputs = ["logits", "probabilities", "top_k_classes", "top_k_scores"] + (["top_k_names"] if has_labels else [])
    info = {
        "model": model.name,
        "image_size": config["image_size"],
        "num_classes": config["num_classes"],
        "top_k": min(TOP_K, config["num_classes"]),
        "preprocessing": preprocessing_info(config),
        "compute_dtype": model.dtype_policy.compute_dtype,
        "signatures": {
            SERVING_DEFAULT: {"inputs": {INPUT_BYTES: {"dtype": "string", "shape": [None]}}, "outputs": outputs},
            SERVING_IMAGE_TENSOR: {"inputs": {INPUT_IMAGES: {"dtype": "uint8", "shape": [None, None, None, 3]}},
                                   "outputs": outputs},
        },
        "label_map": f"assets/{LABEL_MAP_ASSET}" if has_labels else None,
        "label_offset": label_offset if has_labels else None,
        "limits": dict(config["limits"]), "name_decode_errors": config["name_decode_errors"],
        "versions": {"regnet_tf": regnet_tf.__version__, "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "metadata": metadata,
    }
    try:
        json.dumps(info)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata must be a JSON-serializable dict: {e}") from None
    return info


def preprocessing_info(config):
    mode = config["eval_mode"]
    info = {"eval_mode": mode, "resize_method": config["resize_method"]}
    if mode == "crop_fraction":
        info["crop_fraction"] = config["crop_fraction"]
    else:
        info["short_side"] = config["short_side"]
    info["normalization"] = {"mean_rgb": list(MEAN_RGB), "std_rgb": list(STD_RGB)}
    return info


def _write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def _check_target(export_dir, overwrite):
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise FileExistsError(f"export_dir {export_dir!r} exists and is not a directory")
    if os.path.isdir(export_dir) and os.listdir(export_dir) and not overwrite:
        raise FileExistsError(f"export_dir {export_dir!r} exists and is not empty; export a new version "
                              f"directory, or pass overwrite=True to replace it")


def _sibling(export_dir, kind):
    """A fresh hidden sibling path, e.g. `.1.tmp-3f2a9c1b` (TF Serving loads only numeric version directories)."""
    parent, name = os.path.split(export_dir)
    return os.path.join(parent, f".{name}.{kind}-{uuid.uuid4().hex[:8]}")


def _commit(staging, export_dir, overwrite):
    """Renames the finished `staging` directory to `export_dir`; with `overwrite`, the existing version is moved
    aside first and deleted after the rename (restored if the rename fails)."""
    _check_target(export_dir, overwrite)
    old = None
    if os.path.isdir(export_dir) and os.listdir(export_dir):
        old = _sibling(export_dir, "old")
        os.rename(export_dir, old)
    elif os.path.isdir(export_dir):
        os.rmdir(export_dir)
    try:
        os.rename(staging, export_dir)
    except OSError:
        if old is not None:
            os.rename(old, export_dir)
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
