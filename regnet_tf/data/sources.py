"""Input pipelines: ImageNet-format TFRecords, TFDS (`imagenet2012`, `imagenet_v2`), an image folder, the demo data.
Length: the four sources feed one pipeline through one record layout and one set of error checks.

    config = DataConfig(data_dir="/data/imagenet")                    # train-* / validation-* TFRecords
    ds = input_pipeline(config, "train", global_batch_size=1024, input_context=ctx)   # per-replica batches
    check_data(config)                                 # fail early, before building a model, if the data is missing
    detect_source("/data/photos")                      # "tfrecord" or "folder": what a directory holds

Each element is (images [B, S, S, 3] of `config.dtype`, labels): int32 class ids in 0..num_classes-1, or float32
soft labels [B, num_classes] when MixUp/CutMix is on. Training streams repeat forever, are shuffled and drop the
last partial batch; evaluation streams are read once, unshuffled, and keep it (in file order when
`deterministic=True`).

An image folder (`source="folder"`) reads the split of `regnet_tf.data.folder`: "validation" is its validation/
folder or the images held out of training (no overlap); `input_pipeline`, `encoded_dataset` and `check_data` call
`folder.resolve(config)` first when its sizes are not set (a trainer resolves with its run directory instead, which
stores the split).

The stream, in order (the TF Model Garden layout): list files -> per-host shard of the files (or of the records
when there are fewer files than input pipelines) -> shuffle files -> repeat -> parallel interleave -> [cache] ->
shuffle records -> parallel map (parse, crop/decode, resize, flip, [RandAugment], normalize) -> batch -> check
(broken files, label range) -> [MixUp/CutMix] -> prefetch. All random ops are stateless and seeded per image
from `Dataset.random(seed)`, so `deterministic=True` with a seed gives the same stream on every run.

Bad input (docs/DATA.md):
- no data directory, no files for the pattern: FileNotFoundError naming the pattern and the expected layout.
- an image that does not decode (corrupt or truncated JPEG, malformed record), or whose header declares more than
  `config.max_pixels` pixels (checked before decoding, `preprocess.pipeline_view`): skipped, with tf.data's warning
  ("Error raised with error message ..." in the TF log); `regnet_tf.data.check_records` lists and counts them.
- a truncated or corrupted TFRecord file: stops with InvalidArgumentError naming the file and the index of the
  first record that cannot be read (every file's bytes read are checked against its size).
- a label outside 0..num_classes-1 after the label offset: stops with InvalidArgumentError naming the label, the
  file and the record index (usually a wrong `label_offset`).
Both carry one self-contained line starting with `DATA_ERROR`; `user_message(exc)` pulls it out of TensorFlow's
(often 40-line) graph-execution error.
"""

from __future__ import annotations

import dataclasses
import os
import re

import tensorflow as tf

from regnet_tf.data import augment as augment_lib
from regnet_tf.data import demo, folder, preprocess
from regnet_tf.data.config import (PIPELINE_SPLITS, SPLITS, DataConfig,  # noqa: F401 - DataConfig re-exported
                                   check_imagenet_v2_splits, imagenet_v2_prepare_hint)
from regnet_tf.data.format import (IMAGE_EXTENSIONS, IMAGE_KEY, LABEL_KEY, LABEL_MAP, LABEL_OFFSET, SPLIT_PATTERNS,
                                   features, split_minival)
from regnet_tf.data.mixup import mixup_cutmix

AUTOTUNE = tf.data.AUTOTUNE
FEATURES = features()  # the parsing spec: image/encoded, image/class/label
RECORD_OVERHEAD = 16  # TFRecord framing per record: 8-byte length, 4-byte length CRC, 4-byte data CRC
RECORD_BLOCK = 64  # records per step of the byte count (_read_tfrecord_file)
DATA_ERROR = "regnet_tf data error: "  # the start of the pipeline's own error lines (see `user_message`)
_FOLDER_MINIVAL = ("split 'minival' needs sharded TFRecords (data.minival_shards > 0); a folder has 'train' and "
                   "'validation'")


def user_message(exc) -> str | None:
    """The pipeline's one-line message (after `DATA_ERROR`) inside an exception's text, e.g. the InvalidArgumentError
    of a truncated TFRecord raised through a training step; None when the exception holds none."""
    match = re.search(re.escape(DATA_ERROR) + r"([^\n]*)\]", str(exc))
    return match.group(1) if match else None


# ------------------------------------------------------------------------------------------------- sources
# Each source returns (dataset of dicts {"record", "file", "index", "broken"[, "label"]}, parse_fn), already
# sharded for the input pipeline and repeated when training without cache. parse_fn(element) -> (encoded image
# bytes, int64 label) runs inside the map whose errors skip the image.

_DEMO_HINT = "No data at hand? `--data demo` (DataConfig(source='demo')) generates a small built-in dataset."
_IMAGENET_HELP = (
    "Expected ImageNet-format TFRecords: {dir}/train-00000-of-01024 ... and {dir}/validation-00000-of-00128 "
    "(tf.train.Example with image/encoded = JPEG bytes and image/class/label = 1..1000), as written by "
    "tensorflow/tpu tools/datasets/imagenet_to_gcs.py from the ImageNet download (https://image-net.org, free "
    "registration), or by `python launch/build_tfrecords.py --input DIR --output DIR --shards N` from an image "
    "folder. " + _DEMO_HINT)
_FOLDER_HELP = (
    "an image folder: {dir}/<class name>/<image> (or {dir}/train/<class name>/... and {dir}/validation/...), "
    "images of the formats " + ", ".join(IMAGE_EXTENSIONS))


def _data_dir(config):
    if not config.data_dir:
        raise FileNotFoundError(f"DataConfig.data_dir is not set for source={config.source!r}. "
                                + _IMAGENET_HELP.format(dir="DATA_DIR"))
    return config.data_dir


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(f"source='tfds' needs TensorFlow Datasets: pip install tensorflow-datasets ({e}). "
                          + _DEMO_HINT) from e
    return tfds


def _check_split(split):  # "minival": the training shards held out by minival_shards
    if split not in PIPELINE_SPLITS:
        raise ValueError(f"split must be one of {PIPELINE_SPLITS}; got {split!r}")


def _folder_split(config):
    """The `folder.FolderSplit` a folder config reads (`folder.split_of`: config.split_file's, else scanned)."""
    try:
        return folder.split_of(config)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}. {_DEMO_HINT}") from None


def _resolved(config):
    """A folder config with its sizes (`folder.resolve`, in memory) when they are not set; others as they are."""
    if folder.is_resolved(config):
        return config
    try:
        return folder.resolve(config)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e}. {_DEMO_HINT}") from None


def check_data(config: DataConfig, splits=SPLITS):
    """Fails early (before a model is built) when `config`'s data is not there: FileNotFoundError with the expected
    layout and the demo alternative (tfrecord: the shards of each split, > minival_shards training shards; folder:
    images under the root and a valid split, `folder.resolve`'s checks; tfds: ImportError without
    tensorflow-datasets, ValueError for ImageNetV2's missing train split). The demo data always passes."""
    for split in splits:
        _check_split(split)
        if config.source == "tfrecord":
            list_files(config, split)
    if config.source == "folder":
        if "minival" in splits:
            raise ValueError(_FOLDER_MINIVAL)
        if folder.is_resolved(config):
            _folder_split(config)  # scans the folder (or reads split_file)
        else:
            _resolved(config)  # scans it and checks num_classes
    if config.source == "tfds":
        _tfds()
        check_imagenet_v2_splits(config, splits)  # a test set: validation only


def label_map_path(config: DataConfig) -> str | None:
    """The dataset's `label_map.txt` (class names, `regnet_tf.data.format`), or None: the demo data's (generated
    first if needed), `data_dir/label_map.txt` of TFRecords when it exists, a folder's `label_map.txt` next to its
    `split_file` (written by `folder.resolve` into the run) when it exists (TFDS has none)."""
    if config.source == "demo":
        return os.path.join(demo.ensure(config.data_dir), LABEL_MAP)
    if config.source == "tfrecord" and config.data_dir:
        path = os.path.join(config.data_dir, LABEL_MAP)
        return path if tf.io.gfile.exists(path) else None
    if config.source == "folder" and config.split_file:
        path = os.path.join(os.path.dirname(config.split_file), LABEL_MAP)
        return path if os.path.isfile(path) else None
    return None


def _has_images(root, depth):
    """Whether root/<d1>/.../<d_depth>/ holds an image file (stops at the first one)."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return False
    if depth == 0:
        return any(e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS) for e in entries)
    return any(e.is_dir() and _has_images(e.path, depth - 1) for e in sorted(entries, key=lambda e: e.name))


def detect_source(data_dir) -> str:
    """What a directory holds: "tfrecord" (shards train-* / validation-*) or "folder" (images in
    data_dir/<class>/ or data_dir/train/<class>/); otherwise FileNotFoundError describing both layouts and TFDS."""
    data_dir = os.fspath(data_dir)
    if tf.io.gfile.isdir(data_dir):
        if any(tf.io.gfile.glob(os.path.join(data_dir, p)) for p in SPLIT_PATTERNS.values()):
            return "tfrecord"
        if _has_images(data_dir, 1) or any(_has_images(os.path.join(data_dir, s), 1) for s in SPLITS):
            return "folder"
        state = "holds neither layout"
    else:
        state = "is not a directory"
    raise FileNotFoundError(
        f"{data_dir!r} {state}: expected ImageNet-format TFRecords ({data_dir}/train-00000-of-01024 ..., "
        f"{data_dir}/validation-...; --data tfrecord) or {_FOLDER_HELP.format(dir=data_dir)} (--data folder). For "
        f"TFDS imagenet2012 use --data tfds (data_dir: the TFDS data_dir); no data at hand? --data demo")


def list_files(config, split):
    """Sorted TFRecord files of `split`; FileNotFoundError with the pattern and the expected layout if none. With
    `minival_shards` = m > 0, "minival" is the last m training files and "train" the others (`split_minival`)."""
    _check_split(split)
    data_dir = _data_dir(config)
    pattern = os.path.join(data_dir, config.eval_pattern if split == "validation" else config.train_pattern)
    if not tf.io.gfile.isdir(data_dir):
        raise FileNotFoundError(f"data directory {data_dir!r} does not exist (looking for {pattern!r}). "
                                + _IMAGENET_HELP.format(dir=data_dir))
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no files match {pattern!r}. " + _IMAGENET_HELP.format(dir=data_dir))
    return files if split == "validation" else split_minival(files, split, config.minival_shards, pattern)


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


def _class_index(stored, config):
    """int64 class index of a stored label (`config.stored_label_offset` added; no op when it is 0)."""
    stored = tf.cast(stored, tf.int64)
    return stored + config.stored_label_offset if config.stored_label_offset else stored


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
        return parsed[IMAGE_KEY], _class_index(parsed[LABEL_KEY], config)

    return ds, parse


def _tfds_source(config, split, training, input_context):
    tfds = _tfds()
    check_imagenet_v2_splits(config, (split,))

    tfds_split = config.tfds_eval_split if split == "validation" else split
    read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=config.seed,
                                  interleave_cycle_length=config.cycle_length, skip_prefetch=True)
    kwargs = {}
    if config.tfds_manual_dir:
        kwargs = {"download": True, "download_and_prepare_kwargs": {
            "download_config": tfds.download.DownloadConfig(manual_dir=config.tfds_manual_dir)}}
    try:
        ds = tfds.load(config.tfds_name, split=tfds_split, data_dir=config.data_dir, shuffle_files=training,
                       decoders={"image": tfds.decode.SkipDecoding()}, read_config=read_config,
                       **(kwargs or {"download": False}))
    except (AssertionError, FileNotFoundError, tfds.core.registered.DatasetNotFoundError) as e:
        raise FileNotFoundError(
            f"TFDS dataset {config.tfds_name!r} split {tfds_split!r} is not prepared in data_dir={config.data_dir!r} "
            f"({e}). " + (imagenet_v2_prepare_hint(config.imagenet_v2_variant) if config.imagenet_v2_variant else
                          "imagenet2012 needs a manual download: put ILSVRC2012_img_train.tar and "
                          "ILSVRC2012_img_val.tar in a directory and set DataConfig.tfds_manual_dir to it. "
                          + _DEMO_HINT)) from e
    if training and not config.cache:
        ds = ds.repeat()
    name = f"tfds:{config.tfds_name}/{tfds_split}"
    ds = ds.enumerate().map(lambda i, e: {"record": e["image"], "label": e["label"], "file": name, "index": i,
                                          "broken": False})
    return ds, lambda e: (e["record"], _class_index(e["label"], config))


def _folder_source(config, split, training, n, pipeline_id):
    """The images of the folder split's "train" or "validation" (`_folder_split`: held out of the training images,
    no overlap, when there is no validation/ folder)."""
    if split == "minival":
        raise ValueError(_FOLDER_MINIVAL)
    paths, labels = _folder_split(config).paths(split)
    ds = tf.data.Dataset.from_tensor_slices({"record": paths, "label": tf.constant(labels, tf.int64)})
    ds = ds.enumerate().map(lambda i, e: dict(e, file=e["record"], index=i, broken=False))
    if n > 1:
        ds = ds.shard(n, pipeline_id)
    if training and not config.cache:
        ds = ds.repeat()
    return ds, lambda e: (tf.io.read_file(e["record"]), _class_index(e["label"], config))


# ------------------------------------------------------------------------------------------------ pipeline


def _source(config, split, training, input_context):
    """(config, records dataset, parse) for this input pipeline; demo: its TFRecord directory (made on first use)."""
    n = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    if config.source == "demo":
        config = dataclasses.replace(config, source="tfrecord", data_dir=demo.ensure(config.data_dir),
                                     label_offset=LABEL_OFFSET, train_pattern=SPLIT_PATTERNS["train"],
                                     eval_pattern=SPLIT_PATTERNS["validation"])
    if config.source == "tfrecord":
        return (config, *_tfrecord_source(config, split, training, n, pipeline_id))
    if config.source == "tfds":
        return (config, *_tfds_source(config, split, training, input_context))
    return (config, *_folder_source(config, split, training, n, pipeline_id))


def _check(config):
    """A map over batches that stops the pipeline at a broken file or a label out of range, naming the first such
    file and record index (per batch, not per image: one map call per batch instead of one per image). Each message
    is one line starting with DATA_ERROR."""
    lo, hi, offset = 0, config.num_classes, config.stored_label_offset

    def check(images, labels, files, indices, broken):
        bad_label = tf.logical_not(broken) & ((labels < lo) | (labels >= hi))
        i = tf.argmax(tf.cast(broken, tf.int32))
        j = tf.argmax(tf.cast(bad_label, tf.int32))
        read_ok = tf.debugging.Assert(tf.logical_not(tf.reduce_any(broken)), [tf.strings.join([
            DATA_ERROR, "Truncated or corrupted TFRecord file ", files[i], ": cannot read record index ",
            tf.strings.as_string(indices[i]), " (the bytes read do not add up to the file size); re-copy or rebuild "
            "the file (regnet_tf.data.check_records(pattern) lists every damaged file)"])])
        label_ok = tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad_label)), [tf.strings.join([
            DATA_ERROR, "Label out of range: ", tf.strings.as_string(labels[j]), " in file ", files[j],
            " record index ", tf.strings.as_string(indices[j]), f"; expected 0..{hi - 1} after label_offset="
            f"{offset} (ImageNet TFRecords store 1..1000: label_offset=-1; TFDS and image folders are 0-based; "
            f"check num_classes={hi})"])])
        with tf.control_dependencies([read_ok, label_ok]):
            return tf.identity(images), tf.cast(labels, tf.int32)

    return check


def input_pipeline(config: DataConfig, split: str = "train", global_batch_size: int = 128, input_context=None,
                   training: bool | None = None, augment_fn=None):
    """A batched tf.data pipeline of (images, labels) for one input pipeline (host) of `input_context`.

    `split`: "train", "validation" or "minival" (the training shards held out by `minival_shards`). `training`
    (default: split == "train") selects the random training view, shuffling, repeating and drop_remainder. Batches
    hold `input_context.get_per_replica_batch_size(global)` images (use with `strategy.distribute_datasets_from_
    function`). `augment_fn(uint8 image, seed) -> uint8 image` replaces RandAugment (bench: Keras's RandAugment).
    """
    _check_split(split)
    config = _resolved(config)  # a folder's sizes (num_classes for the label check), when not set
    training = split == "train" if training is None else training
    batch = input_context.get_per_replica_batch_size(global_batch_size) if input_context else global_batch_size
    seed = config.seed if config.seed is not None else (0 if config.deterministic else None)
    config = dataclasses.replace(config, seed=seed)

    config, ds, parse = _source(config, split, training, input_context)

    if config.cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
        if config.cache:
            ds = ds.repeat()
    # A per-image seed [2] for the stateless random ops (deterministic when config.seed is set).
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=config.seed).batch(2)))

    augment = augment_fn if augment_fn is not None else (augment_lib.augmenter(config) if training else None)
    view = preprocess.pipeline_view(config, training, augment)  # the pixel budget, decode, crop, resize, normalize
    size = config.image_size

    def decode(e, seed_):
        def real():
            encoded, label = parse(e)
            what = tf.strings.join([e["file"], " record index ", tf.strings.as_string(e["index"])])
            return view(encoded, seed_, what), label

        def placeholder():  # the marker of a broken file: carried to `check`, which stops with its name
            return tf.zeros([size, size, 3], config.dtype if config.normalize else tf.uint8), tf.constant(-1, tf.int64)

        image, label = tf.cond(e["broken"], placeholder, real)
        return image, label, e["file"], e["index"], e["broken"]

    ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    ds = ds.ignore_errors(log_warning=True)  # an image that fails to decode is skipped (logged)
    ds = ds.batch(batch, drop_remainder=training, num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    ds = ds.map(_check(config), num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    if config.mixing and training:
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
    _check_split(split)
    config = _resolved(config)
    _, ds, parse = _source(dataclasses.replace(config, deterministic=True, cache=False), split, False, input_context)
    ds = ds.filter(lambda e: tf.logical_not(e["broken"]))
    return ds.map(lambda e: tuple(x if i == 0 else tf.cast(x, tf.int32) for i, x in enumerate(parse(e))),
                  num_parallel_calls=AUTOTUNE, deterministic=True)
