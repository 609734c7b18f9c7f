"""Your own images as a data source: the class folders of a directory, and its train / validation split.

    split = scan("photos/")          # photos/<class>/*.jpg: classes sorted by name; 10% of each class held out
    config = resolve(DataConfig(source="folder", data_dir="photos/"), run_dir="runs/x", log=print)
    config.num_classes, config.num_train_examples, config.num_eval_examples, config.split_file

Layouts (`scan`): `data_dir/train/<class>/` with `data_dir/validation/<class>/` (used as they are; both must have
the same class folders), or `data_dir/train/<class>/` alone, or `data_dir/<class>/`. Without a `validation/` folder
a validation set is held out of the training images: per class, a permutation (seeded by `seed` and the class
name) of its sorted files, the first round(n x validation_fraction) of them (rounded half up; at least 1, at most
n - 1) held out. Stratified (every class keeps its share) and deterministic: the same files and seed give the same
split, another seed another one. Images are the files of a class folder (not its subfolders) whose names end in
one of `format.IMAGE_EXTENSIONS`; names starting with "." (hidden files, macOS's "._x.jpg", ".ipynb_checkpoints")
are skipped. Class index = position of the class name in the sorted names.

`resolve` turns a folder `DataConfig` into one with its sizes (num_classes, num_train_examples,
num_eval_examples); with a `run_dir`, the split is written there once (`data_split.json`, with `label_map.txt`)
and read back on every resume, so files added to the folder later change neither the validation set nor the
class count of a run. Every problem is one line (ValueError / FileNotFoundError) naming it and the fix.

Pure Python and numpy: no TensorFlow (recipes and launchers resolve the data before TensorFlow loads).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib

import numpy as np

from regnet_tf.data.config import DataConfig
from regnet_tf.data.format import IMAGE_EXTENSIONS, LABEL_MAP, write_label_map
from regnet_tf.files import write_atomic

SPLIT_FILE = "data_split.json"  # the split, in a run's directory
VERSION = 1  # of the data_split.json format
_SHOWN_CLASSES = 5  # class names in the log line
_LAYOUT = ("expected root/<class name>/<image> (or root/train/<class name>/... with an optional "
           "root/validation/<class name>/...), images *" + "|*".join(IMAGE_EXTENSIONS))


@dataclasses.dataclass(frozen=True)
class FolderSplit:
    """The images of a folder source and their split. `root`: the folder (absolute); `classes`: the class names,
    sorted (class index = position); `train`, `validation`: tuples of (path relative to root, class index);
    `held_out`: True when the validation images were held out of the training images (no validation/ folder),
    False when they are a validation/ folder's; `validation_fraction`, `seed`: the hold-out's parameters."""

    root: str
    classes: tuple
    train: tuple
    validation: tuple
    held_out: bool
    validation_fraction: float
    seed: int

    def items(self, split) -> tuple:
        """The (relative path, class index) pairs of "train" or "validation"."""
        if split not in ("train", "validation"):
            raise ValueError(f"a folder split is 'train' or 'validation'; got {split!r}")
        return self.train if split == "train" else self.validation

    def paths(self, split):
        """([absolute path], [class index]) of "train" or "validation"."""
        items = self.items(split)
        return [os.path.join(self.root, p) for p, _ in items], [k for _, k in items]

    def counts(self, split) -> list:
        """The number of images of each class in a split."""
        counts = [0] * len(self.classes)
        for _, k in self.items(split):
            counts[k] += 1
        return counts

    def to_json(self) -> str:
        """The split as JSON text: the parameters, then one [path, class index] line per image."""
        head = {"version": VERSION, "root": self.root, "classes": list(self.classes), "held_out": self.held_out,
                "validation_fraction": self.validation_fraction, "seed": self.seed}
        lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
        for name, end in (("train", ","), ("validation", "")):
            body = ",\n  ".join(json.dumps([p, k]) for p, k in self.items(name))
            lines.append(f' "{name}": [\n  {body}\n ]{end}' if body else f' "{name}": []{end}')
        return "\n".join(lines + ["}"]) + "\n"

    @classmethod
    def from_json(cls, text, source="data split"):
        """The split of `to_json` text; ValueError naming `source` if it is not one."""
        try:
            d = json.loads(text)
            if d.get("version") != VERSION:
                raise ValueError(f"version {d.get('version')!r}, expected {VERSION}")
            classes = tuple(str(c) for c in d["classes"])
            splits = {name: tuple((str(p), int(k)) for p, k in d[name]) for name in ("train", "validation")}
            bad = [k for items in splits.values() for _, k in items if not 0 <= k < len(classes)]
            if bad:
                raise ValueError(f"class index {bad[0]} out of range for {len(classes)} classes")
            return cls(str(d["root"]), classes, splits["train"], splits["validation"], bool(d["held_out"]),
                       float(d["validation_fraction"]), int(d["seed"]))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{source} is not a data split file written by regnet_tf.data.folder ({e}); delete it "
                             f"to split the folder afresh") from None

    def save(self, path):
        """Writes `to_json()` to `path` atomically (a temporary file, then os.replace). Returns the path."""
        write_atomic(path, self.to_json())
        return path

    @classmethod
    def load(cls, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data split file {path!r} does not exist (data.split_file); remove "
                                    f"data.split_file to split the folder afresh")
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read(), repr(path))


def _visible(name):
    return not name.startswith(".")


def class_files(root):
    """{class name: sorted image file names} of root/<class>/ (hidden files and folders left out); the one folder
    listing of the package (`records.list_image_folder` reads it too)."""
    try:
        entries = sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e.name))
    except OSError as e:
        raise FileNotFoundError(f"cannot read image folder {root!r} ({e.strerror}): {_LAYOUT}") from None
    out = {}
    for name in entries:
        folder = os.path.join(root, name)
        out[name] = sorted(f.name for f in os.scandir(folder) if f.is_file() and _visible(f.name)
                           and f.name.lower().endswith(IMAGE_EXTENSIONS))
    return out


def _check_classes(folders, where):
    """Errors for a root with no images, empty class folders, fewer than 2 classes."""
    if not any(folders.values()):
        raise FileNotFoundError(f"no images in {where!r}: {_LAYOUT}")
    empty = [name for name, files in folders.items() if not files]
    if empty:
        shown = ", ".join(os.path.join(where, n) for n in empty[:5]) + (", ..." if len(empty) > 5 else "")
        raise ValueError(f"empty class folder{'s' if len(empty) > 1 else ''} {shown}: no images (*"
                         f"{'|*'.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
    if len(folders) < 2:
        raise ValueError(f"{where!r} has 1 class folder ({next(iter(folders))}): needs at least 2 classes to train a "
                         f"classifier; add a folder per class, root/<class name>/<image>")


def _held_out_count(n, fraction):
    return min(n - 1, max(1, math.floor(n * fraction + 0.5)))


def scan(data_dir, validation_fraction=0.1, seed=0) -> FolderSplit:
    """The classes and the train / validation split of an image folder (module docstring: layouts, hold-out).

    Errors (one line each): the folder missing or without images (FileNotFoundError); one class, an empty class
    folder, a class with fewer than 2 images when a validation set is held out, train/ and validation/ with
    different class folders, validation/ without train/, validation_fraction not in (0, 1) when one is held out
    (ValueError)."""
    root = os.path.abspath(os.fspath(data_dir))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {os.fspath(data_dir)!r} does not exist: {_LAYOUT}")
    train_dir, val_dir = os.path.join(root, "train"), os.path.join(root, "validation")
    has_train, has_val = os.path.isdir(train_dir), os.path.isdir(val_dir)
    if has_val and not has_train:
        raise ValueError(f"{root!r} has validation/ but no train/: put the training images in "
                         f"{os.path.join(root, 'train', '<class name>')}/ (or remove validation/ to hold out a "
                         f"validation set of root/<class name>/)")
    train_root = train_dir if has_train else root
    folders = class_files(train_root)
    _check_classes(folders, train_root)
    classes = tuple(folders)
    prefix = "train/" if has_train else ""
    if has_val:
        val_folders = class_files(val_dir)
        only_train, only_val = sorted(set(folders) - set(val_folders)), sorted(set(val_folders) - set(folders))
        if only_train or only_val:
            parts = [f"only in {where}/: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''}"
                     for where, names in (("train", only_train), ("validation", only_val)) if names]
            raise ValueError(f"{root!r}: train/ and validation/ have different class folders ({'; '.join(parts)}); "
                             f"give both the same class folders")
        _check_classes(val_folders, val_dir)
        train = tuple((f"train/{c}/{f}", k) for k, c in enumerate(classes) for f in folders[c])
        validation = tuple((f"validation/{c}/{f}", k) for k, c in enumerate(classes) for f in val_folders[c])
        return FolderSplit(root, classes, train, validation, False, float(validation_fraction), int(seed))
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction={validation_fraction} must be in (0, 1) to hold out a validation set "
                         f"of {train_root!r} (it has no validation/ folder): e.g. 0.1, or add "
                         f"{val_dir}/<class name>/")
    few = [f"{c} ({len(folders[c])} image)" for c in classes if len(folders[c]) < 2]
    if few:
        raise ValueError(f"class{'es' if len(few) > 1 else ''} {', '.join(few[:5])}{', ...' if len(few) > 5 else ''}"
                         f" of {train_root!r}: too few images to hold one out for validation and keep one for "
                         f"training; add images (at least 2 per class) or give a validation/ folder "
                         f"({val_dir}/<class name>/ with train/<class name>/)")
    train, validation = [], []
    for k, c in enumerate(classes):
        files = folders[c]
        order = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(c.encode("utf-8"))]).permutation(len(files))
        held = set(int(i) for i in order[:_held_out_count(len(files), validation_fraction)])
        for i, f in enumerate(files):
            (validation if i in held else train).append((f"{prefix}{c}/{f}", k))
    return FolderSplit(root, classes, tuple(train), tuple(validation), True, float(validation_fraction), int(seed))


def _check_root(split, data_dir, split_file):
    root = os.path.abspath(os.fspath(data_dir))
    if split.root != root:
        raise ValueError(f"{split_file} holds the split of the folder {split.root}, but data.data_dir is {root}: "
                         f"give the run's folder (--data_dir {split.root}), or use another run directory (or delete "
                         f"{split_file} to split the new folder afresh)")


def is_resolved(config) -> bool:
    """Whether a folder config's sizes are set (by `resolve`, or all three by the user); other sources: True."""
    return config.source != "folder" or None not in (config.num_classes, config.num_train_examples,
                                                      config.num_eval_examples)


def split_of(config) -> FolderSplit:
    """The split a folder config reads: `config.split_file`'s (its root checked against data_dir), else
    `scan(data_dir, validation_fraction, split_seed)`."""
    if not config.data_dir:
        raise FileNotFoundError(f"DataConfig.data_dir is not set for source='folder': {_LAYOUT}")
    if config.split_file:
        split = FolderSplit.load(config.split_file)
        _check_root(split, config.data_dir, config.split_file)
        return split
    return scan(config.data_dir, config.validation_fraction, config.split_seed)


def _describe(config, split, split_file, stored):
    names = ", ".join(split.classes[:_SHOWN_CLASSES]) + (", ..." if len(split.classes) > _SHOWN_CLASSES else "")
    line = f"data: {len(split.classes)} classes from {config.data_dir} ({names}): {len(split.train)} training images, "
    if split.held_out:
        line += (f"{len(split.validation)} held out for validation ({split.validation_fraction * 100:g}%, seed "
                 f"{split.seed}, stratified)")
    else:
        line += f"{len(split.validation)} validation images (validation/)"
    if split_file:
        line += f", split {'read from' if stored else 'in'} {split_file}"
        if stored and split.held_out and (split.validation_fraction, split.seed) != (config.validation_fraction,
                                                                                   config.split_seed):
            line += (f" (kept: data.validation_fraction={config.validation_fraction} / data.split_seed="
                     f"{config.split_seed} apply to a new run)")
    if config.num_classes is not None and config.num_classes > len(split.classes):
        line += f"; the classifier has data.num_classes={config.num_classes} outputs"
    return line


def resolve(config: DataConfig, run_dir=None, log=None) -> DataConfig:
    """A folder config with its sizes: num_classes (the folder's class count unless set, which may not be
    smaller), num_train_examples and num_eval_examples (the split's), split_file (the data_split.json in
    `run_dir`, None without one). Other sources: `config` unchanged.

    With `run_dir`: `run_dir/data_split.json` when it exists (a resumed run keeps its split, even if files were
    added to the folder since; its root must be data_dir's), else the split scanned and written there with
    `run_dir/label_map.txt` ("0 cat": class index and name). Without: `config.split_file`'s split, else the folder
    scanned, in memory. A held-out split's validation_fraction and seed are the config's validation_fraction and
    split_seed (a stored split's win over the config's). `log`: a print-like function for one summary line (None:
    quiet)."""
    if config.source != "folder":
        return config
    if not config.data_dir:
        raise FileNotFoundError(f"DataConfig.data_dir is not set for source='folder': {_LAYOUT}")
    split_file, stored = config.split_file, bool(config.split_file)
    if run_dir is not None:
        split_file = os.path.join(os.fspath(run_dir), SPLIT_FILE)
        stored = os.path.isfile(split_file)
        if stored:
            split = FolderSplit.load(split_file)
            _check_root(split, config.data_dir, split_file)
        else:
            split = split_of(config)  # config.split_file's split, else the folder scanned
            os.makedirs(run_dir, exist_ok=True)
            split.save(split_file)
        label_map = os.path.join(os.fspath(run_dir), LABEL_MAP)
        if not os.path.isfile(label_map):
            tmp = f"{label_map}.tmp-{os.getpid()}"
            write_label_map(tmp, split.classes, 0)
            os.replace(tmp, label_map)
    else:
        split = split_of(config)
    n = len(split.classes)
    if config.num_classes is not None and config.num_classes < n:
        raise ValueError(f"the folder {config.data_dir} has {n} classes, more than data.num_classes="
                         f"{config.num_classes} (the classifier's outputs); remove data.num_classes to take the "
                         f"folder's count")
    if log is not None:
        log(_describe(config, split, split_file, stored))
    held = {"validation_fraction": split.validation_fraction, "split_seed": split.seed} if split.held_out else {}
    return dataclasses.replace(config, num_classes=config.num_classes or n, num_train_examples=len(split.train),
                               num_eval_examples=len(split.validation), split_file=split_file, **held)
