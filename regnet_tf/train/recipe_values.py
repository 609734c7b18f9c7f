"""Recipe values: type conversion of YAML values to the schema's types, and the values a recipe leaves to the model
(`data.image_size: model`, `data.randaug_magnitude: model`) or computes from it (`model.scale`). Plain dicts in,
plain dicts out; `regnet_tf.train.recipe` builds the typed `Recipe` from them. No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import types
import typing

from regnet_tf.data.config import DataConfig
from regnet_tf import zoo
from regnet_tf.zoo import get_entry, list_models

DERIVED = "model"  # the value of a data key that the model decides (image_size, randaug_magnitude)
FROM_WEIGHTS = "weights"  # data.image_size: weights -> the eval resolution of finetune.weights (`weights_resolution`)


def field_names(obj) -> set:
    """The field names of a dataclass (class or instance)."""
    return {f.name for f in dataclasses.fields(obj)}


def check_fields(recipe_name, spec, changes, what):
    """A ValueError if a key of `changes` is not a field of the dataclass `spec` (naming it and the valid ones)."""
    unknown = sorted(set(changes) - field_names(spec))
    if unknown:
        name = spec.__name__ if isinstance(spec, type) else type(spec).__name__
        raise ValueError(f"recipe {recipe_name!r}: {name} of {what} has no field(s) {unknown}; valid: "
                         f"{sorted(field_names(spec))}")


SCALE_KEYS = ("base", "factor", "strategy", "alpha", "resolution")


def derive_scale(raw: dict) -> dict:
    """A raw recipe whose `model.scale` ({base, factor, strategy (dWr), alpha (0.8)}) is resolved: model.kind and
    model.spec become the scaled spec (`regnet_tf.zoo.scale`; `model.spec` keys of the file change fields of the scaled
    spec), `model.scale.resolution` the scaled resolution, which `data.image_size: model` then takes. A recipe that
    has model.kind already (e.g. a model_dir's recipe.yaml) is resolved: its `scale` is the record."""
    model = raw.get("model") or {}
    scale = model.get("scale")
    if not scale or model.get("kind"):
        return raw
    where = "model.scale"
    if not isinstance(scale, dict) or "base" not in scale or "factor" not in scale:
        raise ValueError(f"{where} is {{base: <registered model>, factor: <flops multiple>, strategy: dWr, alpha: 0.8}}"
                         f"; got {scale!r}")
    unknown = sorted(set(scale) - set(SCALE_KEYS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; valid: {', '.join(SCALE_KEYS)}")
    if model.get("name"):
        raise ValueError(f"{where} names the model to scale (base: {scale['base']}); remove model.name "
                         f"{model['name']!r}")
    get_entry(scale["base"])  # an unknown model lists the valid names
    factor = convert_value(scale["factor"], float, f"{where}.factor")
    strategy = scale.get("strategy", "dWr")
    alpha = convert_value(scale.get("alpha", 0.8), float, f"{where}.alpha")
    spec, resolution = zoo.scale(scale["base"], factor, strategy, alpha, scale.get("resolution"))
    check_fields(raw.get("name", ""), spec, model.get("spec") or {}, f"{where} ({scale['base']} scaled)")
    fields = dict(to_plain(dataclasses.asdict(spec)), **(model.get("spec") or {}))
    record = dict(base=scale["base"], factor=factor, strategy=strategy, alpha=alpha, resolution=resolution)
    return dict(raw, model=dict(kind=type(spec).kind, spec=fields, scale=record))


def derive_data(raw: dict) -> dict:
    """A raw recipe with its `DERIVED` data values replaced by numbers: `data.image_size: model` -> the registered
    resolution of model.name; `data.randaug_magnitude: model` -> its family's magnitude rule at data.image_size."""
    data = raw.get("data") or {}
    model = raw.get("model") or {}
    if data.get("image_size") == FROM_WEIGHTS:
        weights = (raw.get("finetune") or {}).get("weights") or ""
        data = dict(data, image_size=weights_resolution(weights, model.get("name", "")) if weights else DERIVED)
        raw = dict(raw, data=data)
    keys = [k for k in ("image_size", "randaug_magnitude") if data.get(k) == DERIVED]
    if not keys:
        return raw
    scale = model.get("scale") or {}
    name = model.get("name") or scale.get("base")
    if not name:
        raise ValueError(f"data.{keys[0]}: {DERIVED} takes the value from the registered model: it needs model.name "
                         "(or model.scale)")
    entry, data = get_entry(name), dict(data)
    if data.get("image_size") == DERIVED:
        data["image_size"] = scale.get("resolution") or entry.resolution
    if data.get("randaug_magnitude") == DERIVED:
        if entry.randaug_magnitude is None:
            with_rule = sorted({get_entry(n).family for n in list_models() if get_entry(n).randaug_magnitude})
            raise ValueError(f"data.randaug_magnitude: {DERIVED}: the {entry.family} family ({name}) has no "
                             f"RandAugment magnitude rule (families with one: {', '.join(with_rule)}); give a number")
        size = convert_value(data.get("image_size", DataConfig.image_size), int, "data.image_size")
        data["randaug_magnitude"] = entry.randaug_magnitude(size)
    return dict(raw, data=data)


def weights_resolution(weights: str, model_name: str = "") -> int:
    """The eval resolution of fine-tuning's `finetune.weights`: a run's model_dir -> its data.image_size; a converted
    .weights.h5 -> its WeightsConfig input_size; "imagenet" or a tag -> the weights table's; another file -> the
    registered resolution of `model_name`. Reads no tensor and imports no TensorFlow."""
    import os

    import yaml

    from regnet_tf.weights import pretrained
    from regnet_tf.weights.core import read_config

    if os.path.isdir(weights):
        path = os.path.join(weights, "recipe.yaml")
        if not os.path.isfile(path):
            raise ValueError(f"finetune.weights={weights!r} is a directory without recipe.yaml: give a model_dir "
                             "written by launch/train.py, a weights file, 'imagenet' or a weights tag")
        with open(path, encoding="utf-8") as f:
            return int(((yaml.safe_load(f) or {}).get("data") or {}).get("image_size", DataConfig.image_size))
    config = read_config(weights) if os.path.isfile(weights) else None
    if config is not None:
        return int(config.input_size)
    if not model_name:
        raise ValueError(f"data.image_size: {FROM_WEIGHTS} with finetune.weights={weights!r} needs model.name (a "
                         "registered model) or a number")
    if os.path.isfile(weights):
        return get_entry(model_name).resolution
    return int(pretrained.lookup(model_name, weights).input_size)


def to_plain(x):
    """`x` with its tuples as lists, recursively through dicts and lists: what YAML writes and reads back."""
    if isinstance(x, dict):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    return x


def convert_value(value, hint, where):
    """A YAML `value` as the type `hint` of a schema field (an int or "1e-4" becomes a float, a list a tuple; None
    passes for an Optional); any other mismatch is a ValueError naming `where` (e.g. "train.epochs") and the type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # Optional[x], x | None
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        return convert_value(value, hint, where)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    if hint in (tuple,) or origin is tuple:
        if isinstance(value, (list, tuple)):
            return tuple(value)
    if origin is dict or hint is dict:
        if isinstance(value, dict):
            return dict(value)
    if hint is typing.Any:
        return value
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r} ({type(value).__name__})")
