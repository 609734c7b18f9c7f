"""The one registry of model names: name -> spec (plain data) + default resolution and provenance."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any, Dict, List

_MODELS: Dict[str, "ModelEntry"] = {}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str  # registry name, e.g. "regnety_016"
    spec: Any  # RegNetSpec, AnyNetSpec, ... (anything with to_anynet() or an AnyNetSpec)
    resolution: int  # default (training) resolution
    family: str
    factory: str  # name of the regnet_tf.applications factory, e.g. "RegNetY016"
    paper_name: str = ""
    source: str = ""


def register(name: str, spec, *, resolution: int, family: str, factory: str, paper_name: str = "", source: str = ""):
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = ModelEntry(name, spec, resolution, family, factory, paper_name, source)


def _ensure_loaded():
    # The zoo modules register their models on import.
    import regnet_tf.models.efficientnet  # noqa: F401
    import regnet_tf.models.regnet  # noqa: F401
    import regnet_tf.models.resnet  # noqa: F401


def unknown_name_error(kind: str, name: str, valid: List[str]) -> ValueError:
    close = difflib.get_close_matches(str(name), valid, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Valid names: {', '.join(valid)}")


def get_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    key = str(name).lower()
    if key not in _MODELS:
        raise unknown_name_error("model", name, sorted(_MODELS))
    return _MODELS[key]


def get_spec(name: str):
    """The registered spec of a model (e.g. a `RegNetSpec`)."""
    return get_entry(name).spec


def list_models(pattern: str = "") -> List[str]:
    """Registered model names in zoo order; ``pattern`` is a substring or a shell-style wildcard."""
    _ensure_loaded()
    names = list(_MODELS)
    if pattern:
        names = [n for n in names if (fnmatch.fnmatch(n, pattern) if any(c in pattern for c in "*?[") else pattern in n)]
    return names


def resolve(spec_or_name):
    """A registry name or a spec -> the spec the builder and the counter read.

    RegNetSpec becomes its AnyNetSpec; AnyNetSpec, ResNetSpec and EffNetSpec are returned as they are.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    if hasattr(spec, "to_anynet"):
        return spec.to_anynet()
    if hasattr(spec, "blocks"):
        return spec
    raise TypeError(f"expected a model name or a spec (RegNetSpec, AnyNetSpec, ResNetSpec, EffNetSpec); got "
                    f"{type(spec).__name__}")


def to_anynet(spec_or_name):
    """Resolve a registry name, a RegNetSpec or an AnyNetSpec to an AnyNetSpec."""
    from regnet_tf.models.anynet import AnyNetSpec

    spec = resolve(spec_or_name)
    if not isinstance(spec, AnyNetSpec):
        raise TypeError(f"{spec_or_name!r} is a {type(spec).__name__}, not an AnyNet/RegNet model")
    return spec
