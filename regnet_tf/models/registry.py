"""The one registry of model names and spec kinds. A leaf: it imports nothing of regnet_tf.

- Model names: each family module registers its zoo on import (``register(name, spec, ...)``);
  `regnet_tf.models` imports every family module, so importing this module (which runs the package first) always
  sees every name.
- Spec kinds: every spec class derives from `Spec` and names its kind (``class ResNetSpec(Spec, kind="resnet")``);
  `spec_kinds()` maps the kinds to the classes (a recipe's ``model.spec`` of a kind builds that class).

The generic code (builder, counter, scaler, recipes) calls what a spec provides and never asks which class it is:

- ``spec.resolved()``: the spec the builder and counter read (a RegNetSpec gives its AnyNetSpec, others themselves);
- ``spec.features(x)``: the Keras network up to the global pool (stem, body, head conv);
- ``spec.features_cx(cx, in_channels)``: the complexity of exactly those layers (`regnet_tf.counter`);
- ``spec.out_width``: the width of the features that reach the classifier;
- ``spec.scaled_by(kd, kw, kg)``: a new spec with depths, widths and group widths multiplied (`regnet_tf.scaling`);
- ``spec.describe()``: one line per stage (the scale CLI); ``spec.replace(**changes)``: a modified copy.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any, Callable, ClassVar, Dict, List, Optional

_MODELS: Dict[str, "ModelEntry"] = {}
_KINDS: Dict[str, type] = {}
# Padding of strided convolutions and pools, a spec option of every family (the output size is the same in both):
# "symmetric": (k - 1) // 2 on both sides, as PyTorch, pycls, timm and the TF1 ResNet `fixed_padding`;
# "tf_same": TensorFlow's "SAME", the extra row and column after (bottom/right) when k - s is odd, as Keras's
# EfficientNet (`correct_pad`) and tf_keras's RegNet. Weights reproduce exactly only in the convention they were
# trained in (docs/WEIGHTS.md).
PADDINGS = ("symmetric", "tf_same")


def check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; valid: {', '.join(PADDINGS)}")
    return padding


class Spec:
    """Base class of the spec dataclasses; ``kind`` (a class keyword) registers the class under that kind."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, kind: str = "", **kwargs):
        super().__init_subclass__(**kwargs)
        if kind:
            if kind in _KINDS:
                raise ValueError(f"spec kind {kind!r} is registered twice ({_KINDS[kind].__name__}, {cls.__name__})")
            cls.kind = kind
            _KINDS[kind] = cls

    def resolved(self) -> "Spec":
        """The spec the builder and the counter read; most specs are their own."""
        return self

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def spec_kinds() -> Dict[str, type]:
    """{kind: spec class}, e.g. {"anynet": AnyNetSpec, "regnet": RegNetSpec, "resnet": ..., "efficientnet": ...}."""
    return dict(_KINDS)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str  # registry name, e.g. "regnety_016"
    spec: Any  # a Spec (RegNetSpec, AnyNetSpec, ResNetSpec, EffNetSpec)
    resolution: int  # default (training) resolution
    family: str
    factory: str  # name of the regnet_tf.applications factory, e.g. "RegNetY016"
    paper_name: str = ""
    source: str = ""
    # the family's RandAugment magnitude at a training resolution, when its paper gives a rule (EfficientNet-RS);
    # recipes may then write `data.randaug_magnitude: model`
    randaug_magnitude: Optional[Callable[[int], float]] = None


def register(name: str, spec, *, resolution: int, family: str, factory: str, paper_name: str = "", source: str = "",
             randaug_magnitude=None):
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = ModelEntry(name, spec, resolution, family, factory, paper_name, source, randaug_magnitude)


def unregister(name: str) -> None:
    """Removes a model name (e.g. one a test or a session registered); unknown names are ignored."""
    _MODELS.pop(str(name).lower(), None)


def unknown_name_error(kind: str, name: str, valid: List[str]) -> ValueError:
    close = difflib.get_close_matches(str(name), valid, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Valid names: {', '.join(valid)}")


def get_entry(name: str) -> ModelEntry:
    key = str(name).lower()
    if key not in _MODELS:
        raise unknown_name_error("model", name, sorted(_MODELS))
    return _MODELS[key]


def default_resolution(spec_or_name) -> int:
    """A registered model's default (training) resolution; 224 for a bare spec."""
    return get_entry(spec_or_name).resolution if isinstance(spec_or_name, str) else 224


def get_spec(name: str):
    """The registered spec of a model (e.g. a `RegNetSpec`)."""
    return get_entry(name).spec


def list_models(pattern: str = "") -> List[str]:
    """Registered model names in zoo order; ``pattern`` is a substring or a shell-style wildcard."""
    names = list(_MODELS)
    if pattern:
        names = [n for n in names if (fnmatch.fnmatch(n, pattern) if any(c in pattern for c in "*?[") else pattern in n)]
    return names


def resolve(spec_or_name) -> Spec:
    """A registry name or a spec -> the spec the builder and the counter read (``spec.resolved()``).

    RegNetSpec becomes its AnyNetSpec; AnyNetSpec, ResNetSpec and EffNetSpec are returned as they are.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    if not isinstance(spec, Spec):  # input check; the spec itself decides what it resolves to
        kinds = ", ".join(cls.__name__ for cls in _KINDS.values())
        raise TypeError(f"expected a model name or a spec ({kinds}); got {type(spec).__name__}")
    return spec.resolved()


def to_anynet(spec_or_name):
    """Resolve a registry name, a RegNetSpec or an AnyNetSpec to an AnyNetSpec."""
    spec = resolve(spec_or_name)
    if spec.kind != "anynet":
        raise TypeError(f"{spec_or_name!r} is a {type(spec).__name__}, not an AnyNet/RegNet model")
    return spec
