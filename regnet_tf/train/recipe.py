"""Recipes: one typed schema (dataclasses) for a training run, YAML files with inheritance, `key=value` overrides.

    r = load("resnet_rs_152_224", overrides=["train.epochs=2", "data.image_size=128"])
    r.model.name, r.data.image_size, r.schedule.base_lr, r.ema.decay          # typed fields
    spec = r.spec()                                                           # the model spec it trains

A recipe file is YAML with the sections of `Recipe` (model, data, optimizer, schedule, regularization, ema, train,
runtime) plus `description`, `paper_top1` and `paper_ref`. `base: <recipe name or relative path>` inherits another
file: sections merge key by key, the child wins. Files whose name starts with `_` are bases, not listed as
recipes. Recipe names are file names without `.yaml`, unique under `recipes/` (subdirectories only group them).
Every key is checked: an unknown section or key, a value of the wrong type or an unknown recipe name is a
ValueError that lists the valid choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from typing import Any, Dict, List, Optional

import yaml

from regnet_tf.data.sources import DataConfig

# ---------------------------------------------------------------------------------------------------- schema


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # a registry name (regnet_tf.list_models()), e.g. regnety_016, resnet_rs_152, whose spec `spec` modifies; or a
    # spec type (anynet, regnet, resnet, efficientnet) built from `spec` alone, e.g. a sampled AnyNet
    name: str = ""
    spec: Dict[str, Any] = dataclasses.field(default_factory=dict)  # spec fields, e.g. {se_ratio: 0.25}


def spec_types():
    """{model.name: spec class} of the names that build a spec from `model.spec` alone."""
    from regnet_tf.models.anynet import AnyNetSpec
    from regnet_tf.models.efficientnet import EffNetSpec
    from regnet_tf.models.regnet import RegNetSpec
    from regnet_tf.models.resnet import ResNetSpec

    return {"anynet": AnyNetSpec, "regnet": RegNetSpec, "resnet": ResNetSpec, "efficientnet": EffNetSpec}


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "sgd"  # SGD with momentum (the papers' optimizer)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    # l2: adds weight_decay * sum(w^2) / 2 to the loss (TF references' wd * l2_loss, pycls/PyTorch SGD's coupled
    # decay: the gradient gets wd * w); decoupled: w -= lr * weight_decay * w after each step (Keras/AdamW style)
    weight_decay_mode: str = "l2"
    decay_all: bool = False  # False: conv/dense kernels only (TF2, fast-scaling paper); True: also BN and biases (pycls)


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: str = "cosine"  # cosine | step | exponential | constant
    base_lr: float = 0.1  # learning rate at base_batch_size; scaled linearly with the global batch size
    base_batch_size: int = 256
    warmup_epochs: float = 0.0  # linear warmup, replacing the start of the schedule (TF Model Garden)
    warmup_start: float = 0.0  # lr at step 0 as a fraction of the schedule's value at the end of warmup (pycls 0.1)
    min_lr: float = 0.0  # cosine: final lr as a fraction of the peak (pycls OPTIM.MIN_LR)
    boundaries: tuple = ()  # step: epochs at which the lr is multiplied by decay_rate
    decay_rate: float = 0.1
    final_lr: float = 0.02  # exponential: lr(t) = peak * final_lr ** (t / T) (fast-scaling paper's beta)


@dataclasses.dataclass(frozen=True)
class RegularizationConfig:
    label_smoothing: float = 0.0
    dropout: Optional[float] = None  # before the classifier; None: the registered spec's value
    drop_path_rate: Optional[float] = None  # stochastic depth; None: the registered spec's value


@dataclasses.dataclass(frozen=True)
class EMAConfig:
    decay: float = 0.0  # 0: no EMA. Averages every model variable, BN moving statistics included
    dynamic: bool = True  # decay_t = min(decay, (1 + t) / (10 + t)) (TF1/TF2 references)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: float = 90.0
    global_batch_size: int = 256
    steps: int = 0  # > 0: train this many steps instead of `epochs` (the schedule spans them)
    eval_every_epochs: float = 1.0  # also evaluated at the end; 0: only at the end
    checkpoint_every_steps: int = 0  # 0: every epoch
    keep_checkpoints: int = 3
    steps_per_loop: int = 0  # steps per compiled loop / progress-bar update; 0: min(100, steps per epoch)
    log_every_steps: int = 0  # TensorBoard / JSON train scalars; 0: every loop
    eval_steps: int = 0  # > 0: evaluate only this many batches (quick checks)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    mixed_precision: str = "auto"  # auto (bfloat16 on TPU, float16 on GPU, float32 on CPU) | none | bfloat16 | float16
    xla: str = "auto"  # auto (on for TPU and GPU, off on CPU: grouped convs) | on | off
    seed: int = 0  # weights and data order; the run is reproducible on one device when data.deterministic is set


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str = ""
    description: str = ""
    paper_top1: Optional[float] = None  # the top-1 the paper reports for this recipe (ImageNet validation)
    paper_ref: str = ""  # where: e.g. "Revisiting ResNets, Table 8"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    regularization: RegularizationConfig = dataclasses.field(default_factory=RegularizationConfig)
    ema: EMAConfig = dataclasses.field(default_factory=EMAConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def __post_init__(self):
        _validate(self)

    # ---- what the recipe trains
    def spec(self):
        """The model spec: the registered spec of `model.name` with `model.spec` and the regularization applied."""
        from regnet_tf.models.registry import get_spec, resolve

        changes = dict(self.model.spec)
        for key in ("dropout", "drop_path_rate"):
            if getattr(self.regularization, key) is not None:
                changes[key] = getattr(self.regularization, key)
        types = spec_types()
        if self.model.name in types:
            cls = types[self.model.name]
            unknown = sorted(set(changes) - _field_names(cls))
            if unknown:
                raise ValueError(f"recipe {self.name!r}: {cls.__name__} has no field(s) {unknown}; valid: "
                                 f"{sorted(_field_names(cls))}")
            try:
                return resolve(cls(**changes))
            except TypeError as e:  # a required field is missing
                raise ValueError(f"recipe {self.name!r}: model {self.model.name!r} needs model.spec to give "
                                 f"every required field of {cls.__name__} ({e})") from e
        spec = get_spec(self.model.name)
        direct = {k: v for k, v in changes.items() if k in _field_names(spec)}
        spec = spec.replace(**direct) if direct else spec
        rest = {k: v for k, v in changes.items() if k not in direct}
        if rest:  # e.g. bn_momentum of a RegNetSpec lives on its AnyNetSpec
            spec = resolve(spec)
            unknown = sorted(set(rest) - _field_names(spec))
            if unknown:
                raise ValueError(f"recipe {self.name!r}: {type(spec).__name__} of {self.model.name!r} has no field(s) "
                                 f"{unknown}; valid: {sorted(_field_names(spec))}")
            spec = spec.replace(**rest)
        return spec

    def steps_per_epoch(self) -> int:
        return max(1, self.data.num_train_examples // self.train.global_batch_size)

    def total_steps(self) -> int:
        return self.train.steps or max(1, round(self.train.epochs * self.steps_per_epoch()))

    def peak_lr(self) -> float:
        return self.schedule.base_lr * self.train.global_batch_size / self.schedule.base_batch_size

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=120)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Recipe)}
_CHOICES = {
    ("optimizer", "name"): ("sgd",),
    ("optimizer", "weight_decay_mode"): ("l2", "decoupled"),
    ("schedule", "name"): ("cosine", "step", "exponential", "constant"),
    ("runtime", "mixed_precision"): ("auto", "none", "bfloat16", "float16"),
    ("runtime", "xla"): ("auto", "on", "off"),
}


def _field_names(obj) -> set:
    return {f.name for f in dataclasses.fields(obj)}


def _section_classes():
    return {f.name: typing.get_type_hints(Recipe)[f.name] for f in dataclasses.fields(Recipe)
            if dataclasses.is_dataclass(typing.get_type_hints(Recipe)[f.name])}


def _validate(r: Recipe):
    for (section, key), valid in _CHOICES.items():
        value = getattr(getattr(r, section), key)
        if value not in valid:
            raise ValueError(f"recipe {r.name!r}: {section}.{key}={value!r} is not valid; choose one of {valid}")
    checks = [
        (r.train.global_batch_size >= 1, "train.global_batch_size must be >= 1"),
        (r.train.epochs > 0 or r.train.steps > 0, "train.epochs or train.steps must be > 0"),
        (r.train.keep_checkpoints >= 1, "train.keep_checkpoints must be >= 1"),
        (0 <= r.ema.decay < 1, "ema.decay must be in [0, 1)"),
        (0 <= r.regularization.label_smoothing < 1, "regularization.label_smoothing must be in [0, 1)"),
        (r.schedule.base_lr > 0 and r.schedule.base_batch_size >= 1, "schedule.base_lr and base_batch_size > 0"),
        (0 <= r.schedule.warmup_start <= 1, "schedule.warmup_start must be in [0, 1]"),
        (0 < r.schedule.final_lr <= 1, "schedule.final_lr must be in (0, 1]"),
        (r.optimizer.weight_decay >= 0, "optimizer.weight_decay must be >= 0"),
        (list(r.schedule.boundaries) == sorted(r.schedule.boundaries), "schedule.boundaries must be increasing"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"recipe {r.name!r}: {message}")
    if r.model.name in spec_types():
        r.spec()  # builds the spec: a bad field is an error now, not when training starts
    elif r.model.name:
        from regnet_tf.models.registry import get_entry

        get_entry(r.model.name)  # unknown model: lists the valid names
        bn_momentum = r.model.spec.get("bn_momentum", 0.9)
        if bn_momentum == 0 and r.ema.decay == 0:
            raise ValueError(f"recipe {r.name!r}: model.spec.bn_momentum=0 keeps only the last batch's BN statistics; "
                             "it is meant to be used with an EMA of all variables (set ema.decay, e.g. 0.9999)")


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------- files and names


def recipes_dir() -> str:
    """`$REGNET_TF_RECIPES`, else the repository's `recipes/` (a source checkout), else the installed copy."""
    env = os.environ.get("REGNET_TF_RECIPES")
    if env:
        return env
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checkout = os.path.join(here, "recipes")
    if os.path.isdir(checkout):
        return checkout
    import importlib.util

    found = importlib.util.find_spec("regnet_tf.recipes")
    if found and found.submodule_search_locations:
        return list(found.submodule_search_locations)[0]
    raise FileNotFoundError("cannot find the recipes directory; set REGNET_TF_RECIPES to the repository's recipes/")


def _index(root=None) -> Dict[str, str]:
    """{recipe name: path} of every recipe file (bases included, their names start with `_`)."""
    root = root or recipes_dir()
    index = {}
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")):
                name = os.path.splitext(f)[0]
                if name in index:
                    raise ValueError(f"two recipes are named {name!r}: {index[name]} and {os.path.join(dirpath, f)}")
                index[name] = os.path.join(dirpath, f)
    return index


def list_recipes(pattern: str = "") -> List[str]:
    """Recipe names (bases excluded), sorted; `pattern` is a substring filter."""
    return sorted(n for n in _index() if not n.startswith("_") and pattern in n)


def recipe_path(name: str) -> str:
    """A recipe name, or a path to a YAML file, -> its path."""
    if name.endswith((".yaml", ".yml")) and os.path.isfile(name):
        return name
    index = _index()
    if name not in index:
        valid = list_recipes()
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Valid recipes ({len(valid)}): {', '.join(valid)} "
                         f"(python launch/train.py --list_recipes)")
    return index[name]


def read_raw(name: str, _seen=()) -> dict:
    """The merged YAML dict of a recipe (its bases resolved), before validation."""
    path = recipe_path(name)
    if path in _seen:
        raise ValueError(f"recipe inheritance cycle: {' -> '.join(_seen + (path,))}")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a recipe file is a YAML mapping of sections; got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if base.endswith((".yaml", ".yml")) and not os.path.isabs(base):
        base = os.path.join(os.path.dirname(path), base)
    return merge(read_raw(base, _seen + (path,)), raw)


def merge(base: dict, child: dict) -> dict:
    """Sections merge key by key (the child wins); `model.spec` merges too; other values are replaced."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------------------ overrides


def apply_overrides(raw: dict, overrides) -> dict:
    """`section.key=value` strings (value parsed as YAML: 2, 1e-4, true, [0.5, 1.0], null) into a raw dict."""
    raw = merge({}, raw)
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.key=value (e.g. train.epochs=2)")
        path, value = item.split("=", 1)
        keys = path.strip().split(".")
        value = yaml.safe_load(value) if value.strip() else ""
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {k!r} is not a section")
        node[keys[-1]] = value
    return raw


# ------------------------------------------------------------------------------------------------ building


def _convert(value, hint, where):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # Optional[x], x | None
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        return _convert(value, hint, where)
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


def _build_section(cls, values, section):
    if not isinstance(values, dict):
        raise ValueError(f"recipe section {section!r} must be a mapping of keys; got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        close = {u: difflib.get_close_matches(u, names, n=1) for u in unknown}
        hint = "; ".join(f"{u!r} (did you mean {c[0]!r}?)" for u, c in close.items() if c)
        raise ValueError(f"unknown key(s) {unknown} in recipe section {section!r}. {hint + '. ' if hint else ''}"
                         f"Valid keys: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"recipe section {section!r}: {e}") from e


def from_dict(raw: dict, name: str = "") -> Recipe:
    raw = dict(raw)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown recipe section(s) or key(s) {unknown}; valid: {', '.join(SECTIONS)}")
    classes = _section_classes()
    kwargs = {}
    for key, value in raw.items():
        if key in classes:
            kwargs[key] = _build_section(classes[key], value or {}, key)
        elif key == "name":
            continue
        else:
            kwargs[key] = _convert(value, typing.get_type_hints(Recipe)[key], key)
    return Recipe(name=raw.get("name") or name, **kwargs)


def load(name: str, overrides=None) -> Recipe:
    """A recipe by name (or YAML path), bases merged, `overrides` applied, validated."""
    raw = apply_overrides(read_raw(name), overrides)
    stem = os.path.splitext(os.path.basename(name))[0]
    return from_dict(raw, name=stem)


def diff(a: Recipe, b: Recipe) -> Dict[str, tuple]:
    """{"section.key": (value in a, value in b)} for every field that differs (names and paper fields ignored)."""
    out = {}
    da, db = a.to_dict(), b.to_dict()
    for section in SECTIONS:
        if section in ("name", "description", "paper_top1", "paper_ref"):
            continue
        va, vb = da[section], db[section]
        if isinstance(va, dict):
            for key in sorted(set(va) | set(vb)):
                if key == "spec":
                    for k in sorted(set(va["spec"]) | set(vb["spec"])):
                        if va["spec"].get(k) != vb["spec"].get(k):
                            out[f"{section}.spec.{k}"] = (va["spec"].get(k), vb["spec"].get(k))
                elif va.get(key) != vb.get(key):
                    out[f"{section}.{key}"] = (va.get(key), vb.get(key))
        elif va != vb:
            out[section] = (va, vb)
    return out


# --------------------------------------------------------------------------------------- command-line shortcuts

DATA_SOURCES = ("demo", "tfrecord", "tfds", "folder")


def shortcut_overrides(data=None, data_dir=None, global_batch_size=None, epochs=None, steps=None,
                       mixed_precision=None):
    """The launcher's flags as `section.key=value` overrides (applied before the user's `--set`).

    `data="demo"` switches to the built-in demo data: 10 classes and its split sizes (the recipe's image size and
    schedule stay; shorten them with --set / --epochs). `global_batch_size` scales the learning rate linearly
    (the recipe's lr is per schedule.base_batch_size).
    """
    out = []
    if data is not None:
        if data not in DATA_SOURCES:
            raise ValueError(f"unknown --data {data!r}; valid: {', '.join(DATA_SOURCES)}")
        out.append(f"data.source={data}")
        if data == "demo":
            from regnet_tf.data import demo

            out += [f"data.num_classes={demo.NUM_CLASSES}", f"data.num_train_examples={demo.NUM_TRAIN}",
                    f"data.num_eval_examples={demo.NUM_VAL}"]
    if data_dir is not None:
        out.append(f"data.data_dir={data_dir}")
    if global_batch_size is not None:
        out.append(f"train.global_batch_size={int(global_batch_size)}")
    if epochs is not None:
        out += [f"train.epochs={float(epochs)}", "train.steps=0"]
    if steps is not None:
        out.append(f"train.steps={int(steps)}")
    if mixed_precision is not None:
        out.append(f"runtime.mixed_precision={mixed_precision}")
    return out
