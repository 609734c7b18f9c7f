"""Built-in demo data: a generated, learnable 10-class image dataset, written once as ImageNet-format TFRecords.

    path = demo.ensure()                      # $REGNET_TF_DATA/demo or ~/.cache/regnet_tf/demo (generates once)
    ds = input_pipeline(demo.config(image_size=64), "train", global_batch_size=128)
    demo.write_folder("photos/", classes=("disk", "square", "ring"), per_class=20)   # as JPEGs: photos/<class>/

Every image (height and width each 48-96 px) has a smooth two-colour background with noise, and one object:
a shape (disk, square, triangle, ring, cross, ellipse) or a textured patch (stripes, checkerboard, dots, grid),
with random colours, size, position and rotation. The class is the shape or texture, never a colour: foreground
and background colours are drawn independently for every image (with a minimum contrast), so no single pixel or
colour tells the class. The records are standard (labels stored 1..10, the ImageNet convention), so the
ImageNet reader reads them. Deterministic from `seed` (each image has its own generator), 5,000 training and
1,000 validation images by default, generated in a few seconds; `manifest.json` records the generator version
and parameters, and a directory whose manifest differs is rebuilt. The class names and split sizes are stated once,
in `regnet_tf.data.config` (`DEMO_CLASSES`, `DEMO_SIZES`: DataConfig(source="demo") takes its sizes from there).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from regnet_tf.data.config import DEMO_CLASSES, DEMO_SHARDS, DEMO_SIZES, DataConfig
from regnet_tf.data.format import LABEL_OFFSET, stored_label, write_label_map
from regnet_tf.data.records import make_example, write_shards
from regnet_tf.files import write_atomic

VERSION = 1  # bump when the images change: existing caches are rebuilt
MANIFEST = "manifest.json"
SPLIT_IDS = {"train": 0, "validation": 1}


def cache_root():
    """`$REGNET_TF_DATA`, else ~/.cache/regnet_tf."""
    return os.environ.get("REGNET_TF_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "regnet_tf")


def _rotate(x, y, angle):
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


def _colour(rng, away_from=None, min_dist=150.0):
    """A random RGB colour, at L1 distance >= min_dist from `away_from` (resampled until it is)."""
    while True:
        c = rng.uniform(0, 255, 3)
        if away_from is None or np.abs(c - away_from).sum() >= min_dist:
            return c


def _mask(rng, label, h, w):
    """Float mask in [0, 1] of the object of class `label` on an h x w canvas."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    short = min(h, w)
    r = rng.uniform(0.26, 0.42) * short
    cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
    u, v = _rotate(xx - cx, yy - cy, rng.uniform(0, 2 * np.pi))
    name = DEMO_CLASSES[label]
    if name == "disk":
        return (u ** 2 + v ** 2 <= r ** 2).astype(np.float32)
    if name == "square":
        a = r * 0.85
        return ((np.abs(u) <= a) & (np.abs(v) <= a)).astype(np.float32)
    if name == "triangle":  # equilateral, circumradius r
        inside = np.ones_like(u, bool)
        for k in range(3):
            nu, nv = _rotate(u, v, 2 * np.pi * k / 3)
            inside &= nv <= r / 2
        return inside.astype(np.float32)
    if name == "ring":
        d = np.sqrt(u ** 2 + v ** 2)
        return ((d <= r) & (d >= r * rng.uniform(0.5, 0.7))).astype(np.float32)
    if name == "cross":
        t = r * rng.uniform(0.25, 0.4)
        return (((np.abs(u) <= r) & (np.abs(v) <= t)) | ((np.abs(v) <= r) & (np.abs(u) <= t))).astype(np.float32)
    if name == "ellipse":
        b = r * rng.uniform(0.35, 0.55)
        return ((u / r) ** 2 + (v / b) ** 2 <= 1).astype(np.float32)
    # textures: a rotated patch (a half-size of 0.55-0.95 of the short side) filled with a periodic pattern
    half = rng.uniform(0.55, 0.95) * short / 2
    cy, cx = rng.uniform(half * 0.6, h - half * 0.6), rng.uniform(half * 0.6, w - half * 0.6)
    u, v = _rotate(xx - cx, yy - cy, rng.uniform(0, np.pi))
    patch = (np.abs(u) <= half) & (np.abs(v) <= half)
    period = rng.uniform(0.14, 0.22) * short  # relative: >= 4.5 px per period after a downscale to 32 px
    pu, pv = np.mod(u / period, 1.0), np.mod(v / period, 1.0)
    if name == "stripes":
        pattern = pu < 0.5
    elif name == "checkerboard":
        pattern = (pu < 0.5) ^ (pv < 0.5)
    elif name == "dots":
        pattern = (pu - 0.5) ** 2 + (pv - 0.5) ** 2 <= rng.uniform(0.2, 0.3) ** 2
    else:  # grid: thin lines
        t = rng.uniform(0.15, 0.25)
        pattern = (pu < t) | (pv < t)
    return (patch & pattern).astype(np.float32)


def render(rng, label, height, width):
    """One uint8 RGB image (height, width, 3) of class `label`."""
    return render_with_mask(rng, label, height, width)[0]


def render_with_mask(rng, label, height, width):
    """`render`'s image and the object's float32 mask (height, width) in [0, 1] (a dense target, e.g. for a
    segmentation head: docs/BACKBONES.md); the image is the one `render` draws from the same generator state."""
    bg0 = _colour(rng)
    bg1 = np.clip(bg0 + rng.uniform(-60, 60, 3), 0, 255)
    g = rng.uniform(-1, 1, 2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (g[0] * yy / height + g[1] * xx / width)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    image = bg0 * (1 - t[..., None]) + bg1 * t[..., None]
    fg = _colour(rng, away_from=(bg0 + bg1) / 2)
    m = _mask(rng, label, height, width)[..., None]
    image = image * (1 - m) + fg * m
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), m[..., 0]


def _example(seed, split, index, min_size, max_size):
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    label = index % DEMO_SIZES.num_classes  # balanced classes; the reader shuffles
    h, w = (int(s) for s in rng.integers(min_size, max_size + 1, 2))
    encoded = tf.io.encode_jpeg(render(rng, label, h, w), quality=90).numpy()
    return make_example(encoded, stored_label(label), h, w, DEMO_CLASSES[label], f"{split}_{index:06d}.jpg")


def _manifest(seed, num_train, num_val, min_size, max_size, shards):
    return {"version": VERSION, "seed": seed, "num_train": num_train, "num_validation": num_val,
            "min_size": min_size, "max_size": max_size, "shards": shards, "classes": list(DEMO_CLASSES)}


def generate(out_dir, seed=0, num_train=DEMO_SIZES.num_train_examples, num_val=DEMO_SIZES.num_eval_examples,
             min_size=48, max_size=96, shards=DEMO_SHARDS, workers=2):
    """Writes train-*-of-* / validation-*-of-* shards, label_map.txt and manifest.json into `out_dir`."""
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        for split, count, num_shards in (("train", num_train, shards[0]), ("validation", num_val, shards[1])):
            examples = pool.map(lambda i, s=split: _example(seed, s, i, min_size, max_size), range(count))
            write_shards(examples, out_dir, split, max(1, min(num_shards, count)))
    write_label_map(out_dir, DEMO_CLASSES, LABEL_OFFSET)
    with open(os.path.join(out_dir, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(_manifest(seed, num_train, num_val, min_size, max_size, list(shards)), f, indent=1)
    return out_dir


def _is_current(data_dir, want) -> bool:
    try:
        with open(os.path.join(data_dir, MANIFEST), encoding="utf-8") as f:
            return json.load(f) == want
    except (OSError, ValueError):
        return False


def ensure(data_dir=None, seed=0, num_train=DEMO_SIZES.num_train_examples, num_val=DEMO_SIZES.num_eval_examples,
           min_size=48, max_size=96, shards=DEMO_SHARDS, log=None):
    """The demo data's directory (default `cache_root()/demo`), generated first if missing or out of date.

    Generation writes to a temporary sibling directory and renames it, so an interrupted run leaves no half data.
    """
    data_dir = data_dir or os.path.join(cache_root(), "demo")
    want = _manifest(seed, num_train, num_val, min_size, max_size, list(shards))
    if _is_current(data_dir, want):
        return data_dir
    if log:
        log(f"generating the demo data ({num_train} + {num_val} images) into {data_dir}")
    parent = os.path.dirname(os.path.abspath(data_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".demo-tmp-", dir=parent)
    try:
        generate(tmp, seed, num_train, num_val, min_size, max_size, shards)
        if _is_current(data_dir, want):  # another process finished the same (deterministic) data first
            return data_dir
        if os.path.exists(data_dir):
            shutil.rmtree(data_dir, ignore_errors=True)
        try:
            os.replace(tmp, data_dir)
        except OSError:
            if not _is_current(data_dir, want):
                raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return data_dir


def config(**overrides):
    """A DataConfig for the demo data (10 classes, 64 px, crops of >= 35% of the area); override any field (the
    sizes are set explicitly, so they stay with `source="tfrecord", data_dir=ensure()`)."""
    fields = {"source": "demo", "image_size": 64, "shuffle_buffer": 5000, "crop_area_range": (0.35, 1.0),
              **DEMO_SIZES._asdict()}
    fields.update(overrides)
    return DataConfig(**fields)


def write_folder(root, classes=None, per_class=20, validation_per_class=0, seed=0, min_size=48, max_size=96):
    """The demo images as an image folder (your own data's layout, source="folder"): `per_class` JPEGs
    `root/<class name>/<i>.jpg` of each class, or `root/train/<class name>/<i>.jpg` and
    `root/validation/<class name>/<i>.jpg` (`validation_per_class` of them) when validation_per_class > 0.
    `classes`: names or indices of `DEMO_CLASSES` (default all 10), e.g. ("disk", "square", "triangle", "ring",
    "cross") for 5 shape classes. Each image is drawn by `render` with its own generator (seed, split, class, i):
    another seed gives other images. Each file is written to a temporary name and renamed. Returns root."""
    names = []
    for c in DEMO_CLASSES if classes is None else classes:
        name = DEMO_CLASSES[c] if isinstance(c, (int, np.integer)) else c
        if name not in DEMO_CLASSES:
            raise ValueError(f"write_folder: unknown demo class {c!r}; the demo classes are {', '.join(DEMO_CLASSES)}")
        names.append(name)
    if per_class < 1 or validation_per_class < 0:
        raise ValueError(f"write_folder: per_class must be >= 1 and validation_per_class >= 0; got {per_class}, "
                         f"{validation_per_class}")
    root = os.fspath(root)
    splits = ((("train", per_class), ("validation", validation_per_class)) if validation_per_class
              else (("", per_class),))
    for split, count in splits:
        for name in names:
            label = DEMO_CLASSES.index(name)
            folder = os.path.join(root, split, name) if split else os.path.join(root, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([seed, SPLIT_IDS[split or "train"], label, i, 1])  # 1: not the records'
                h, w = (int(s) for s in rng.integers(min_size, max_size + 1, 2))
                data = tf.io.encode_jpeg(render(rng, label, h, w), quality=90).numpy()
                write_atomic(os.path.join(folder, f"{i}.jpg"), data)
    return root
