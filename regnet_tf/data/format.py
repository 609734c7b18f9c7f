"""The data-format facts, each stated once: normalization constants, TFRecord features, shard names, the label map
and the image formats we accept.

A leaf module: it imports nothing from regnet_tf and no TensorFlow at import (the graph helpers `features()` and
`has_image_signature()` import it when called), so recipes, launchers and docs tools can read these facts cheaply.

- ImageNet mean/std: RGB, on the 0-1 scale: normalized = (x / 255 - MEAN_RGB) / STD_RGB.
- TFRecords (the format of tensorflow/tpu `imagenet_to_gcs.py`): a tf.train.Example per image with
  `image/encoded` (the file's bytes), `image/class/label` (int64, **1-based**: class k is stored as k + 1, as
  ImageNet's 1..1000) and descriptive features (`image/format`, `image/class/synset`, `image/height`, ...).
  The reader adds `label_offset` (default `LABEL_OFFSET` = -1) to a stored label to get the class index.
  Shards are named `<split>-%05d-of-%05d` (`shard_name`); ImageNet's are train-*-of-01024 and
  validation-*-of-00128 (`IMAGENET_TRAIN_SHARDS`, `IMAGENET_VALIDATION_SHARDS`). minival (Revisiting ResNets:
  "20 shards out of 1024") is the last shards of the sorted training files (`split_minival`).
- Label map (`label_map.txt`, next to the shards and inside an exported SavedModel): one
  `<stored label> <class name>` line per class, in class order; stored label = class index - label_offset.
- Images: the formats `tf.io.decode_image` decodes (JPEG, PNG, GIF, BMP, WebP, JPEG XL), recognized by their
  leading bytes (`IMAGE_FORMATS`). The TFRecord writer and the SavedModel's `image_bytes` check both use this one
  table and the one wording `NOT_AN_IMAGE`.
"""

from __future__ import annotations

import os
from typing import NamedTuple

MEAN_RGB = (0.485, 0.456, 0.406)  # ImageNet mean, RGB, 0-1 scale
STD_RGB = (0.229, 0.224, 0.225)  # ImageNet std, RGB, 0-1 scale

# ------------------------------------------------------------------------------------------------ TFRecords

IMAGE_KEY = "image/encoded"
LABEL_KEY = "image/class/label"
LABEL_OFFSET = -1  # stored label + LABEL_OFFSET = class index: records store class k as k + 1 (ImageNet 1..1000)
SPLIT_PATTERNS = {"train": "train-*", "validation": "validation-*"}  # shard files of each split
IMAGENET_TRAIN_SHARDS = 1024  # imagenet_to_gcs.py's shard counts
IMAGENET_VALIDATION_SHARDS = 128


def split_minival(train_files, split, minival_shards, pattern="train-*"):
    """The files of `split` ("train" or "minival") among the sorted training files when the last `minival_shards`
    are held out as minival; ValueError naming the counts when fewer than minival_shards + 1 files exist."""
    files, m = sorted(train_files), minival_shards
    if m <= 0:
        if split == "minival":
            raise ValueError("split 'minival' needs data.minival_shards > 0 (the training shards held out for it)")
        return files
    if len(files) < m + 1:
        raise ValueError(f"minival_shards={m} needs at least {m + 1} training files; {pattern!r} matches "
                         f"{len(files)}: lower data.minival_shards or write more shards (build_tfrecords --shards N)")
    return files[-m:] if split == "minival" else files[:-m]


def features():
    """The parsing spec of the two features the pipeline reads: {IMAGE_KEY: string, LABEL_KEY: int64}."""
    import tensorflow as tf

    return {IMAGE_KEY: tf.io.FixedLenFeature((), tf.string), LABEL_KEY: tf.io.FixedLenFeature((), tf.int64)}


def shard_name(split, index, num_shards):
    """`<split>-00003-of-00008`: shard `index` (0-based) of `num_shards`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def stored_label(class_index, label_offset=LABEL_OFFSET):
    """The label a record stores for `class_index` (class k -> k + 1 with the default offset)."""
    return class_index - label_offset


# ------------------------------------------------------------------------------------------------ label map

LABEL_MAP = "label_map.txt"


def label_map_file(path_or_dir):
    """`path_or_dir/label_map.txt` for a directory, else the path itself."""
    path = os.fspath(path_or_dir)
    return os.path.join(path, LABEL_MAP) if os.path.isdir(path) else path


def check_label_names(names, source="label map"):
    """ValueError unless every name (a sequence or {class index: name}) is a non-empty single line."""
    items = names.items() if isinstance(names, dict) else enumerate(names)
    bad = [k for k, name in items if not isinstance(name, str) or not name.strip() or "\n" in name or "\r" in name]
    if bad:
        raise ValueError(f"{source}: class names must be non-empty single lines; bad classes {bad[:10]}")


def write_label_map(path_or_dir, names, label_offset=LABEL_OFFSET):
    """Writes `label_map.txt` (into a directory, or to the given file path): line k is
    `<stored label of class k> <names[k]>`. Returns the file's path."""
    names = list(names)
    check_label_names(names)
    path = label_map_file(path_or_dir)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{stored_label(k, label_offset)} {name}\n" for k, name in enumerate(names))
    return path


def read_label_map(path_or_dir, label_offset=LABEL_OFFSET):
    """{class index: name} from a `label_map.txt` (or the directory holding it); class index = stored label +
    `label_offset`. Blank lines are skipped; a malformed line, a stored label given twice or without a name is a
    ValueError naming the file and line, a missing file a FileNotFoundError."""
    path = label_map_file(path_or_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label map {path!r} does not exist")
    names = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            stored, _, name = line.partition(" ")
            try:
                index = int(stored) + label_offset
            except ValueError:
                raise ValueError(f"{path}:{number}: expected '<stored label> <class name>'; got {line!r}") from None
            if index in names:
                raise ValueError(f"{path}:{number}: stored label {stored} appears twice")
            if not name.strip():
                raise ValueError(f"{path}:{number}: stored label {stored} has no class name")
            names[index] = name
    return names


# ------------------------------------------------------------------------------------------------ images


class ImageFormat(NamedTuple):
    name: str
    extensions: tuple  # lower-case file name endings of an image folder
    signatures: tuple  # alternatives, each a tuple of (offset, magic bytes) pairs that must all match


# What `tf.io.decode_image` decodes, with the leading bytes its decoder checks (tests/test_format.py decodes a real
# file of each).
IMAGE_FORMATS = (
    ImageFormat("JPEG", (".jpg", ".jpeg"), (((0, b"\xff\xd8\xff"),),)),
    ImageFormat("PNG", (".png",), (((0, b"\x89PNG\r\n\x1a\n"),),)),
    ImageFormat("GIF", (".gif",), (((0, b"GIF8"),),)),
    ImageFormat("BMP", (".bmp",), (((0, b"BM"),),)),
    ImageFormat("WebP", (".webp",), (((0, b"RIFF"), (8, b"WEBP")),)),
    ImageFormat("JPEG XL", (".jxl",), (((0, b"\xff\x0a"),),  # bare codestream
                                       ((0, b"\x00\x00\x00\x0cJXL \r\n\x87\n"),))),  # ISO BMFF container
)
IMAGE_EXTENSIONS = tuple(ext for f in IMAGE_FORMATS for ext in f.extensions)
SIGNATURE_BYTES = max(pos + len(magic) for f in IMAGE_FORMATS for sig in f.signatures for pos, magic in sig)
_names = [f.name for f in IMAGE_FORMATS]
NOT_AN_IMAGE = f"not a {', '.join(_names[:-1])} or {_names[-1]} image"  # the one wording of the check


def detect_image_format(data: bytes) -> str | None:
    """The name of the format (in IMAGE_FORMATS) that `data` starts like, or None."""
    head = bytes(data[:SIGNATURE_BYTES])
    for f in IMAGE_FORMATS:
        if any(all(head[pos:pos + len(magic)] == magic for pos, magic in sig) for sig in f.signatures):
            return f.name
    return None


def has_image_signature(encoded):
    """Graph version of `detect_image_format(...) is not None`: a bool tensor for one scalar string tensor."""
    import tensorflow as tf

    head = tf.strings.join([tf.strings.substr(encoded, 0, SIGNATURE_BYTES), b"\0" * SIGNATURE_BYTES])
    return tf.reduce_any(tf.stack([
        tf.reduce_all(tf.stack([tf.equal(tf.strings.substr(head, pos, len(magic)), magic) for pos, magic in sig]))
        for f in IMAGE_FORMATS for sig in f.signatures]))
