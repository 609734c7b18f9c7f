"""tf.data input pipelines for ImageNet-style classification.

    from regnet_tf.data import DataConfig, input_pipeline, demo
    ds = input_pipeline(DataConfig(data_dir="/data/imagenet"), "train", global_batch_size=256)
    ds = input_pipeline(demo.config(image_size=64), "validation", global_batch_size=100)

Modules: `config` (DataConfig and its choices; no TensorFlow), `format` (the data-format facts: feature names,
shard names, label map, accepted image formats, ImageNet mean/std; no TensorFlow), `sources` (the readers, the
pipeline, `check_data`, `detect_source`), `preprocess` (train/eval views), `records` (writing and checking
standard-format TFRecords), `demo` (the generated demo data), `bench` (input throughput). RandAugment (`augment`)
and MixUp/CutMix (`mixup`) plug into the pipeline through DataConfig. See docs/DATA.md.

Importing this package imports no TensorFlow: each name below loads its module on first use, so
`regnet_tf.data.config` and `regnet_tf.data.format` stay TensorFlow-free.
"""

import importlib

_NAMES = {  # public name -> module that defines it
    "DataConfig": "config",
    "input_pipeline": "sources", "list_files": "sources", "check_data": "sources", "detect_source": "sources",
    "eval_image": "preprocess", "normalize": "preprocess", "train_image": "preprocess",
    "check_records": "records", "folder_to_tfrecords": "records", "make_example": "records",
    "write_shards": "records",
}
_MODULES = ("augment", "bench", "config", "demo", "folder", "format", "mixup", "preprocess", "records", "sources")

__all__ = sorted([*_NAMES, "demo", "preprocess", "records"])


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_NAMES, *_MODULES})
