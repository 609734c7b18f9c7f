"""Recipes: one typed schema (dataclasses) for a training run, YAML files with inheritance, `key=value` overrides.

    r = load("resnet_rs_152_224", overrides=["train.epochs=2", "data.image_size=128"])
    r.model.name, r.data.image_size, r.schedule.base_lr, r.ema.decay          # typed fields
    spec = r.spec()                                                           # the model spec it trains

The model is a registered one (`model.name`, e.g. regnety_016, whose fields `model.spec` changes) or a spec of one
kind built from `model.spec` alone (`model.kind`: anynet, regnet, resnet, efficientnet; e.g. a sampled AnyNet).
Two data values may be left to the model (`DERIVED`): `data.image_size: model` is the registered resolution of
`model.name` (`data.image_size: weights`: the eval resolution of `finetune.weights`), `data.randaug_magnitude:
model` the RandAugment magnitude its family's rule gives at the recipe's image size (`ModelEntry.randaug_magnitude`, registered by the family: EfficientNet-RS's section 7.2 rule). The
loaded recipe holds the numbers.

A recipe file is YAML with the sections of `Recipe` (model, data, optimizer, schedule, regularization, ema, swa,
finetune, train, runtime) plus `description`, `paper_top1` / `paper_ref` and `zoo_top1` / `zoo_ref`. `base: <recipe name or
relative path>` inherits another file: sections merge key by key, the child wins. Files whose name starts with `_` are bases, not listed as
recipes. Recipe names are file names without `.yaml`, unique under `recipes/` (subdirectories only group them).
Every key is checked: an unknown section or key, a value of the wrong type or an unknown recipe name is a
ValueError that lists the valid choices. No TensorFlow here: parsing a recipe is pure Python.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from typing import Any, Dict, Optional

import yaml

from regnet_tf.data.config import DataConfig
# re-exported: recipe.list_recipes(), recipe.apply_overrides(...) (the files side lives in recipe_files)
from regnet_tf.train.recipe_files import (apply_overrides, list_grids, list_recipes, merge,  # noqa: F401
                                          read_raw, recipe_path, recipes_dir)
from regnet_tf.train.recipe_values import (DERIVED, check_fields, convert_value, derive_data,  # noqa: F401
                                           derive_scale, field_names, to_plain)
from regnet_tf.zoo import get_entry, get_spec, spec_kinds

# The runtime choices: the recipe's runtime keys, and the launcher's --strategy (which `train.distribute` builds),
# here so that the command line reads them without importing TensorFlow.
DISTRIBUTION_STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")
# runtime.mixed_precision -> the Keras dtype policy it trains with; "auto" picks one per device
# (`train.distribute.precision_policy`: bfloat16 on TPU, float16 on GPU, else float32)
PRECISION_POLICIES = {"none": "float32", "float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
PRECISIONS = ("auto", *PRECISION_POLICIES)
XLA_MODES = ("auto", "on", "off")

# ---------------------------------------------------------------------------------------------------- schema


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """`name`: a registry name (regnet_tf.list_models()), whose registered spec `spec` modifies; or `kind`: a spec
    kind (regnet_tf.zoo.spec_kinds()) built from `spec` alone. One of the two."""

    name: str = ""
    kind: str = ""
    spec: Dict[str, Any] = dataclasses.field(default_factory=dict)  # spec fields, e.g. {se_ratio: 0.25}
    # a model scaled by regnet_tf.scale: {base: regnety_040, factor: 4, strategy: dWr, alpha: 0.8}; `spec` then
    # changes fields of the scaled spec, and data.image_size: model is the scaled resolution
    scale: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "sgd"  # sgd: SGD with momentum (the papers' optimizer) | rmsprop (TF1 EfficientNet's)
    momentum: float = 0.9
    rho: float = 0.9  # rmsprop: decay of the mean square (TF1 RMSPropOptimizer `decay`)
    epsilon: float = 1e-3  # rmsprop: added to the mean square (TF1 EfficientNet: 0.001)
    nesterov: bool = False
    weight_decay: float = 0.0
    # l2: adds weight_decay * sum(w^2) / 2 to the loss (TF references' wd * l2_loss, pycls/PyTorch SGD's coupled
    # decay: the gradient gets wd * w); decoupled: w -= lr * weight_decay * w after each step (Keras/AdamW style)
    weight_decay_mode: str = "l2"
    decay_all: bool = False  # False: conv/dense kernels only (TF2, fast-scaling paper); True: also BN and biases (pycls)


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: str = "cosine"  # cosine | step | exponential | staircase | constant
    base_lr: float = 0.1  # learning rate at base_batch_size; scaled linearly with the global batch size
    base_batch_size: int = 256
    warmup_epochs: float = 0.0  # linear warmup, replacing the start of the schedule (TF Model Garden)
    warmup_start: float = 0.0  # lr at step 0 as a fraction of the schedule's value at the end of warmup (pycls 0.1)
    min_lr: float = 0.0  # cosine: final lr as a fraction of the peak (pycls OPTIM.MIN_LR)
    boundaries: tuple = ()  # step: epochs at which the lr is multiplied by decay_rate
    decay_rate: float = 0.1  # step: at each boundary; staircase: every decay_epochs
    decay_epochs: float = 0.0  # staircase: lr = peak * decay_rate ** floor(epoch / decay_epochs) (EfficientNet 2.4)
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
class SWAConfig:
    """Stochastic weight averaging (Izmailov et al. 2018): an equal-weight average of the weights at the end of
    every `every_epochs` epochs from `start` x the run on; BN statistics are recomputed for the averaged weights
    (on `bn_examples` training images, 0: one epoch) before it is evaluated or exported. Exclusive with the EMA."""

    enabled: bool = False
    start: float = 0.75  # fraction of the run after which snapshots are averaged (SWA paper: the last 25%)
    every_epochs: float = 1.0  # one snapshot per this many epochs (SWA's cycle length), and one at the end
    bn_examples: int = 8192  # training images for the BN recompute (pycls's precise-BN 8192); 0: a full epoch


FREEZE_BN_MODES = ("with_backbone", "always", "never")
WEIGHTS_CHECKPOINTS = ("best", "last")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Starting from trained weights (`regnet_tf.train.finetune`, docs/TRANSFER.md). Everything whose shape fits is
    loaded; the classifier starts anew when the class count differs."""

    # "" (random init) | "imagenet" or a tag of the weights table | a .weights.h5 / .keras file | a run's model_dir
    weights: str = ""
    checkpoint: str = "best"  # a model_dir's best checkpoint (when it kept one, else its last) | "last"
    freeze_epochs: float = 0.0  # train only the classifier for this many epochs, then every layer
    # BatchNormalization: with_backbone: in inference mode (statistics fixed) while the backbone is frozen (Keras's
    # convention), then trained | always: in inference mode, gamma/beta fixed, the whole run | never: statistics
    # updated even while the backbone is frozen
    freeze_bn: str = "with_backbone"
    stage_lr_decay: float = 1.0  # layer-wise lr decay: stage k of S gets lr x decay^(S + 1 - k), the stem decay^(S+1)
    head_lr_multiplier: float = 1.0  # the classifier's lr relative to the schedule's


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
    # early stopping: keep the checkpoint with the best evaluation top-1 (on minival when data.minival_shards > 0)
    # in model_dir/best, and export it; `patience` > 0 also stops after that many evaluations without a new best
    keep_best: bool = False
    patience: int = 0


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
    zoo_top1: Optional[float] = None  # the top-1 of the released model (e.g. pycls MODEL_ZOO), when it differs
    zoo_ref: str = ""  # where that number comes from
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    regularization: RegularizationConfig = dataclasses.field(default_factory=RegularizationConfig)
    ema: EMAConfig = dataclasses.field(default_factory=EMAConfig)
    swa: SWAConfig = dataclasses.field(default_factory=SWAConfig)
    finetune: FinetuneConfig = dataclasses.field(default_factory=FinetuneConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def __post_init__(self):
        _validate(self)

    # ---- what the recipe trains
    def spec(self):
        """The model spec: `model.kind` built from `model.spec` (resolved), or the registered spec of `model.name`
        with `model.spec` applied; the regularization's dropout / drop_path_rate when set."""
        changes = dict(self.model.spec)
        for key in ("dropout", "drop_path_rate"):
            if getattr(self.regularization, key) is not None:
                changes[key] = getattr(self.regularization, key)
        if self.model.kind:
            cls = spec_kinds()[self.model.kind]
            check_fields(self.name, cls, changes, f"model.kind {self.model.kind!r}")
            try:
                return cls(**changes).resolved()
            except TypeError as e:  # a required field is missing
                raise ValueError(f"recipe {self.name!r}: model.kind {self.model.kind!r} needs model.spec to give "
                                 f"every required field of {cls.__name__} ({e})") from e
        if not self.model.name:
            raise ValueError(f"recipe {self.name!r} names no model: set model.name (a registered model, "
                             "regnet_tf.list_models()) or model.kind (a spec kind built from model.spec)")
        spec = get_spec(self.model.name)
        direct = {k: v for k, v in changes.items() if k in field_names(spec)}
        spec = spec.replace(**direct) if direct else spec
        rest = {k: v for k, v in changes.items() if k not in direct}
        if rest:  # e.g. bn_momentum of a RegNetSpec lives on its AnyNetSpec
            spec = spec.resolved()
            check_fields(self.name, spec, rest, repr(self.model.name))
            spec = spec.replace(**rest)
        return spec

    def steps_per_epoch(self) -> int:
        return max(1, self.data.num_trained_examples // self.train.global_batch_size)  # minival shards held out

    def total_steps(self) -> int:
        return self.train.steps or max(1, round(self.train.epochs * self.steps_per_epoch()))

    def peak_lr(self) -> float:
        return self.schedule.base_lr * self.train.global_batch_size / self.schedule.base_batch_size

    def to_dict(self) -> dict:
        return to_plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=120)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Recipe)}
_CHOICES = {
    ("optimizer", "name"): ("sgd", "rmsprop"),
    ("optimizer", "weight_decay_mode"): ("l2", "decoupled"),
    ("schedule", "name"): ("cosine", "step", "exponential", "staircase", "constant"),
    ("runtime", "mixed_precision"): PRECISIONS,
    ("runtime", "xla"): XLA_MODES,
    ("finetune", "freeze_bn"): FREEZE_BN_MODES,
    ("finetune", "checkpoint"): WEIGHTS_CHECKPOINTS,
}


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
        (r.schedule.name != "staircase" or r.schedule.decay_epochs > 0,
         "schedule.decay_epochs must be > 0 for the staircase schedule (EfficientNet: 2.4)"),
        (0 < r.optimizer.rho < 1 and r.optimizer.epsilon > 0, "optimizer.rho must be in (0, 1), epsilon > 0"),
        (0 <= r.swa.start < 1 and r.swa.every_epochs > 0 and r.swa.bn_examples >= 0,
         "swa.start must be in [0, 1), swa.every_epochs > 0, swa.bn_examples >= 0"),
        (not (r.swa.enabled and r.ema.decay > 0), "choose swa.enabled or ema.decay > 0, not both (the evaluated "
         "and exported weights are one average)"),
        (r.train.patience >= 0, "train.patience must be >= 0"),
        (not (r.train.patience and not r.train.keep_best), "train.patience needs train.keep_best: true"),
        (not (r.train.keep_best and r.train.eval_every_epochs <= 0),
         "train.keep_best compares evaluations during training: set train.eval_every_epochs > 0"),
        (r.finetune.freeze_epochs >= 0, "finetune.freeze_epochs must be >= 0"),
        (not (r.finetune.freeze_epochs and not r.finetune.weights),
         f"finetune.freeze_epochs={r.finetune.freeze_epochs:g} would freeze a randomly initialized backbone: set "
         "finetune.weights (--weights imagenet, a weights file or a run's model_dir) or finetune.freeze_epochs=0"),
        (0 < r.finetune.stage_lr_decay <= 1, "finetune.stage_lr_decay must be in (0, 1] (1: no decay)"),
        (r.finetune.head_lr_multiplier > 0, "finetune.head_lr_multiplier must be > 0"),
        (r.optimizer.name == "sgd" or (r.finetune.stage_lr_decay == 1 and r.finetune.head_lr_multiplier == 1),
         "finetune.stage_lr_decay and head_lr_multiplier scale gradients, which equals per-layer learning rates "
         "for SGD only: set optimizer.name=sgd or leave both at 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"recipe {r.name!r}: {message}")
    m = r.model
    if m.name and m.kind:
        raise ValueError(f"recipe {r.name!r}: model.name={m.name!r} and model.kind={m.kind!r}: set one (a registered "
                         "model whose fields model.spec changes, or a spec kind built from model.spec alone)")
    if m.kind:
        if m.kind not in spec_kinds():
            raise ValueError(f"recipe {r.name!r}: model.kind={m.kind!r} is not a spec kind; valid: "
                             f"{', '.join(spec_kinds())} (a registered model goes in model.name)")
        r.spec()  # builds the spec: a bad field is an error now, not when training starts
    elif m.name:
        if m.name in spec_kinds():
            raise ValueError(f"recipe {r.name!r}: model.name={m.name!r} is a spec kind, not a registered model; write "
                             f"`model: {{kind: {m.name}, spec: ...}}`")
        get_entry(m.name)  # unknown model: lists the valid names
        if m.spec.get("bn_momentum", 0.9) == 0 and r.ema.decay == 0:
            raise ValueError(f"recipe {r.name!r}: model.spec.bn_momentum=0 keeps only the last batch's BN statistics; "
                             "it is meant to be used with an EMA of all variables (set ema.decay, e.g. 0.9999)")


# ------------------------------------------------------------------------------------------------ building


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
    kwargs = {k: convert_value(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"recipe section {section!r}: {e}") from e


def from_dict(raw: dict, name: str = "") -> Recipe:
    """A validated Recipe from a raw dict (a merged recipe file with its overrides)."""
    raw = derive_data(derive_scale(dict(raw)))
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
            kwargs[key] = convert_value(value, typing.get_type_hints(Recipe)[key], key)
    return Recipe(name=raw.get("name") or name, **kwargs)


def load(name: str, overrides=None) -> Recipe:
    """A recipe by name (or YAML path), bases merged, `overrides` applied, validated."""
    raw = apply_overrides(read_raw(name), overrides)
    stem = os.path.splitext(os.path.basename(name))[0] if name.endswith((".yaml", ".yml")) else name
    return from_dict(raw, name=stem)


def diff(a: Recipe, b: Recipe) -> Dict[str, tuple]:
    """{"section.key": (value in a, value in b)} for every field that differs (names and paper fields ignored)."""
    out = {}
    da, db = a.to_dict(), b.to_dict()
    for section in SECTIONS:
        if section in ("name", "description", "paper_top1", "paper_ref", "zoo_top1", "zoo_ref"):
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
