"""Public ImageNet weights by name: ``weights="imagenet"`` or a tag such as ``"timm/regnety_040.ra3_in1k"``.

The table (``pretrained.json`` next to this module, written by tools/make_pretrained_table.py from timm's
pretrained configs and the tf_keras / Keras sources) lists per model every weights file with a model in our
registry: its tag, source (timm | tf_keras | keras), the source's own architecture name, URL, file hash when
known, and the evaluation settings (input size, crop fraction, interpolation, mean/std) the weights were measured
with. Tags are unique per model ("tf_keras/imagenet" exists for every tf_keras RegNet). ``weights="imagenet"``
picks the model's default tag: the first 1000-class entry in the order timm (its default tag of the same-named
architecture first), timm ``tf_`` architecture, tf_keras (largest input first), Keras (the table's
``default_rule``).

`weights_file` fetches a file once with `keras.utils.get_file` into the Keras cache (``cache_dir``, else
``$KERAS_HOME``, else ``~/.keras``; subdirectory ``models/regnet_tf``), converts it once
(`regnet_tf.weights.convert_file`) into a ``.weights.h5`` that carries its `WeightsConfig`, and reuses that
file afterwards without touching the network. Without network access, place the source file in that directory
by hand under the name the error message gives. `register_tag` adds or overrides entries (mirrors, tests).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Tuple

from regnet_tf import weights as _weights
from regnet_tf.weights.core import ConversionError, WeightsConfig, read_config
from regnet_tf.zoo import get_entry

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained.json")
CACHE_SUBDIR = os.path.join("models", "regnet_tf")
IMAGENET_WEIGHTS = "imagenet"  # weights="imagenet": the model's default tag (`default_tag`)


class WeightsDownloadError(OSError):
    """A weights file could not be fetched (no network, a wrong URL, a file whose hash does not match)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One public weights file of one of our models (a row of the table)."""

    model: str  # our registry name
    tag: str  # e.g. "timm/regnety_040.ra3_in1k", "tf_keras/imagenet", "tf_keras/imagenet-i160", "keras/imagenet"
    source: str  # timm | tf_keras | keras (a regnet_tf.weights source)
    url: str
    arch: str = ""  # the source's own model name, e.g. "tf_efficientnet_b0" (TF padding), "regnetx002"
    file_hash: Optional[str] = None  # sha256 or md5 of the file, checked by keras.utils.get_file
    input_size: int = 224  # evaluation resolution
    crop_fraction: float = 0.875
    crop_mode: str = "center"
    interpolation: str = "bicubic"
    mean: Optional[Tuple[float, ...]] = None  # the RGB normalization (0-1 scale); None: the converter decides
    std: Optional[Tuple[float, ...]] = None
    classes: int = 1000
    license: str = ""
    default: bool = False  # weights="imagenet" for this model


_TABLE: Optional[Dict[str, List[Entry]]] = None  # model -> its entries, table order


def _table() -> Dict[str, List[Entry]]:
    global _TABLE
    if _TABLE is None:
        with open(TABLE, encoding="utf-8") as f:
            rows = json.load(f)["weights"]
        table: Dict[str, List[Entry]] = {}
        for row in rows:
            row.update({k: tuple(row[k]) for k in ("mean", "std") if row[k] is not None})
            table.setdefault(row["model"], []).append(Entry(**row))
        _TABLE = table
    return _TABLE


def register_tag(model: str, tag: str, url: str, *, source: str = "timm", default: bool = False, **fields) -> Entry:
    """Adds weights for a registered ``model`` (or replaces the entry with the same tag, e.g. to point it at a
    mirror or a ``file://`` URL). ``fields``: the other `Entry` fields. ``default=True`` makes it the model's
    ``weights="imagenet"``. Returns the entry; `unregister_tag` removes it."""
    name = get_entry(model).name
    if source not in _weights.WEIGHT_SOURCES:
        raise ValueError(f"unknown weights source {source!r}; valid: {', '.join(sorted(_weights.WEIGHT_SOURCES))}")
    fields.update({k: tuple(fields[k]) for k in ("mean", "std") if fields.get(k) is not None})
    entry = Entry(model=name, tag=tag, source=source, url=url, default=default, **fields)
    rows = [e for e in _table().get(name, []) if e.tag != tag]
    if default:
        rows = [dataclasses.replace(e, default=False) for e in rows]
    _table()[name] = rows + [entry]
    return entry


def unregister_tag(model: str, tag: str) -> None:
    """Removes an entry (`register_tag`'s or the table's) until the next `reload`."""
    name = get_entry(model).name
    _table()[name] = [e for e in _table().get(name, []) if e.tag != tag]


def reload() -> None:
    """Forgets `register_tag` changes: the next look-up reads the table again."""
    global _TABLE
    _TABLE = None


def models() -> List[str]:
    """Our models that have public weights."""
    return [m for m, rows in _table().items() if rows]


def entries(model: str) -> List[Entry]:
    """Every public weights entry of a registered model (empty when it has none)."""
    return list(_table().get(get_entry(model).name, []))


def tags(model: str) -> List[str]:
    return [e.tag for e in entries(model)]


def _no_weights(name: str) -> ValueError:
    return ValueError(f"{name} has no public pretrained weights (none in timm's hub, tf_keras or Keras): build it with "
                      "weights=None, or convert weights yourself (regnet_tf.weights.convert); "
                      "regnet_tf.weights.pretrained.models() lists the models that have some")


def default_tag(model: str) -> str:
    """The tag ``weights="imagenet"`` loads for ``model``."""
    name = get_entry(model).name
    rows = entries(name)
    if not rows:
        raise _no_weights(name)
    default = [e.tag for e in rows if e.default]
    if not default:
        raise ValueError(f"{name} has no default weights; pick a tag: {', '.join(e.tag for e in rows)}")
    return default[0]


def lookup(model: str, weights: str = IMAGENET_WEIGHTS) -> Entry:
    """The entry of ``weights`` ("imagenet" or one of `tags` (model)) for a registered ``model``."""
    name = get_entry(model).name
    rows = entries(name)
    if not rows:
        raise _no_weights(name)
    tag = default_tag(name) if weights == IMAGENET_WEIGHTS else weights
    for e in rows:
        if e.tag == tag:
            return e
    raise ValueError(f"unknown weights {weights!r} for {name}; valid: 'imagenet' (= {default_tag(name)!r}), "
                     + ", ".join(repr(e.tag) for e in rows))


def cache_root(cache_dir: Optional[str] = None) -> str:
    """The Keras cache: ``cache_dir``, else ``$KERAS_HOME``, else ``~/.keras``. Weights go in its
    ``models/regnet_tf``."""
    return os.path.expanduser(cache_dir or os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def _file_names(entry: Entry) -> Tuple[str, str]:
    """(the downloaded source file's name, the converted file's name), unique per model and tag."""
    stem = f"{entry.model}__{entry.tag.replace('/', '__')}"
    ext = os.path.splitext(entry.url.split("?")[0])[1] or ".bin"
    return stem + ext, stem + ".weights.h5"


def _download(entry: Entry, root: str, fname: str) -> str:
    import keras

    directory = os.path.join(root, CACHE_SUBDIR)
    where = f"{entry.model} weights {entry.tag!r} from {entry.url}"
    try:
        os.makedirs(directory, exist_ok=True)
        return keras.utils.get_file(fname, origin=entry.url, file_hash=entry.file_hash, cache_subdir=CACHE_SUBDIR,
                                    cache_dir=root)
    except Exception as e:  # noqa: BLE001 - get_file raises a bare Exception on fetch failures
        raise WeightsDownloadError(
            f"could not fetch the {where}: {e}. Without network access, download that file elsewhere and place it "
            f"at {os.path.join(directory, fname)} (the cache: cache_dir=, else $KERAS_HOME, else ~/.keras)") from None


def weights_file(model: str, weights: str = IMAGENET_WEIGHTS,
                 cache_dir: Optional[str] = None) -> Tuple[str, WeightsConfig]:
    """(path of the converted ``.weights.h5``, its `WeightsConfig`) for public weights of ``model``: fetched and
    converted on the first call, read from the cache afterwards.

    Raises ValueError for a model without weights or an unknown tag, `WeightsDownloadError` when the file cannot
    be fetched, `ConversionError` when it does not fit the model (each names the model, the tag and the URL).
    """
    entry = lookup(model, weights)
    root = cache_root(cache_dir)
    fname, converted_name = _file_names(entry)
    converted = os.path.join(root, CACHE_SUBDIR, converted_name)
    config = read_config(converted) if os.path.isfile(converted) else None
    if config is not None and (config.model, config.tag, config.url) == (entry.model, entry.tag, entry.url):
        return converted, config
    path = _download(entry, root, fname)
    fields = dict(arch=entry.arch, tag=entry.tag, url=entry.url, classes=entry.classes, input_size=entry.input_size,
                  crop_fraction=entry.crop_fraction, interpolation=entry.interpolation)
    if entry.mean is not None:
        fields.update(input_mean=entry.mean, input_std=entry.std)
    try:
        config = _weights.convert_file(entry.source, entry.model, path, converted, **fields)
    except (ConversionError, OSError) as e:
        raise ConversionError(f"the {entry.model} weights {entry.tag!r} from {entry.url} do not fit {entry.model} "
                              f"(delete {path} to fetch it again): {e}") from e
    return converted, config
