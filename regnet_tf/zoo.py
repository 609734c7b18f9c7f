"""The model zoo: every family imported, and every function that takes a model name.

Importing this module imports every family module (in zoo order: anynet, regnet, efficientnet, resnet), which
registers its spec kind and its models (`regnet_tf.models.registry`), so the lookups here always see every model.
The package root re-exports them (``regnet_tf.get_spec``, ``regnet_tf.complexity``, ``regnet_tf.scale``, ...).
Pure Python: no TensorFlow. Also the zoo table (`rows`, `format_table`; ``regnet-models``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import numbers
from typing import Dict, List, Optional, Tuple

from regnet_tf import counter, scaling
from regnet_tf.models import registry

# isort: off  (the order of the zoo)
from regnet_tf.models import anynet  # noqa: F401
from regnet_tf.models import regnet  # noqa: F401
from regnet_tf.models import efficientnet  # noqa: F401
from regnet_tf.models import resnet  # noqa: F401
# isort: on

from regnet_tf.models.registry import ModelEntry, Spec, unknown_name_error


def get_entry(name: str) -> ModelEntry:
    """The registry entry of a model name (spec, default resolution, factory, provenance)."""
    models = registry.registered_models()
    key = str(name).lower()
    if key not in models:
        raise unknown_name_error("model", name, sorted(models))
    return models[key]


def get_spec(name: str):
    """The registered spec of a model (e.g. a `RegNetSpec`)."""
    return get_entry(name).spec


def list_models(pattern: str = "") -> List[str]:
    """Registered model names in zoo order; ``pattern`` is a substring or a shell-style wildcard."""
    names = list(registry.registered_models())
    if pattern:
        wildcard = any(c in pattern for c in "*?[")
        names = [n for n in names if (fnmatch.fnmatch(n, pattern) if wildcard else pattern in n)]
    return names


def spec_kinds() -> Dict[str, type]:
    """{kind: spec class}, e.g. {"anynet": AnyNetSpec, "regnet": RegNetSpec, "efficientnet": ..., "resnet": ...}."""
    return registry.registered_kinds()


def default_resolution(spec_or_name) -> int:
    """A registered model's default (training) resolution; 224 for a bare spec."""
    return get_entry(spec_or_name).resolution if isinstance(spec_or_name, str) else 224


def resolve(spec_or_name) -> Spec:
    """A registry name or a spec -> the spec the builder and the counter read (``spec.resolved()``).

    RegNetSpec becomes its AnyNetSpec; AnyNetSpec, ResNetSpec and EffNetSpec are returned as they are.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    if not isinstance(spec, Spec):  # input check; the spec itself decides what it resolves to
        kinds = ", ".join(cls.__name__ for cls in spec_kinds().values())
        raise TypeError(f"expected a model name or a spec ({kinds}); got {type(spec).__name__}")
    return spec.resolved()


def to_anynet(spec_or_name):
    """Resolve a registry name, a RegNetSpec or an AnyNetSpec to an AnyNetSpec."""
    spec = resolve(spec_or_name)
    if spec.kind != "anynet":
        raise TypeError(f"{spec_or_name!r} is a {type(spec).__name__}, not an AnyNet/RegNet model")
    return spec


def complexity(name_or_spec, resolution=None, classes: int = 1000, in_channels: int = 3) -> dict:
    """flops (multiply-adds), params and acts of a registered model name or a spec, for one image.

    ``resolution`` defaults to the model's registered resolution (224 for a spec). ``classes=0`` counts the
    network without the classifier. The counting is `regnet_tf.counter.count`.
    """
    if resolution is None:
        resolution = default_resolution(name_or_spec)
    return counter.count(resolve(name_or_spec), resolution, classes, in_channels).as_dict()


def scale(spec_or_name, factor: float, strategy: str = "dWr", alpha: float = 0.8, resolution: int = None):
    """Scales a model (registry name or spec) by ``factor`` x flops. Returns (new spec, new resolution).

    ``resolution`` defaults to the model's registered resolution (224 for a bare spec); the rest is
    `regnet_tf.scaling.scale_spec`: RegNet specs come back as AnyNetSpecs (per-stage lists), as in pycls.
    """
    if resolution is None:
        resolution = default_resolution(spec_or_name)
    return scaling.scale_spec(resolve(spec_or_name), factor, strategy, alpha, resolution)


def describe(spec_or_name) -> str:
    """One line per stage: depth, width, group width or expansion (for the scale CLI)."""
    return resolve(spec_or_name).describe()


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One level of a model's feature pyramid (`feature_info`, `regnet_tf.applications.build_backbone`)."""

    name: str  # "P2": keras-hub's `pyramid_outputs` key
    level: int  # stride = 2 ** level
    stride: int  # cumulative stride (timm's `reduction`)
    channels: int
    layer: str  # the Keras layer whose output is this map (the same name in the classifier)
    shape: Optional[Tuple[int, int, int]] = None  # (h, w, channels) at the `input_size` asked for, else None


def feature_info(model, input_size=None, levels=None) -> List[FeatureInfo]:
    """The feature pyramid of a registered model name or a spec: one `FeatureInfo` per stride, in network order.

    The levels come from ``spec.feature_layers()`` (the stem output and each stage output; never the head conv): at
    each stride the deepest layer is the level, so a stage with stride 1 replaces the output before it (EfficientNet's
    stage 1 replaces its stem at stride 2, a ResNet's stage 1 its stem pool at stride 4). Level k has stride 2 ** k
    and is named "P{k}". ``levels``: None (all), or ints (2, 3) or names ("P2", "P3"); an unknown level is a
    ValueError that lists the model's levels. ``input_size`` (int or (h, w)) fills ``shape``: each stride-2 layer
    maps h to (h - 1) // 2 + 1 = ceil(h / 2), so level k of an input of height H has ceil(H / 2 ** k) rows
    (= ceil(ceil(H / 2) / 2) ..., k times): 65 px gives 33, 17, 9, 5, 3 at P1 ... P5.
    """
    layers_ = resolve(model).feature_layers()
    by_stride = {}
    for layer, stride, channels in layers_:
        if stride < 1 or stride & (stride - 1):
            raise ValueError(f"{layer} has stride {stride}, not a power of 2: it is no pyramid level")
        if by_stride and stride < max(by_stride):
            raise ValueError(f"feature_layers() of {model!r} is not in network order: {layers_}")
        by_stride[stride] = (layer, channels)  # the deepest layer at each stride wins
    if input_size is None:
        size = None
    else:
        size = (int(input_size),) * 2 if isinstance(input_size, numbers.Integral) else tuple(int(n) for n in input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size must be an int or (height, width); got {input_size!r}")
    infos = []
    for stride, (layer, channels) in sorted(by_stride.items()):
        level = stride.bit_length() - 1
        shape = None if size is None else (*((n - 1) // stride + 1 for n in size), channels)
        infos.append(FeatureInfo(f"P{level}", level, stride, channels, layer, shape))
    if levels is None:
        return infos
    if isinstance(levels, (numbers.Integral, str)):
        levels = (levels,)
    valid = {info.name: info for info in infos}
    wanted = set()
    for level in levels:
        integral = isinstance(level, numbers.Integral) and not isinstance(level, bool)
        key = f"P{int(level)}" if integral else str(level).upper() if isinstance(level, str) else None
        if key not in valid:
            raise ValueError(f"unknown feature level {level!r}; this model's levels are {', '.join(valid)} (or the "
                             f"ints {', '.join(str(i.level) for i in infos)})")
        wanted.add(key)
    if not wanted:
        raise ValueError(f"levels={levels!r} selects no level; this model's levels are {', '.join(valid)}")
    return [info for info in infos if info.name in wanted]


COLUMNS = ("model", "factory", "paper name", "resolution", "GMACs", "params (M)", "acts (M)")


def rows(pattern: str = ""):
    """One dict per registered model matching ``pattern`` (substring or wildcard), in registry order."""
    names = list_models(pattern)
    if pattern and not names:
        raise unknown_name_error("model filter", pattern, list_models())
    out = []
    for name in names:
        e = get_entry(name)
        cx = complexity(name, e.resolution)
        out.append({"model": name, "factory": e.factory, "paper name": e.paper_name, "resolution": e.resolution,
                    "flops": cx["flops"], "params": cx["params"], "acts": cx["acts"]})
    return out


def format_table(rows_, markdown: bool = False) -> str:
    cells = [[r["model"], r["factory"], r["paper name"], str(r["resolution"]), f"{r['flops'] / 1e9:.3f}",
              f"{r['params'] / 1e6:.2f}", f"{r['acts'] / 1e6:.2f}"] for r in rows_]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(COLUMNS)]
    fmt = lambda cs: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cs, widths)))  # noqa: E731
    return "\n".join([fmt(COLUMNS), fmt(["-" * w for w in widths])] + [fmt(c) for c in cells])
