"""The registry of model names and spec kinds. A leaf: it imports nothing of regnet_tf.

- Model names: each family module registers its zoo on import (``register(name, spec, ...)``).
- Spec kinds: every spec class derives from `Spec` and names its kind (``class ResNetSpec(Spec, kind="resnet")``).

This module holds only what is registered so far (`registered_models()`, `registered_kinds()`): it imports no family
module, and neither does its package `regnet_tf.models`. The lookups by name (`get_entry`, `list_models`, `resolve`,
`spec_kinds`, ...) are in `regnet_tf.zoo`, which imports every family module first, so they always see every model.

The generic code (builder, counter, scaler, recipes) calls what a spec provides and never asks which class it is:

- ``spec.resolved()``: the spec the builder and counter read (a RegNetSpec gives its AnyNetSpec, others themselves);
- ``spec.features(x)``: the Keras network up to the global pool (stem, body, head conv);
- ``spec.features_cx(cx, in_channels)``: the complexity of exactly those layers (`regnet_tf.counter`);
- ``spec.feature_layers()``: [(Keras layer name, cumulative stride, channels)] of the stem output and of each stage
  output, in network order (not the head conv); `regnet_tf.zoo.feature_info` makes the pyramid levels of them;
- ``spec.out_width``: the width of the features that reach the classifier;
- ``spec.scaled_by(kd, kw, kg)``: a new spec with depths, widths and group widths multiplied (`regnet_tf.scaling`);
- ``spec.describe()``: one line per stage (the scale CLI); ``spec.replace(**changes)``: a modified copy.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, ClassVar, Dict, List, Optional

_MODELS: Dict[str, "ModelEntry"] = {}
_KINDS: Dict[str, type] = {}


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


def registered_models() -> Dict[str, ModelEntry]:
    """{name: ModelEntry} of the models registered so far, in registration order (`regnet_tf.zoo` sees them all)."""
    return dict(_MODELS)


def registered_kinds() -> Dict[str, type]:
    """{kind: spec class} of the spec classes defined so far (`regnet_tf.zoo.spec_kinds` sees them all)."""
    return dict(_KINDS)
