"""Input pipelines: ImageNet-format TFRecords, TFDS `imagenet2012`, an image folder, the built-in demo data.

    config = DataConfig(data_dir="/data/imagenet")                    # train-* / validation-* TFRecords
    ds = input_pipeline(config, "train", global_batch_size=1024, input_context=ctx)   # per-replica batches

Each element is (images [B, S, S, 3] of `config.dtype`, labels): int32 class ids in 0..num_classes-1, or float32
soft labels [B, num_classes] when MixUp/CutMix is on. Training streams repeat forever, are shuffled and drop the
last partial batch; evaluation streams are read once, unshuffled, and keep it (in file order when
`deterministic=True`).

The stream, in order (the TF Model Garden layout): list files -> per-host shard of the files (or of the records
when there are fewer files than input pipelines) -> shuffle files -> repeat -> parallel interleave -> [cache] ->
shuffle records -> parallel map (parse, crop/decode, resize, flip, [RandAugment], normalize) -> batch -> check
(broken files, label range) -> [MixUp/CutMix] -> prefetch. All random ops are stateless and seeded per image
from `Dataset.random(seed)`, so `deterministic=True` with a seed gives the same stream on every run.

Bad input (docs/DATA.md):
- no data directory, no files for the pattern: FileNotFoundError naming the pattern and the expected layout.
- an image that does not decode (corrupt or truncated JPEG, malformed record): skipped, with tf.data's warning
  ("Error raised with error message ..." in the TF log); `regnet_tf.data.check_records` lists and counts them.
- a truncated or corrupted TFRecord file: stops with InvalidArgumentError naming the file and the index of the
  first record that cannot be read (every file's bytes read are checked against its size).
- a label outside 0..num_classes-1 after `label_offset`: stops with InvalidArgumentError naming the label, the
  file and the record index (usually a wrong `label_offset`).
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from regnet_tf.data import preprocess

AUTOTUNE = tf.data.AUTOTUNE
SOURCES = ("tfrecord", "tfds", "folder", "demo")
SPLITS = ("train", "validation")
FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/class/label": tf.io.FixedLenFeature((), tf.int64),
}
RECORD_OVERHEAD = 16  # TFRecord framing per record: 8-byte length, 4-byte length CRC, 4-byte data CRC
RECORD_BLOCK = 64  # records per step of the byte count (_read_tfrecord_file)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Everything the input pipeline needs; frozen (use `dataclasses.replace`)."""

    source: str = "tfrecord"  # tfrecord | tfds | folder | demo
    data_dir: str | None = None  # tfrecord: the shards; tfds: the TFDS data_dir; folder: root; demo: cache dir
    num_classes: int = 1000
    num_train_examples: int = 1_281_167  # ImageNet-1k; sets the steps per epoch of training
    num_eval_examples: int = 50_000
    label_offset: int = -1  # added to stored TFRecord labels: ImageNet's 1..1000 -> 0..999 (0: keep them)
    train_pattern: str = "train-*"
    eval_pattern: str = "validation-*"
    tfds_name: str = "imagenet2012"
    tfds_manual_dir: str | None = None  # where ILSVRC2012_img_{train,val}.tar are, to prepare the TFDS dataset
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
    autoaugment: str = ""  # "" (off) or an AutoAugment policy name ("v0"); exclusive with RandAugment
    mixup_alpha: float = 0.0  # MixUp / CutMix on batches (both 0: off); labels become soft
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    mix_switch_prob: float = 0.5
    # evaluation
    eval_mode: str = "crop_fraction"  # or "resize_short" (pycls: short side -> eval_short_side, center crop)
    eval_crop_fraction: float = 0.875
    eval_short_side: int | None = None  # default round(image_size / 0.875): 256 for 224
    # output and tf.data
    dtype: str = "float32"  # or bfloat16, float16
    normalize: bool = True  # False: uint8 RGB 0-255 out; normalize in the model (include_preprocessing=True)
    shuffle_buffer: int = 10_000
    cycle_length: int = 16  # files read in parallel
    cache: bool = False  # keep the encoded records in memory after the first epoch
    deterministic: bool = False  # same order and augmentation on every run (seed, or 0)
    seed: int | None = None

    def __post_init__(self):
        checks = [
            (self.source in SOURCES, f"source must be one of {SOURCES}"),
            (self.num_classes >= 1, "num_classes must be >= 1"),
            (self.num_train_examples >= 1 and self.num_eval_examples >= 1, "num_*_examples must be >= 1"),
            (self.image_size >= 8, "image_size must be >= 8"),
            (self.resize_method in preprocess.RESIZE_METHODS, f"resize_method in {preprocess.RESIZE_METHODS}"),
            (self.eval_mode in preprocess.EVAL_MODES, f"eval_mode must be one of {preprocess.EVAL_MODES}"),
            (self.dtype in preprocess.DTYPES, f"dtype must be one of {preprocess.DTYPES}"),
            (0 < self.crop_area_range[0] <= self.crop_area_range[1] <= 1, "crop_area_range within (0, 1]"),
            (0 < self.crop_aspect_range[0] <= self.crop_aspect_range[1], "crop_aspect_range must be increasing"),
            (0 < self.eval_crop_fraction <= 1, "eval_crop_fraction within (0, 1]"),
            (self.randaug_layers >= 0, "randaug_layers must be >= 0"),
            (not (self.autoaugment and self.randaug_layers), "choose AutoAugment or RandAugment, not both"),
            (self.mixup_alpha >= 0 and self.cutmix_alpha >= 0, "mixup_alpha and cutmix_alpha must be >= 0"),
            (self.normalize or not self.mixing, "MixUp/CutMix mix float images: needs normalize=True"),
            (self.shuffle_buffer >= 1 and self.cycle_length >= 1, "shuffle_buffer and cycle_length must be >= 1"),
        ]
        if self.autoaugment:
            from regnet_tf.data.augment import POLICIES

            checks.append((self.autoaugment in POLICIES, f"autoaugment must be '' or one of {sorted(POLICIES)}"))
        for ok, message in checks:
            if not ok:
                raise ValueError(f"DataConfig: {message}; got {self}")

    @property
    def mixing(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


# ------------------------------------------------------------------------------------------------- sources
# Each source returns (dataset of dicts {"record", "file", "index", "broken"[, "label"]}, parse_fn), already
# sharded for the input pipeline and repeated when training without cache. parse_fn(element) -> (encoded image
# bytes, int64 label) runs inside the map whose errors skip the image.

_IMAGENET_HELP = (
    "Expected ImageNet-format TFRecords: {dir}/train-00000-of-01024 ... and {dir}/validation-00000-of-00128 "
    "(tf.train.Example with image/encoded = JPEG bytes and image/class/label = 1..1000), as written by "
    "tensorflow/tpu tools/datasets/imagenet_to_gcs.py from the ImageNet download (https://image-net.org, free "
    "registration), or by `python launch/build_tfrecords.py --input DIR --output DIR --shards N` from an image "
    "folder. No data at hand? `--data demo` (DataConfig(source='demo')) generates a small built-in dataset.")


def _data_dir(config):
    if not config.data_dir:
        raise FileNotFoundError(f"DataConfig.data_dir is not set for source={config.source!r}. "
                                + _IMAGENET_HELP.format(dir="DATA_DIR"))
    return config.data_dir


def list_files(config, split):
    """Sorted TFRecord files of `split`; FileNotFoundError with the pattern and the expected layout if none."""
    data_dir = _data_dir(config)
    pattern = os.path.join(data_dir, config.train_pattern if split == "train" else config.eval_pattern)
    if not tf.io.gfile.isdir(data_dir):
        raise FileNotFoundError(f"data directory {data_dir!r} does not exist (looking for {pattern!r}). "
                                + _IMAGENET_HELP.format(dir=data_dir))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no files match {pattern!r}. " + _IMAGENET_HELP.format(dir=data_dir))
    return files


def _read_tfrecord_file(path, size):
    """The records of one file as dicts; a file that ends early yields a final {"broken": True} element.

    The bytes are counted per block of `RECORD_BLOCK` records (one scan step per block, then unbatch): the same
    elements as a scan step per record, at a tenth of its per-record cost.
    """
    blocks = tf.data.TFRecordDataset(path, buffer_size=8 << 20).ignore_errors()  # a break ends the file...
    blocks = blocks.batch(RECORD_BLOCK).map(lambda r: (r, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant([], tf.string), True)))

    def step(state, x):  # ... and is detected here: the bytes read must add up to the file size
        consumed, index = state
        records, end = x
        n = tf.size(records, out_type=tf.int64)
        consumed += tf.reduce_sum(tf.cast(tf.strings.length(records), tf.int64)) + RECORD_OVERHEAD * n
        broken = end & tf.not_equal(consumed, size)
        records = tf.cond(broken, lambda: tf.constant([b""]), lambda: records)  # the end block: a marker or nothing
        m = tf.size(records, out_type=tf.int64)
        out = {"record": records, "file": tf.fill([m], path), "index": index + tf.range(m),
               "broken": tf.fill([m], broken)}
        return (consumed, index + n), out

    return blocks.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), step).unbatch()


def _tfrecord_source(config, split, training, n, pipeline_id):
    files = list_files(config, split)
    sizes = [tf.io.gfile.stat(f).length for f in files]
    shard_records = n > 1 and len(files) < n  # then every pipeline reads every file in the same order
    ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64)))
    if n > 1 and not shard_records:
        ds = ds.shard(n, pipeline_id)
    if training and not shard_records:
        ds = ds.shuffle(len(files), seed=config.seed)
    repeat = training and not config.cache
    if repeat and not shard_records:
        ds = ds.repeat()
    ds = ds.interleave(_read_tfrecord_file, cycle_length=min(config.cycle_length, len(files)), block_length=1,
                       num_parallel_calls=AUTOTUNE, deterministic=config.deterministic or shard_records)
    if shard_records:
        ds = ds.shard(n, pipeline_id)  # per pass, then repeat: the same records for this pipeline every epoch
        if repeat:
            ds = ds.repeat()

    def parse(e):
        parsed = tf.io.parse_single_example(e["record"], FEATURES)
        return parsed["image/encoded"], parsed["image/class/label"] + config.label_offset

    return ds, parse


def _tfds_source(config, split, training, input_context):
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=config.seed,
                                  interleave_cycle_length=config.cycle_length, skip_prefetch=True)
    kwargs = {}
    if config.tfds_manual_dir:
        kwargs = {"download": True, "download_and_prepare_kwargs": {
            "download_config": tfds.download.DownloadConfig(manual_dir=config.tfds_manual_dir)}}
    try:
        ds = tfds.load(config.tfds_name, split=split, data_dir=config.data_dir, shuffle_files=training,
                       decoders={"image": tfds.decode.SkipDecoding()}, read_config=read_config,
                       **(kwargs or {"download": False}))
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as e:
        raise FileNotFoundError(
            f"TFDS dataset {config.tfds_name!r} split {split!r} is not prepared in data_dir={config.data_dir!r} "
            f"({e}). imagenet2012 needs a manual download: put ILSVRC2012_img_train.tar and "
            f"ILSVRC2012_img_val.tar in a directory and set DataConfig.tfds_manual_dir to it. No data at hand? "
            f"`--data demo` (DataConfig(source='demo')) generates a small built-in dataset.") from e
    if training and not config.cache:
        ds = ds.repeat()
    name = f"tfds:{config.tfds_name}/{split}"
    ds = ds.enumerate().map(lambda i, e: {"record": e["image"], "label": e["label"], "file": name, "index": i,
                                          "broken": False})
    return ds, lambda e: (e["record"], tf.cast(e["label"], tf.int64))  # TFDS labels are 0-based already


def _folder_source(config, split, training, n, pipeline_id):
    from regnet_tf.data.records import list_image_folder

    root = _data_dir(config)
    root = os.path.join(root, split) if os.path.isdir(os.path.join(root, split)) else root
    items, _ = list_image_folder(root)
    paths, labels = zip(*items)
    ds = tf.data.Dataset.from_tensor_slices({"record": list(paths), "label": list(labels)})
    ds = ds.enumerate().map(lambda i, e: dict(e, file=e["record"], index=i, broken=False))
    if n > 1:
        ds = ds.shard(n, pipeline_id)
    if training and not config.cache:
        ds = ds.repeat()
    return ds, lambda e: (tf.io.read_file(e["record"]), tf.cast(e["label"], tf.int64))


# ------------------------------------------------------------------------------------------------ pipeline


def _source(config, split, training, input_context):
    """(config, records dataset, parse) for this input pipeline; the demo source becomes its TFRecord directory
    (generated on first use)."""
    n = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    if config.source == "demo":
        from regnet_tf.data import demo

        config = dataclasses.replace(config, source="tfrecord", data_dir=demo.ensure(config.data_dir),
                                     label_offset=-1, train_pattern="train-*", eval_pattern="validation-*")
    if config.source == "tfrecord":
        return (config, *_tfrecord_source(config, split, training, n, pipeline_id))
    if config.source == "tfds":
        return (config, *_tfds_source(config, split, training, input_context))
    return (config, *_folder_source(config, split, training, n, pipeline_id))


def _randaugment(config):
    if config.autoaugment:
        from regnet_tf.data.augment import AutoAugment

        aa = AutoAugment(config.autoaugment)
        return lambda image, seed: aa(image, seed=seed)
    if config.randaug_layers <= 0:
        return None
    from regnet_tf.data.augment import RandAugment  # separate module (its own issue section)

    ra = RandAugment(num_layers=config.randaug_layers, magnitude=config.randaug_magnitude,
                     translate_const=config.randaug_translate_const, cutout_const=config.randaug_cutout_const)
    return lambda image, seed: ra(image, seed=seed)


def _check(config):
    """A map over batches that stops the pipeline at a broken file or a label out of range, naming the first such
    file and record index (per batch, not per image: one map call per batch instead of one per image)."""
    lo, hi = 0, config.num_classes

    def check(images, labels, files, indices, broken):
        bad_label = tf.logical_not(broken) & ((labels < lo) | (labels >= hi))
        first_broken = tf.argmax(tf.cast(broken, tf.int32))
        first_bad = tf.argmax(tf.cast(bad_label, tf.int32))
        read_ok = tf.debugging.Assert(tf.logical_not(tf.reduce_any(broken)), [
            "Truncated or corrupted TFRecord file:", files[first_broken], "- cannot read record index",
            indices[first_broken], "(the bytes read do not add up to the file size; re-copy or rebuild the file)"])
        label_ok = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad_label)), [
            "Label out of range:", labels[first_bad], "in file", files[first_bad], "record index", indices[first_bad],
            f"- expected 0..{hi - 1} after label_offset={config.label_offset} (ImageNet TFRecords store 1..1000: "
            f"label_offset=-1; TFDS and image folders are 0-based; check num_classes={hi})"])
        with tf.control_dependencies([read_ok, label_ok]):
            return tf.identity(images), tf.cast(labels, tf.int32)

    return check


def input_pipeline(config: DataConfig, split: str = "train", global_batch_size: int = 128, input_context=None,
                   training: bool | None = None, augment_fn=None):
    """A batched tf.data pipeline of (images, labels) for one input pipeline (host) of `input_context`.

    `split`: "train" or "validation". `training` (default: split == "train") selects the random training view,
    shuffling, repeating and drop_remainder. Batches hold `input_context.get_per_replica_batch_size(global)`
    images (use with `strategy.distribute_datasets_from_function`). `augment_fn(uint8 image, seed) -> uint8
    image` replaces RandAugment (the benchmark uses it for Keras's RandAugment).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    training = split == "train" if training is None else training
    batch = input_context.get_per_replica_batch_size(global_batch_size) if input_context else global_batch_size
    seed = config.seed if config.seed is not None else (0 if config.deterministic else None)
    config = dataclasses.replace(config, seed=seed)

    if config.source == "demo":
        from regnet_tf.data import demo

        if config.num_classes != demo.NUM_CLASSES:
            raise ValueError(f"the demo data has {demo.NUM_CLASSES} classes; set DataConfig(num_classes="
                             f"{demo.NUM_CLASSES}) (demo.config() does)")
    config, ds, parse = _source(config, split, training, input_context)

    if config.cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
        if config.cache:
            ds = ds.repeat()
    # A per-image seed [2] for the stateless random ops (deterministic when config.seed is set).
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=config.seed).batch(2)))

    augment = augment_fn if augment_fn is not None else (_randaugment(config) if training else None)
    size = config.image_size

    def view(encoded, seed_):  # normalized per image, while it is in cache (docs/DATA.md, "Input speed")
        if training:
            return preprocess.train_image(encoded, seed_, size, config.crop_area_range, config.crop_aspect_range,
                                          config.crop_max_attempts, config.hflip, config.resize_method, augment,
                                          config.dtype, config.normalize)
        return preprocess.eval_image(encoded, size, config.eval_mode, config.eval_crop_fraction,
                                     config.eval_short_side, config.resize_method, config.dtype, config.normalize)

    def decode(e, seed_):
        def real():
            encoded, label = parse(e)
            return view(encoded, seed_), label

        def placeholder():  # the marker of a broken file: carried to `check`, which stops with its name
            return tf.zeros([size, size, 3], config.dtype if config.normalize else tf.uint8), tf.constant(-1, tf.int64)

        image, label = tf.cond(e["broken"], placeholder, real)
        return image, label, e["file"], e["index"], e["broken"]

    ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    ds = ds.ignore_errors(log_warning=True)  # an image that fails to decode is skipped (logged)
    ds = ds.batch(batch, drop_remainder=training, num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    ds = ds.map(_check(config), num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    if config.mixing and training:
        from regnet_tf.data.mixup import mixup_cutmix  # separate module (its own issue section)

        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=None if seed is None else seed + 1).batch(2)))
        ds = ds.map(lambda batch_, s: mixup_cutmix(
            batch_[0], batch_[1], config.num_classes, mixup_alpha=config.mixup_alpha, cutmix_alpha=config.cutmix_alpha,
            prob=config.mix_prob, switch_prob=config.mix_switch_prob, seed=s), num_parallel_calls=AUTOTUNE,
            deterministic=config.deterministic)
    options = tf.data.Options()
    options.deterministic = config.deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # sharded above
    return ds.with_options(options).prefetch(AUTOTUNE)


def encoded_dataset(config: DataConfig, split: str = "validation", input_context=None):
    """(encoded image bytes, int32 label) pairs of a split, read once in file order, undecoded: what a serving
    signature that takes image bytes is fed (`launch/eval.py --saved_model`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    _, ds, parse = _source(dataclasses.replace(config, deterministic=True, cache=False), split, False, input_context)
    ds = ds.filter(lambda e: tf.logical_not(e["broken"]))
    return ds.map(lambda e: tuple(x if i == 0 else tf.cast(x, tf.int32) for i, x in enumerate(parse(e))),
                  num_parallel_calls=AUTOTUNE, deterministic=True)
