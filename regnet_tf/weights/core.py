"""What every weight converter shares: reading checkpoint files, the strict tensor-by-tensor assignment, the
`WeightsConfig` that converted weights carry, saving / reading both in one ``.weights.h5`` file, and loading such a
file by layer name into a model of any top, pooling or input shape (`load_by_name`).

A source (timm, pycls, tf_keras, Keras; one module each in this package) is a `Source`: it names, for each of our
weight-bearing layers, the prefix of its tensors in the source (``s1_b1_a`` -> ``s1.b1.conv1.conv``), says how the
source's network differs from ours by default (padding, BN epsilon, input normalization) and may fix tensors up
(pycls: the stem conv from BGR to RGB). `assign` then moves every tensor, transposed to Keras's layout, and refuses
the model when anything does not match: a tensor of ours with no source tensor, a source tensor left unused, or a
shape that differs. Nothing is silently left at its initial value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Callable, Dict, Optional, Tuple

import h5py
import ml_dtypes
import numpy as np
import safetensors
import safetensors.numpy

from regnet_tf.data.format import MEAN_RGB, STD_RGB

CONFIG_ATTR = "regnet_tf_weights_config"  # root attribute of a converted .weights.h5 file (JSON)
CHECKPOINT_SUFFIXES = (".safetensors", ".npz", ".pth", ".pt", ".pyth", ".bin")
IGNORED = (r"(^|\.)num_batches_tracked$",)  # source tensors that carry no weights (PyTorch BN step counters)
# our variable name -> the PyTorch state-dict suffix
TORCH_NAMES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
               "moving_variance": "running_var"}


# spec fields that do not shape the weights (training options, and conventions a converter sets from its source)
TRAINING_FIELDS = frozenset({"dropout", "drop_path_rate", "bn_eps", "bn_momentum", "padding", "zero_init_last_bn"})


def architecture(spec) -> dict:
    """The fields of a resolved spec that shape its weights and function (`TRAINING_FIELDS` left out)."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.name not in TRAINING_FIELDS}


class ConversionError(ValueError):
    """The source's tensors do not fit the model (the message lists what does not match), or cannot be read."""


@dataclasses.dataclass(frozen=True)
class WeightsConfig:
    """What converted weights carry besides their tensors (stored in the ``.weights.h5`` file, `save`).

    - ``spec``: spec options the weights need (``padding``, ``bn_eps``); the builder applies them.
    - ``input_mean`` / ``input_std``: the RGB normalization (0-1 scale) the weights were trained with. Every
      regnet_tf model takes ImageNet mean/std-normalized RGB; weights trained on another normalization get an
      ``input_adapter`` layer that computes theirs from ours, so `preprocess_input` and the pipelines stay the same.
    - ``input_size``, ``crop_fraction``, ``interpolation``: the evaluation settings the weights were measured with.
    """

    model: str  # registry name ("" for a spec built by hand)
    source: str  # timm | pycls | tf_keras | keras
    tag: str = ""  # e.g. "timm/regnety_040.ra3_in1k"
    url: str = ""
    spec: Dict[str, object] = dataclasses.field(default_factory=dict)
    input_mean: Tuple[float, float, float] = tuple(MEAN_RGB)
    input_std: Tuple[float, float, float] = tuple(STD_RGB)
    input_size: int = 224
    crop_fraction: float = 0.875
    interpolation: str = "bilinear"
    classes: int = 1000
    notes: Tuple[str, ...] = ()

    def __post_init__(self):
        for key in ("input_mean", "input_std", "notes"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "spec", dict(self.spec))

    def input_adapter(self) -> Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]]:
        """(scale, offset) with ours * scale + offset = the weights' own input, or None when they are the same."""
        if np.allclose(self.input_mean, MEAN_RGB, rtol=0, atol=1e-12) and np.allclose(self.input_std, STD_RGB,
                                                                                          rtol=0, atol=1e-12):
            return None
        scale = tuple(float(s / t) for s, t in zip(STD_RGB, self.input_std))
        offset = tuple(float((m - n) / t) for m, n, t in zip(MEAN_RGB, self.input_mean, self.input_std))
        return scale, offset

    def eval_settings(self) -> Dict[str, object]:
        """The eval pipeline's settings (`DataConfig` fields) the weights were measured with."""
        method = self.interpolation if self.interpolation in ("bilinear", "bicubic") else "bilinear"
        return {"image_size": int(self.input_size), "eval_mode": "crop_fraction",
                "eval_crop_fraction": float(self.crop_fraction), "resize_method": method}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "WeightsConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in fields})


@dataclasses.dataclass(frozen=True)
class Source:
    """A place weights come from, described for `assign` (one instance per source module)."""

    name: str  # timm | pycls | tf_keras | keras
    style: str  # "torch": (O, I, kh, kw) kernels, "prefix.weight"; "keras": Keras layout, "layer/kernel"
    prefixes: Callable  # (spec, layer_names) -> {our layer name: source prefix}
    head: Callable = lambda spec: ()  # (spec) -> the classifier's source keys (unused when include_top=False)
    # (spec, tensors, arch) -> WeightsConfig fields (spec, input_mean, ...); arch: the source's own model name when
    # known (e.g. timm "tf_efficientnet_b0": TF padding and BN epsilon), else ""
    options: Callable = lambda spec, tensors, arch: {}
    prepare: Callable = lambda spec, tensors: tensors  # (spec, tensors) -> tensors, e.g. a BGR -> RGB stem
    # (input, spec) -> tensors, for inputs that are not checkpoint files (Keras models). `convert` hands the same
    # mapping object on to prepare and options, so read may attach what options needs to it
    # (keras_applications: input_norm).
    read: Optional[Callable] = None


# ---- reading checkpoint files ---- #

def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    """A ``.safetensors`` file as numpy arrays, read by the ``safetensors`` package (no torch), which validates the
    header and the offsets. bfloat16 becomes float32 (numpy reads bfloat16 through ``ml_dtypes``, which registers
    the type with numpy; Keras and TensorFlow depend on it)."""
    try:
        tensors = safetensors.numpy.load_file(path)
    except (safetensors.SafetensorError, OSError, TypeError, AttributeError, ValueError) as e:
        # SafetensorError: a bad header, offsets or size; TypeError / AttributeError: a dtype numpy cannot hold
        raise ConversionError(f"{path} is not a .safetensors file regnet_tf can read ({' '.join(str(e).split())})") \
            from None
    return {k: a.astype(np.float32) if a.dtype == ml_dtypes.bfloat16 else a for k, a in tensors.items()}


def _read_torch(path: str):
    try:
        import torch
    except ImportError:
        raise ConversionError(
            f"reading {os.path.basename(path)} needs PyTorch, which is not installed: pip install 'regnet-tf[timm]' "
            "(or save the state dict as .safetensors or .npz, which regnet_tf reads without torch)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ConversionError(f"cannot read {path} with torch.load(weights_only=True): {e}") from None
    return obj


def unwrap_checkpoint(obj) -> dict:
    """A training checkpoint -> its model state dict: pycls ``model_state`` (or ``ema_state`` when its recorded
    error is lower, as pycls's own loader picks), timm/torchvision ``state_dict`` / ``model`` / ``state_dict_ema``."""
    if not isinstance(obj, dict):
        raise ConversionError(f"expected a state dict (a mapping of tensor names to tensors); got {type(obj).__name__}")
    if "model_state" in obj:
        best = obj["model_state"]
        if "ema_state" in obj and obj.get("ema_err", float("inf")) < obj.get("test_err", float("inf")):
            best = obj["ema_state"]
        return best
    for key in ("state_dict", "model", "module"):
        if key in obj and isinstance(obj[key], dict):
            return obj[key]
    return obj


def read_tensors(path: str) -> Dict[str, np.ndarray]:
    """A checkpoint file (``.safetensors``, ``.npz``, or with torch ``.pth`` / ``.pt`` / ``.pyth`` / ``.bin``) as
    {name: numpy array}. Wrapped checkpoints are unwrapped (`unwrap_checkpoint`); a ``module.`` prefix (DDP) is
    dropped."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError(f"no such checkpoint file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".safetensors":
        tensors = read_safetensors(path)
    elif ext == ".npz":
        with np.load(path, allow_pickle=False) as z:
            tensors = {k: z[k] for k in z.files}
    elif ext in CHECKPOINT_SUFFIXES:
        tensors = {}
        for k, v in unwrap_checkpoint(_read_torch(path)).items():
            if hasattr(v, "detach"):
                v = v.detach().cpu()
                tensors[k] = (v.float() if str(v.dtype) == "torch.bfloat16" else v).numpy()
    else:
        raise ConversionError(f"{path}: unknown checkpoint format {ext or '(no suffix)'}; regnet_tf reads "
                              f"{', '.join(CHECKPOINT_SUFFIXES)}")
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


# ---- moving tensors into a Keras model ---- #


def _layout(layer, var: str, a: np.ndarray, style: str) -> np.ndarray:
    """A source tensor in Keras's layout for ``layer``'s variable ``var``."""
    if style != "torch" or var != "kernel":
        return a
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return np.transpose(a, (2, 3, 0, 1)) if a.ndim == 4 else a
    if isinstance(layer, keras.layers.Dense):  # (out, in) -> (in, out)
        return a.T if a.ndim == 2 else a
    return np.transpose(a, (2, 3, 1, 0)) if a.ndim == 4 else a  # conv (O, I/g, kh, kw) -> (kh, kw, I/g, O)


def source_key(prefix: str, var: str, style: str) -> str:
    return f"{prefix}.{TORCH_NAMES.get(var, var)}" if style == "torch" else f"{prefix}/{var}"


def _listing(title: str, items, limit: int = 25) -> str:
    items = list(items)
    if not items:
        return ""
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"\n  {title} ({len(items)}):\n    " + "\n    ".join(items[:limit]) + more


def assign(model, tensors: Dict[str, np.ndarray], source: Source, spec, *, what: str = "") -> int:
    """Sets every variable of ``model`` from ``tensors`` (a source state dict) through ``source``'s mapping.

    Raises `ConversionError` listing our variables without a source tensor, source tensors left unused (the
    classifier's too, unless the model has no classifier) and shape mismatches; assigns nothing then.
    Returns the number of tensors assigned.
    """
    names = [layer.name for layer in model.layers if layer.weights]
    prefixes = source.prefixes(spec, names)
    has_top = any(layer.name == "predictions" for layer in model.layers)
    unmapped = [n for n in names if n not in prefixes]
    plan, missing, shapes, used = [], [], [], set()
    for layer in model.layers:
        if layer.name not in prefixes:
            continue
        for v in layer.weights:
            var = v.path.split("/")[-1]
            key = source_key(prefixes[layer.name], var, source.style)
            if key not in tensors:
                missing.append(f"{layer.name}/{var} <- {key}")
                continue
            used.add(key)
            a = _layout(layer, var, np.asarray(tensors[key]), source.style)
            if tuple(a.shape) != tuple(v.shape):
                shapes.append(f"{layer.name}/{var} {tuple(v.shape)} <- {key} {tuple(np.shape(tensors[key]))}")
            else:
                plan.append((v, a))
    ignored = [re.compile(p) for p in IGNORED]
    head = set() if has_top else set(source.head(spec))
    unused = sorted(k for k in tensors if k not in used and k not in head and not any(p.search(k) for p in ignored))
    problems = (_listing("our layers with no source mapping", unmapped) + _listing("missing in the source", missing)
                + _listing("shapes that differ (ours <- source)", shapes)
                + _listing("source tensors left unused", unused))
    if problems:
        raise ConversionError(
            f"the {source.name} weights{what} do not fit this model ({model.name}); nothing was loaded. Check the "
            f"model name and its options (e.g. include_top, classes):{problems}")
    for v, a in plan:
        v.assign(a.astype(v.dtype))
    return len(plan)


# ---- converted weights on disk: Keras weights + the WeightsConfig in one file ---- #


def save(model, path: str, config: WeightsConfig) -> str:
    """Writes ``model``'s weights with ``config`` to ``path`` (``.weights.h5``) atomically (a temporary file in the
    same directory, renamed over the target)."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"converted weights are saved as a Keras '.weights.h5' file; got {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path[:-len('.weights.h5')]}.tmp{os.getpid()}.weights.h5"
    try:
        model.save_weights(tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs[CONFIG_ATTR] = config.to_json()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_config(path: str) -> Optional[WeightsConfig]:
    """The `WeightsConfig` stored in a converted ``.weights.h5`` file; None for other files (e.g. plain Keras
    weights or a ``.keras`` model)."""
    path = os.fspath(path)
    if not path.endswith(".h5"):
        return None
    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get(CONFIG_ATTR)
    except OSError:
        return None
    return WeightsConfig.from_json(text if isinstance(text, str) else text.decode()) if text is not None else None


def _file_layers(f, path: str) -> Dict[str, list]:
    """{layer name: its variables in saved order} of a Keras 3 ``.weights.h5`` (``save_weights``): Keras keys each
    layer by its class (``layers/conv2d_3/vars/0``, ``/1``, ...) and records the layer's name on the ``vars`` group
    (Keras >= 3.6). Layers without variables are left out."""
    out = {}
    for group in f["layers"].values() if "layers" in f else ():
        saved = group.get("vars")
        if saved is None or not len(saved):
            continue
        name = saved.attrs.get("name")
        if name is None:
            raise ConversionError(f"{path} does not name its layers (written by Keras < 3.6): convert the weights "
                                  "again with this Keras")
        arrays = [saved[str(i)] for i in range(len(saved))]
        out[name.decode() if isinstance(name, bytes) else str(name)] = [
            np.array(a, dtype=ml_dtypes.bfloat16) if a.attrs.get("dtype") == "bfloat16" else a[()] for a in arrays]
    return out


def _names(items, limit: int = 8) -> str:
    items = list(items)
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _read_layers(path: str) -> Dict[str, list]:
    try:
        with h5py.File(os.fspath(path), "r") as f:
            return _file_layers(f, os.fspath(path))
    except OSError as e:
        raise ConversionError(f"cannot read the weights file {path}: {' '.join(str(e).split())}") from None


def _match(model, stored, new=()):
    """(plan [(layer, arrays)], initialized [names of `new` layers left at their initial values, with the reason],
    problems [one phrase per kind of mismatch]) of setting ``model``'s weight-bearing layers from ``stored``."""
    plan, missing, shapes, nested, initialized = [], [], [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        own = {}
        layer.save_own_variables(own)  # Keras's order of the layer's variables, as the file holds them
        want = [tuple(own[str(i)].shape) for i in range(len(own))]
        have = [tuple(a.shape) for a in stored.get(layer.name, ())]
        if len(want) != len(layer.weights):
            nested.append(layer.name)  # a layer with layers inside: not a layout converted files have
        elif layer.name not in stored:
            if layer.name in new:
                initialized.append(f"{layer.name} (not in the file)")
            else:
                missing.append(layer.name)
        elif have != want:
            if layer.name in new:
                initialized.append(f"{layer.name} (shapes {want} here, {have} in the file)")
            else:
                shapes.append(f"{layer.name} {want} vs {have}")
        else:
            plan.append((layer, stored[layer.name]))
    names = {layer.name for layer in model.layers}
    extra = sorted(n for n in stored if n not in names and n not in new)
    problems = [f"{title}: {_names(items)}" for title, items in (
        ("missing in the file", missing), ("shapes that differ (model vs file)", shapes),
        ("in the file but not in the model", extra), ("layers with nested layers, not loadable by name", nested))
        if items]
    return plan, initialized, problems


def load_by_name(model, path: str, *, unused_ok=()) -> int:
    """Sets every weight-bearing layer of ``model`` from the layer of the same name in a Keras 3 ``.weights.h5``
    file (any top, pooling or input shape: nothing else is built), through Keras's own per-layer loading
    (`Layer.load_own_variables`, the inverse of the ``save_own_variables`` that wrote the file).

    Raises `ConversionError` (one line) naming our layers missing in the file, layers whose variable shapes differ,
    and weight-bearing layers of the file that ``model`` does not have, other than ``unused_ok`` (e.g. the file's
    classifier, ``("predictions",)``, for a model built without its top); assigns nothing then. Returns the number
    of variables assigned.
    """
    names = {layer.name for layer in model.layers}
    plan, _, problems = _match(model, {k: v for k, v in _read_layers(path).items() if k in names or k not in unused_ok})
    _apply(model, path, plan, problems)
    return sum(len(arrays) for _, arrays in plan)


def load_matching(model, path: str, *, new=("predictions",), skip=()):
    """Fine-tuning's loading: `load_by_name`, except that the layers named in ``new`` (the classifier) keep their
    initial values when the file lacks them or holds other shapes (another class count), and the file's ``new``
    layers need no counterpart; the file's layers named in ``skip`` are not loaded (e.g. a classifier of as many,
    but other, classes). Every other mismatch is the same one-line `ConversionError`. Returns (names of the layers
    loaded, ``new`` layers initialized with the reason, e.g. "predictions (shapes [(1280, 5), (5,)] here, ...)").
    """
    stored = {k: v for k, v in _read_layers(path).items() if k not in skip}
    plan, initialized, problems = _match(model, stored, new=tuple(new))
    _apply(model, path, plan, problems)
    return [layer.name for layer, _ in plan], initialized


def _apply(model, path, plan, problems):
    if problems:
        raise ConversionError(f"the weights {path} do not fit {model.name} (nothing was loaded; check the model "
                              f"name and its options): {'; '.join(problems)}")
    for layer, arrays in plan:
        layer.load_own_variables({str(i): a for i, a in enumerate(arrays)})
