"""tf.data input pipelines for ImageNet-style classification (imports TensorFlow).

    from regnet_tf.data import DataConfig, input_pipeline, demo
    ds = input_pipeline(DataConfig(data_dir="/data/imagenet"), "train", global_batch_size=256)
    ds = input_pipeline(demo.config(image_size=64), "validation", global_batch_size=100)

Modules: `sources` (DataConfig, the readers and the pipeline), `preprocess` (train/eval views), `records`
(writing and checking standard-format TFRecords), `demo` (the generated demo data), `bench` (input throughput).
RandAugment (`augment`) and MixUp/CutMix (`mixup`) plug into the pipeline through DataConfig. See docs/DATA.md.
"""

from regnet_tf.data import demo, preprocess, records
from regnet_tf.data.preprocess import eval_image, normalize, train_image
from regnet_tf.data.records import check_records, folder_to_tfrecords, make_example, write_shards
from regnet_tf.data.sources import DataConfig, input_pipeline, list_files

__all__ = [
    "DataConfig", "check_records", "demo", "eval_image", "folder_to_tfrecords", "input_pipeline", "list_files",
    "make_example", "normalize", "preprocess", "records", "train_image", "write_shards",
]
