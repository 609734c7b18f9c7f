"""Runners of exported files (`regnet_tf.deploy`): one call, pixels in, float32 logits out, whatever the runtime.

    from regnet_tf import runtimes
    runner = runtimes.load("out/model_int8.tflite", threads=2)   # .tflite, .onnx, OpenVINO .xml, a SavedModel dir
    logits = runner(pixels)           # uint8 or float [B, S, S, 3] RGB 0-255, cropped and resized the sidecar's way
    runner.info["class_names"]        # the sidecar `<file>.json`

Each runtime on its fastest setting for CPUs: TFLite through ai-edge-litert's interpreter (`tf.lite.Interpreter` is
deprecated) with its default XNNPACK delegate; onnxruntime with every graph optimization; OpenVINO's CPU plugin with
the latency hint, in float32 unless asked (its default on CPUs with bfloat16 units is bfloat16: ~5e-3 relative).
A quantized input gets the pixels rounded half up (as the eval pipeline's uint8 view); a quantized output is
dequantized with the sidecar's scale and zero point. ``micro_batch=m`` runs a larger batch as consecutive calls of at
most m images (the same logits): on a CPU a small batch can keep its activations in cache, and XNNPACK ran
EfficientNet-B0's batch of 16 1.2x faster in calls of 2 images, on 1 and on 2 threads here (docs/SPEED.md,
"Micro-batches"; `launch/benchmark.py --formats ... --micro_batch 1,2,4,8` finds the best size for a machine).
A SavedModel directory runs its `serving_image_tensor` signature (uint8 pixels; its own crop, resize and
normalization), for side-by-side timings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings

import numpy as np

SIDECAR = ".json"
# OpenVINO's CPU inference precisions (`load(precision=...)`): float32 (ours by default), and the faster, less exact
# bfloat16 (the plugin's own default on CPUs with bf16 units) and float16. The other runtimes run the file as written.
PRECISIONS = ("f32", "bf16", "f16")
# (module, pip package) each file format needs to be written and run: the `export` extra
TOOLS = {"tflite": [("ai_edge_litert", "ai-edge-litert")],
         "onnx": [("tf2onnx", "tf2onnx"), ("onnxruntime", "onnxruntime")],
         "openvino": [("openvino", "openvino")]}


class ExportError(ValueError):
    """A model that a format cannot take, a missing tool, or an export whose outputs differ from the model's."""


def family(fmt):
    """"tflite" for the three TFLite formats, else the format."""
    return "tflite" if fmt.startswith("tflite") else fmt


def check_tools(fmt):
    """ExportError naming the pip packages when a tool `fmt` needs is not installed."""
    missing = [pip for module, pip in TOOLS.get(family(fmt), []) if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(f"format {fmt!r} needs {' and '.join(missing)}: pip install 'regnet_tf[export]' "
                          f"(or pip install {' '.join(missing)})")


def read_sidecar(path):
    """The sidecar of an exported file (`<file>.json`); a one-line error when it is missing."""
    sidecar = os.fspath(path) + SIDECAR
    if not os.path.exists(sidecar):
        raise FileNotFoundError(f"{sidecar} not found: the sidecar launch/export.py writes next to {path} holds its "
                                "image size, preprocessing and classes; export again, or copy it along")
    with open(sidecar, encoding="utf-8") as f:
        return json.load(f)


def load(path, threads=None, info=None, precision="f32", micro_batch=None):
    """A runner for an exported file: `runner(pixels [B, S, S, 3], 0-255) -> float32 logits [B, K]`.

    `threads`: the runtime's intra-op threads (None: its default). `info`: the sidecar (default: read it).
    `precision` (OpenVINO): "f32" (default: within 1e-4 of Keras) or "bf16"/"f16" (the CPU plugin's faster
    default on CPUs with bfloat16 units, ~5e-3 relative). `micro_batch`: run a batch of more images as consecutive
    calls of at most this many (None: one call; module docstring). A SavedModel directory runs its
    `serving_image_tensor` signature (uint8 pixels, with its own crop and resize).
    """
    micro_batch = check_micro_batch(micro_batch)
    path = os.fspath(path)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)} (OpenVINO's CPU plugin)")
    if precision != "f32" and not path.endswith(".xml"):
        raise ValueError(f"precision {precision!r} is an OpenVINO option; {os.path.basename(path)} runs as it was "
                         "exported (tflite_fp16 and tflite_int8 are the TFLite ways to lower precision)")
    if os.path.isdir(path):
        runner = SavedModelRunner(path, threads)
    else:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} not found")
        info = info or read_sidecar(path)
        kind = {".tflite": TFLiteRunner, ".onnx": ONNXRunner, ".xml": OpenVINORunner}.get(os.path.splitext(path)[1])
        if kind is None:
            raise ExportError(f"{path}: not an exported file (.tflite, .onnx, OpenVINO .xml or a SavedModel "
                              "directory)")
        check_tools(info.get("format") or kind.fmt)
        runner = kind(path, info, threads, precision)
    runner.micro_batch = micro_batch
    return runner


def check_micro_batch(size):
    """`size` as a positive int, or None; a one-line ValueError otherwise."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"micro_batch must be a positive number of images or None; got {size!r}")
    return int(size)


def in_micro_batches(run, images, size=None):
    """`run(images)` computed as consecutive calls on at most `size` images each, the outputs concatenated: the same
    values as one call. None, or a size of at least the batch: one call."""
    if size is None or len(images) <= size:
        return run(images)
    return np.concatenate([run(images[i:i + size]) for i in range(0, len(images), size)])


class Runner:
    """Feeds pixels to one runtime; subclasses set `_run(array) -> array` and the input dtype."""

    fmt = ""
    fixed_size = True  # takes images of the sidecar's size only

    def __init__(self, path, info, threads=None, precision="f32"):
        self.path, self.info, self.threads, self.precision = path, info, threads, precision
        self.input_dtype, self.output_quantization, self.micro_batch = np.float32, None, None

    def __call__(self, images):
        images = np.asarray(images)
        if self.fixed_size and (images.ndim != 4 or list(images.shape[1:]) != [*self._size(), 3]):
            s = self._size()
            raise ValueError(f"{os.path.basename(self.path)} takes images [B, {s[0]}, {s[1]}, 3] (RGB pixels 0-255 "
                             f"after the eval crop and resize: see its sidecar); got {list(images.shape)}")
        return in_micro_batches(self._logits, images, self.micro_batch)

    def _logits(self, images):
        if self.input_dtype == np.uint8 and images.dtype != np.uint8:
            images = np.clip(np.floor(images.astype(np.float32) + 0.5), 0, 255)  # round half up, as the pipeline
        out = np.asarray(self._run(np.ascontiguousarray(images, self.input_dtype)))
        if self.output_quantization:
            scale, zero = self.output_quantization
            out = (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)

    def input_info(self):
        return {"name": "images", "dtype": np.dtype(self.input_dtype).name, "shape": [None, *self._size(), 3],
                "range": [0, 255], "layout": "NHWC, RGB"}

    def output_info(self):
        out = {"name": "logits", "dtype": "int8" if self.output_quantization else "float32",
               "shape": [None, self.info.get("num_classes")]}
        if self.output_quantization:
            out["quantization"] = {"scale": self.output_quantization[0], "zero_point": self.output_quantization[1]}
        return out

    def _size(self):
        s = self.info.get("image_size")
        return [s, s]


class TFLiteRunner(Runner):
    """ai-edge-litert's interpreter with XNNPACK (its default delegate); the input is resized to each batch size.
    XNNPACK refuses some int8 convolutions whose requantization scale is out of its range (seen with random weights):
    then the interpreter's builtin kernels run the file, said once (`delegate`: "XNNPACK" or "builtin")."""

    fmt = "tflite"

    def __init__(self, path, info, threads=None, precision="f32"):
        super().__init__(path, info, threads, precision)
        self.delegate = "XNNPACK"
        self._interpreter()
        scale, zero = self.output["quantization"]
        self.output_quantization = (float(scale), int(zero)) if scale else None

    def _interpreter(self):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (OpResolverType.AUTO if self.delegate == "XNNPACK"
                    else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.interpreter = Interpreter(model_path=self.path, num_threads=self.threads,
                                       experimental_op_resolver_type=resolver)
        self.input, self.output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self.input_dtype, self.batch = self.input["dtype"], None

    def _run(self, images):
        try:
            return self._invoke(images)
        except RuntimeError as e:
            if self.delegate != "XNNPACK" or "XNNPACK" not in str(e):
                raise
            warnings.warn(f"{self.path}: XNNPACK refused the file ({str(e).splitlines()[0][:120]}); running it on "
                          "LiteRT's builtin kernels", stacklevel=3)
            self.delegate = "builtin"
            self._interpreter()
            return self._invoke(images)

    def _invoke(self, images):
        if images.shape[0] != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], images.shape)
            self.interpreter.allocate_tensors()
            self.batch = images.shape[0]
        self.interpreter.set_tensor(self.input["index"], images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])


class ONNXRunner(Runner):
    """onnxruntime on the CPU with all graph optimizations."""

    fmt = "onnx"

    def __init__(self, path, info, threads=None, precision="f32"):
        super().__init__(path, info, threads, precision)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.name = self.session.get_inputs()[0].name

    def _run(self, images):
        return self.session.run(None, {self.name: images})[0]


class OpenVINORunner(Runner):
    """OpenVINO's CPU plugin, latency hint, float32 inference precision unless `precision` says otherwise. The file's
    batch size is dynamic; each batch size a call brings is compiled once with that static shape (at its first call),
    up to 1.09x faster here than the dynamic shape (EfficientNet-B0; ResNet-RS-50 at batch 16 the same: docs/SPEED.md).
    After `STATIC_SHAPES` sizes, further sizes run on the dynamic shape (each compiled model has its own weights)."""

    fmt = "openvino"
    STATIC_SHAPES = 8

    def __init__(self, path, info, threads=None, precision="f32"):
        super().__init__(path, info, threads, precision)
        import openvino as ov

        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        self.core = ov.Core()
        self.model = self.core.read_model(path)
        self.requests = {}  # input shape (None: dynamic) -> infer request

    def _request(self, shape):
        """The infer request for inputs of `shape`: compiled for that shape, or past `STATIC_SHAPES` the dynamic one."""
        static = shape in self.requests or len(self.requests.keys() - {None}) < self.STATIC_SHAPES
        key = shape if static else None
        if key not in self.requests:
            model = self.model
            if static:
                model = model.clone()
                model.reshape(list(shape))
            self.requests[key] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.requests[key]

    def _run(self, images):
        return self._request(images.shape).infer({0: images})[0]


class SavedModelRunner(Runner):
    """An exported SavedModel's `serving_image_tensor` signature (uint8 pixels; its own crop, resize and
    normalization); TensorFlow's threads are process-wide, so `threads` is left to the caller's settings."""

    fmt = "saved_model"
    fixed_size = False  # crops and resizes pixels of any size itself

    def __init__(self, path, threads=None):
        import tensorflow as tf

        # the export's metadata (regnet_tf.train.export.METADATA_FILE; not imported: train imports this module)
        with open(os.path.join(path, "assets.extra", "regnet_tf.json"), encoding="utf-8") as f:
            info = json.load(f)
        super().__init__(path, {**info, "format": "saved_model"}, threads)
        self.serve = tf.saved_model.load(path).signatures["serving_image_tensor"]
        self.input_dtype = np.uint8

    def _run(self, images):
        return self.serve(images=images)["logits"].numpy()
