"""DataConfig: everything the input pipeline needs, as plain data (no TensorFlow: parsing a recipe stays cheap).

    config = DataConfig(data_dir="/data/imagenet")        # ImageNet-format TFRecords, 1000 classes
    config = DataConfig(source="demo", image_size=64)     # the built-in demo data: 10 classes, 5,000 + 1,000 images
    config = folder.resolve(DataConfig(source="folder", data_dir="photos/"))   # your own images: photos/<class>/

Sizes: `num_classes`, `num_train_examples` and `num_eval_examples` left None are the source's: the demo data's
(`DEMO_SIZES`) for source="demo", ImageNet-1k's (`IMAGENET_SIZES`) for tfrecord and tfds. The demo data has exactly
10 classes, so another explicit num_classes with source="demo" is an error. For source="folder" they stay None until
`regnet_tf.data.folder.resolve(config)` fills them from the folder (its class count, the split's sizes; it also sets
`split_file`); `num_trained_examples` / `num_examples()` of an unresolved folder config are a ValueError saying so.
A folder without a validation/ subfolder holds out `validation_fraction` of each class (seeded by `split_seed`).

TFDS: split "train" reads the TFDS split "train", split "validation" reads `tfds_eval_split` (default "validation";
e.g. "test" for cifar100, which has no "validation").

ImageNetV2 (TFDS `imagenet_v2`, the test sets of "Do ImageNet Classifiers Generalize to ImageNet?"; the RegNet
paper's Tables 5-6): `imagenet_v2(variant, data_dir)` is its DataConfig, source="tfds" with tfds_name
"imagenet_v2/<variant>" (`IMAGENET_V2_VARIANTS`), read as split "validation" from its only TFDS split, "test"
(`tfds_eval_split` "validation" becomes "test"); labels are ImageNet-1k's class indices. Sizes: `IMAGENET_V2_SIZES`
(1000 classes, 10,000 images; num_train_examples is ImageNet's, the training set of the models it tests: it has
none itself, and reading split "train" is an error).

Labels: records store class k as k + 1 (ImageNet's 1..1000). `stored_label_offset` is what the reader adds to a
stored label: `label_offset` (default -1) for TFRecords, -1 for the demo data (written by us), 0 for TFDS and image
folders (their labels are class indices already).

minival (`minival_shards` = m > 0; TFRecords and the demo data only): the last m files of the sorted training
shards are held out of split "train" and read as split "minival" (evaluation view). `num_minival_examples` None is
estimated as round(num_train_examples * m / n), n the shard count the source is expected to have (ImageNet-format
TFRecords: `IMAGENET_TRAIN_SHARDS` = 1024; demo: `DEMO_SHARDS`); `num_trained_examples` is what training reads
(it sets the steps per epoch); `num_examples(split)` gives each split's size.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import NamedTuple

from regnet_tf.data.augment_policies import AUTOAUGMENT_POLICIES, CONTRAST_MODES
from regnet_tf.data.format import IMAGENET_TRAIN_SHARDS, LABEL_OFFSET, MAX_PIXELS, SPLIT_PATTERNS

DATA_SOURCES = ("tfrecord", "tfds", "folder", "demo")
SPLITS = ("train", "validation")  # the splits stored on disk (shard name prefixes)
PIPELINE_SPLITS = (*SPLITS, "minival")  # what input_pipeline reads: minival = the held-out training shards
DTYPES = ("float32", "bfloat16", "float16")
RESIZE_METHODS = ("bilinear", "bicubic")
EVAL_MODES = ("crop_fraction", "resize_short")
CENTER_CROP_FRACTION = 0.875  # eval: the centered crop's side / the short side (224 of 256)


class Sizes(NamedTuple):
    num_classes: int
    num_train_examples: int
    num_eval_examples: int


IMAGENET_SIZES = Sizes(1000, 1_281_167, 50_000)  # ImageNet-1k (ILSVRC2012)
# ImageNetV2: TFDS imagenet_v2's builder configs (the first is TFDS's default) and sizes (see the module docstring)
IMAGENET_V2_VARIANTS = ("matched-frequency", "threshold-0.7", "topimages")
IMAGENET_V2_SIZES = Sizes(IMAGENET_SIZES.num_classes, IMAGENET_SIZES.num_train_examples, 10_000)
# The built-in demo data (regnet_tf.data.demo): its classes (shapes and textures) and default split sizes.
DEMO_CLASSES = ("disk", "square", "triangle", "ring", "cross", "ellipse", "stripes", "checkerboard", "dots", "grid")
DEMO_SIZES = Sizes(len(DEMO_CLASSES), 5000, 1000)
DEMO_SHARDS = (8, 2)  # the demo data's train / validation shard counts


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything the input pipeline needs; frozen (use `dataclasses.replace`). See the module docstring for the
    size defaults and the label offset."""

    source: str = "tfrecord"  # tfrecord | tfds | folder | demo
    data_dir: str | None = None  # tfrecord: the shards; tfds: the TFDS data_dir; folder: root; demo: cache dir
    num_classes: int | None = None  # None: the source's (demo 10, folder: its classes, else ImageNet's 1000)
    num_train_examples: int | None = None  # sets the steps per epoch of training; None: the source's
    num_eval_examples: int | None = None
    label_offset: int = LABEL_OFFSET  # added to stored TFRecord labels: ImageNet's 1..1000 -> 0..999 (0: keep them)
    train_pattern: str = SPLIT_PATTERNS["train"]
    eval_pattern: str = SPLIT_PATTERNS["validation"]
    # minival (Revisiting ResNets: "2% of the ImageNet training set (20 shards out of 1024)"): > 0 holds this many
    # training shards out of training; they are the "minival" split that evaluation during training uses
    minival_shards: int = 0
    num_minival_examples: int | None = None  # None: estimated from minival_shards (module docstring); 0 without
    tfds_name: str = "imagenet2012"
    tfds_manual_dir: str | None = None  # where ILSVRC2012_img_{train,val}.tar are, to prepare the TFDS dataset
    tfds_eval_split: str = "validation"  # the TFDS split read as our "validation" (cifar100: "test")
    # folder without a validation/ subfolder: the fraction of each class held out for validation, and its seed
    validation_fraction: float = 0.1
    split_seed: int = 0
    split_file: str | None = None  # a data_split.json written by regnet_tf.data.folder.resolve (the run's split)
    image_size: int = 224
    # training augmentation
    crop_area_range: tuple[float, float] = (0.08, 1.0)
    crop_aspect_range: tuple[float, float] = (3 / 4, 4 / 3)
    crop_max_attempts: int = 10
    hflip: bool = True
    resize_method: str = "bilinear"  # or "bicubic"
    randaug_layers: int = 0  # 0: no RandAugment
    randaug_magnitude: float = 10.0
    randaug_translate_const: float = 100.0
    randaug_cutout_const: float = 40.0
    # Contrast of RandAugment / AutoAugment: tf1 (the TF1 reference's H*W/256 "mean", behind the papers' TF
    # numbers), model_garden (tf.image.adjust_contrast: per-channel means), pil (PIL ImageEnhance.Contrast: the
    # rounded mean of the "L" grayscale); docs/AUGMENT.md "Contrast"
    contrast_mode: str = "pil"
    autoaugment: str = ""  # "" (off) or an AutoAugment policy name ("v0"); exclusive with RandAugment
    mixup_alpha: float = 0.0  # MixUp / CutMix on batches (both 0: off); labels become soft
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    mix_switch_prob: float = 0.5
    # evaluation
    eval_mode: str = "crop_fraction"  # or "resize_short" (pycls: short side -> eval_short_side, center crop)
    eval_crop_fraction: float = CENTER_CROP_FRACTION
    eval_short_side: int | None = None  # default round(image_size / 0.875): 256 for 224
    # output and tf.data
    dtype: str = "float32"  # or bfloat16, float16
    normalize: bool = True  # False: uint8 RGB 0-255 out; normalize in the model (include_preprocessing=True)
    shuffle_buffer: int = 10_000
    cycle_length: int = 16  # files read in parallel
    cache: bool = False  # keep the encoded records in memory after the first epoch
    # decoded pixels (frames x height x width) an image may declare in its header, checked before decoding; an image
    # over it is skipped like a corrupt one (a decompression bomb cannot stall or kill training); 0: no limit
    max_pixels: int = MAX_PIXELS
    deterministic: bool = False  # same order and augmentation on every run (seed, or 0)
    seed: int | None = None

    def __post_init__(self):
        if self.source not in DATA_SOURCES:
            raise ValueError(f"DataConfig: source must be one of {DATA_SOURCES}; got {self.source!r}")
        sizes = {"demo": DEMO_SIZES, "folder": None}.get(self.source, IMAGENET_SIZES)
        if self.imagenet_v2_variant:
            sizes = IMAGENET_V2_SIZES
            self._imagenet_v2_checks()
        if self.source == "demo" and self.num_classes not in (None, DEMO_SIZES.num_classes):
            raise ValueError(f"DataConfig: the demo data has {DEMO_SIZES.num_classes} classes; got num_classes="
                             f"{self.num_classes}. Leave num_classes unset (None: the source's) or set "
                             f"{DEMO_SIZES.num_classes}; for your own data, set source to tfrecord, folder or tfds")
        for name, default in (sizes._asdict().items() if sizes else ()):  # folder: set by folder.resolve
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)  # frozen: fill in the source's size once
        checks = [
            (self.num_classes is None or self.num_classes >= 1, "num_classes must be >= 1"),
            (all(n is None or n >= 1 for n in (self.num_train_examples, self.num_eval_examples)),
             "num_*_examples must be >= 1"),
            (0 < self.validation_fraction < 1, "validation_fraction must be in (0, 1)"),
            (self.image_size >= 8, "image_size must be >= 8"),
            (self.resize_method in RESIZE_METHODS, f"resize_method in {RESIZE_METHODS}"),
            (self.eval_mode in EVAL_MODES, f"eval_mode must be one of {EVAL_MODES}"),
            (self.dtype in DTYPES, f"dtype must be one of {DTYPES}"),
            (0 < self.crop_area_range[0] <= self.crop_area_range[1] <= 1, "crop_area_range within (0, 1]"),
            (0 < self.crop_aspect_range[0] <= self.crop_aspect_range[1], "crop_aspect_range must be increasing"),
            (0 < self.eval_crop_fraction <= 1, "eval_crop_fraction within (0, 1]"),
            (self.randaug_layers >= 0, "randaug_layers must be >= 0"),
            (self.contrast_mode in CONTRAST_MODES, f"contrast_mode must be one of {CONTRAST_MODES}"),
            (self.minival_shards >= 0, "minival_shards must be >= 0"),
            (not self.autoaugment or self.autoaugment in AUTOAUGMENT_POLICIES,
             f"autoaugment must be '' or one of {sorted(AUTOAUGMENT_POLICIES)}"),
            (not (self.autoaugment and self.randaug_layers), "choose AutoAugment or RandAugment, not both"),
            (self.mixup_alpha >= 0 and self.cutmix_alpha >= 0, "mixup_alpha and cutmix_alpha must be >= 0"),
            (self.normalize or not self.mixing, "MixUp/CutMix mix float images: needs normalize=True"),
            (self.shuffle_buffer >= 1 and self.cycle_length >= 1, "shuffle_buffer and cycle_length must be >= 1"),
            (self.max_pixels >= 0, "max_pixels must be >= 0 (0: no limit)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"DataConfig: {message}; got {self}")
        self._minival_checks()

    def _minival_checks(self):
        m, given = self.minival_shards, self.num_minival_examples
        if m > 0 and self.source not in ("tfrecord", "demo"):
            raise ValueError(f"DataConfig: minival needs sharded TFRecords (source tfrecord or demo); got source="
                             f"{self.source!r} with minival_shards={m}: convert the data (launch/build_tfrecords.py) "
                             f"or set minival_shards=0")
        if self.source == "demo" and m >= DEMO_SHARDS[0]:
            raise ValueError(f"DataConfig: minival_shards={m} needs at least {m + 1} training files; the demo data "
                             f"has {DEMO_SHARDS[0]}: lower minival_shards (e.g. data.minival_shards=2)")
        if m <= 0 and given:
            raise ValueError(f"DataConfig: num_minival_examples={given} needs minival_shards > 0; set minival_shards "
                             f"(e.g. 20 of ImageNet's 1024 train shards) or leave num_minival_examples unset")
        if given is None:
            n = DEMO_SHARDS[0] if self.source == "demo" else IMAGENET_TRAIN_SHARDS
            given = max(1, round(self.num_train_examples * m / n)) if m > 0 else 0
            object.__setattr__(self, "num_minival_examples", given)
        if m > 0 and not 1 <= given < self.num_train_examples:
            raise ValueError(f"DataConfig: num_minival_examples={given} must be in 1..num_train_examples-1 "
                             f"(num_train_examples={self.num_train_examples}, minival_shards={m})")

    def _imagenet_v2_checks(self):
        name = f"ImageNetV2 ({self.tfds_name})"
        if self.num_classes not in (None, IMAGENET_V2_SIZES.num_classes):
            raise ValueError(f"DataConfig: {name} is labelled with ImageNet-1k's {IMAGENET_V2_SIZES.num_classes} "
                             f"classes; got num_classes={self.num_classes}: evaluate a model trained on ImageNet-1k "
                             f"(leave num_classes unset)")
        if self.tfds_eval_split == "validation":  # the default: ImageNetV2's one split is "test"
            object.__setattr__(self, "tfds_eval_split", "test")
        if re.split(r"[\[(]", self.tfds_eval_split, maxsplit=1)[0] != "test":
            raise ValueError(f"DataConfig: {name} has one split, 'test' (read as our 'validation'); got "
                             f"tfds_eval_split={self.tfds_eval_split!r}: set 'test' (or a slice such as 'test[:50%]')")

    @property
    def imagenet_v2_variant(self) -> str | None:
        """The ImageNetV2 variant this config reads (source "tfds", tfds_name "imagenet_v2[/variant]"), else None."""
        return imagenet_v2_variant(self.tfds_name) if self.source == "tfds" else None

    def _check_resolved(self):
        if None in (self.num_classes, self.num_train_examples, self.num_eval_examples):
            raise ValueError(f"DataConfig: the sizes of the folder {self.data_dir!r} are not known yet; call "
                             f"regnet_tf.data.folder.resolve(config) first (it counts the classes and images)")

    @property
    def num_trained_examples(self) -> int:
        """The images training reads: num_train_examples less the minival's (it sets the steps per epoch)."""
        self._check_resolved()
        return self.num_train_examples - self.num_minival_examples

    def num_examples(self, split) -> int:
        """The (expected) number of images of a split of `PIPELINE_SPLITS`: train (without the minival shards),
        validation, minival."""
        sizes = {"train": self.num_trained_examples, "validation": self.num_eval_examples,
                 "minival": self.num_minival_examples}
        if split not in sizes:
            raise ValueError(f"split must be one of {PIPELINE_SPLITS}; got {split!r}")
        if split == "minival" and not self.minival_shards:
            raise ValueError("split 'minival' needs data.minival_shards > 0 (the training shards held out for it)")
        return sizes[split]

    @property
    def mixing(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @property
    def eval_preprocessing(self) -> dict:
        """The eval crop and resize as the exports take them (`export_saved_model`, `deploy.export_file`)."""
        return {"eval_mode": self.eval_mode, "crop_fraction": self.eval_crop_fraction,
                "short_side": self.eval_short_side, "resize_method": self.resize_method}

    @property
    def stored_label_offset(self) -> int:
        """What the reader adds to a stored label to get the class index (see the module docstring)."""
        return {"tfrecord": self.label_offset, "demo": LABEL_OFFSET}.get(self.source, 0)


def eval_short_side(image_size, short_side=None):
    """The "resize_short" eval mode's short side: `short_side`, by default round(image_size / 0.875) (256 for 224);
    ValueError if it is below image_size."""
    short_side = short_side or round(image_size / CENTER_CROP_FRACTION)
    if short_side < image_size:
        raise ValueError(f"short_side={short_side} must be >= image_size={image_size}")
    return short_side


def imagenet_v2_variant(tfds_name: str) -> str | None:
    """The ImageNetV2 variant of a TFDS name: "imagenet_v2/topimages" -> "topimages", "imagenet_v2" -> TFDS's
    default "matched-frequency" (a version, ":3.0.0", is ignored); None for another dataset; a one-line ValueError
    listing `IMAGENET_V2_VARIANTS` for an unknown variant."""
    dataset, _, variant = tfds_name.split(":", 1)[0].partition("/")
    if dataset != "imagenet_v2":
        return None
    return check_imagenet_v2_variant(variant or IMAGENET_V2_VARIANTS[0])


def check_imagenet_v2_variant(variant: str) -> str:
    if variant not in IMAGENET_V2_VARIANTS:
        raise ValueError(f"unknown ImageNetV2 variant {variant!r}; valid: {', '.join(IMAGENET_V2_VARIANTS)}")
    return variant


def imagenet_v2_fields(variant: str = IMAGENET_V2_VARIANTS[0], data_dir: str | None = None) -> dict:
    """The DataConfig fields that make a config read ImageNetV2 `variant` from the TFDS `data_dir` (None: TFDS's
    default, ~/tensorflow_datasets or $TFDS_DATA_DIR); the sizes return to the source's, no minival. What
    `imagenet_v2` replaces and `launch/eval.py --data imagenet_v2` sets (as data.* overrides) on the run's recipe;
    a leading "~" in data_dir is expanded."""
    return {"source": "tfds", "tfds_name": f"imagenet_v2/{check_imagenet_v2_variant(variant)}",
            "tfds_eval_split": "test", "data_dir": None if data_dir is None else os.path.expanduser(data_dir),
            "tfds_manual_dir": None, "num_eval_examples": None, "minival_shards": 0, "num_minival_examples": None,
            "split_file": None}


def imagenet_v2(variant: str = IMAGENET_V2_VARIANTS[0], data_dir: str | None = None,
                base: DataConfig | None = None, **fields) -> DataConfig:
    """The DataConfig of ImageNetV2 `variant` ("matched-frequency", "threshold-0.7" or "topimages") prepared by
    TFDS in `data_dir` (None: TFDS's default); split "validation" reads its 10,000 test images.

        config = imagenet_v2("matched-frequency", "~/tensorflow_datasets", image_size=288)
        config = imagenet_v2("topimages", data_dir, base=recipe.data)   # the recipe's eval view (size, crop, resize)

    `base`: the DataConfig of the model being evaluated (default `DataConfig()`); its eval view (image_size,
    eval_mode, crop, resize_method, dtype, normalize) is kept. `fields`: further DataConfig fields."""
    return dataclasses.replace(base or DataConfig(), **{**imagenet_v2_fields(variant, data_dir), **fields})


def check_imagenet_v2_splits(config: DataConfig, splits) -> None:
    """A ValueError when one of `splits` is not "validation" and `config` reads ImageNetV2: it is a test set, its
    one TFDS split ("test") is read as split "validation"; training on it is an error saying so."""
    bad = [s for s in splits if s != "validation"]
    if config.imagenet_v2_variant and bad:
        raise ValueError(f"ImageNetV2 ({config.tfds_name}) is a test set: its one split, 'test' "
                         f"({IMAGENET_V2_SIZES.num_eval_examples:,} images), is read as split 'validation'; split "
                         f"{bad[0]!r} cannot read it. Train on ImageNet-1k and evaluate on ImageNetV2 "
                         f"(launch/eval.py --data imagenet_v2)")


def imagenet_v2_prepare_hint(variant: str) -> str:
    """How to prepare ImageNetV2 `variant` for TFDS (the end of the error of a data_dir without it)."""
    return (f"ImageNetV2 downloads without registration: on a machine with internet, `tfds build imagenet_v2/{variant}"
            f" --data_dir DIR` (or tensorflow_datasets.load('imagenet_v2/{variant}', data_dir=DIR)) prepares it; copy "
            f"DIR here and point --data_dir (DataConfig.data_dir) at it")
