"""minival (Revisiting ResNets: "20 shards out of 1024"): the last `minival_shards` training shards are held out of
split "train" and read, with the evaluation view, as split "minival"."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from regnet_tf.data import DataConfig, check_data, demo, input_pipeline, list_files, make_example, records
from regnet_tf.data.config import DEMO_SHARDS, DEMO_SIZES
from regnet_tf.data.format import split_minival
from regnet_tf.data.sources import encoded_dataset
from regnet_tf.train import recipe as recipe_lib

SHARDS, PER_SHARD, CLASSES = 8, 3, 24  # record k (0-based over all shards) has class k: labels identify records


def _jpeg(k):
    image = np.full((20 + k % 5, 24, 3), (k * 37) % 256, np.uint8)
    return tf.io.encode_jpeg(image).numpy()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """8 train shards (shard s holds records s * 3 .. s * 3 + 2, stored label k + 1) and 1 validation shard."""
    d = str(tmp_path_factory.mktemp("minival"))
    for split, shards in (("train", SHARDS), ("validation", 1)):
        for s in range(shards):
            path = os.path.join(d, records.shard_name(split, s, shards))
            with tf.io.TFRecordWriter(path) as w:
                for k in range(s * PER_SHARD, (s + 1) * PER_SHARD):
                    w.write(make_example(_jpeg(k), k + 1, 20 + k % 5, 24))
    return d


def _config(data_dir, **kw):
    kw = {"data_dir": data_dir, "num_classes": CLASSES, "num_train_examples": SHARDS * PER_SHARD,
          "num_eval_examples": PER_SHARD, "image_size": 16, **kw}
    return DataConfig(**kw)


def _labels(ds):
    return sorted(int(v) for _, y in ds for v in y.numpy())


def test_train_and_minival_files_are_disjoint_and_cover_the_shards(data_dir):
    config = _config(data_dir, minival_shards=2)
    everything = list_files(_config(data_dir), "train")
    train, minival = list_files(config, "train"), list_files(config, "minival")
    assert len(everything) == SHARDS and not set(train) & set(minival)
    assert sorted(train + minival) == everything
    assert minival == everything[-2:]  # the LAST shards of the sorted list
    assert list_files(config, "validation") == list_files(_config(data_dir), "validation")
    check_data(config, ("train", "validation", "minival"))


def test_minival_reads_exactly_the_last_shards_with_the_eval_view(data_dir):
    config = _config(data_dir, minival_shards=2)
    held_out = list(range((SHARDS - 2) * PER_SHARD, SHARDS * PER_SHARD))
    minival = input_pipeline(config, "minival", global_batch_size=4)
    assert _labels(minival) == held_out  # once each, the partial batch kept: evaluation
    # the batch shape in file order (without `deterministic`, the partial last batch of 2 may come out first)
    images = next(iter(input_pipeline(dataclasses.replace(config, deterministic=True), "minival", 4)))[0]
    assert images.shape == (4, 16, 16, 3)
    # the same crop/resize as validation: an image reads the same through both evaluation splits
    first = os.path.basename(list_files(config, "minival")[0])
    a = next(iter(input_pipeline(_config(data_dir, eval_pattern=first, deterministic=True), "validation", 1)))[0]
    b = next(iter(input_pipeline(dataclasses.replace(config, deterministic=True), "minival", 1)))[0]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    # training never sees them (one pass of the repeated stream: every other record, no held-out one)
    train = input_pipeline(config, "train", global_batch_size=(SHARDS - 2) * PER_SHARD, training=False)
    assert _labels(train) == list(range((SHARDS - 2) * PER_SHARD))
    shuffled = dataclasses.replace(config, shuffle_buffer=30, seed=1)
    seen = {int(v) for _, y in input_pipeline(shuffled, "train", 6).take(12) for v in y.numpy()}
    assert seen == set(range((SHARDS - 2) * PER_SHARD))
    encoded = sorted(int(y) for _, y in encoded_dataset(config, "minival"))
    assert encoded == held_out


def test_sizes_and_steps_per_epoch(data_dir):
    config = _config(data_dir, minival_shards=2)
    assert config.num_minival_examples == 1  # estimated for 1024 shards: round(24 * 2 / 1024) = 0, at least 1
    exact = _config(data_dir, minival_shards=2, num_minival_examples=2 * PER_SHARD)
    assert exact.num_trained_examples == (SHARDS - 2) * PER_SHARD
    assert exact.num_examples("minival") == 2 * PER_SHARD and exact.num_examples("validation") == PER_SHARD
    # ImageNet: 20 of 1024 shards -> round(1,281,167 * 20 / 1024) = 25,023 held out
    imagenet = DataConfig(data_dir="/data", minival_shards=20)
    assert imagenet.num_minival_examples == 25023 and imagenet.num_trained_examples == 1_281_167 - 25023
    # the demo data: its own shard count (8): 2 of 8 shards of 5,000 images
    demo = DataConfig(source="demo", minival_shards=2)
    assert demo.num_minival_examples == DEMO_SIZES.num_train_examples * 2 // DEMO_SHARDS[0] == 1250
    r = recipe_lib.Recipe(data=imagenet)
    r0 = recipe_lib.Recipe(data=DataConfig(data_dir="/data"))
    batch = r.train.global_batch_size
    assert r.steps_per_epoch() == (1_281_167 - 25023) // batch < r0.steps_per_epoch() == 1_281_167 // batch


def test_demo_source(tmp_path, monkeypatch):
    """The demo data is TFRecord shards too (DEMO_SHARDS): a small copy (80 images, written round-robin into 8
    shards) stands in for the 5,000-image default, through the demo source's own path."""
    small = demo.generate(str(tmp_path / "demo"), num_train=80, num_val=10)
    monkeypatch.setattr(demo, "ensure", lambda data_dir=None, **kw: small)
    config = DataConfig(source="demo", image_size=16, num_train_examples=80, minival_shards=2)
    assert len(list_files(DataConfig(data_dir=small), "train")) == DEMO_SHARDS[0] == 8
    assert config.num_minival_examples == 20 and config.num_trained_examples == 60  # estimate: 2 of 8 shards
    expected = sorted(k % 10 for k in range(80) if k % 8 >= 6)  # image k: shard k % 8, class k % 10
    assert _labels(input_pipeline(config, "minival", 8)) == expected
    train = input_pipeline(config, "train", 60, training=False)
    assert _labels(train) == sorted(k % 10 for k in range(80) if k % 8 < 6)


def test_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"minival_shards=8 needs at least 9 training files.*matches 8"):
        list_files(_config(data_dir, minival_shards=8), "train")
    with pytest.raises(ValueError, match=r"needs at least 9"):
        check_data(_config(data_dir, minival_shards=8))
    for source in ("folder", "tfds"):
        with pytest.raises(ValueError, match="minival needs sharded TFRecords") as e:
            DataConfig(source=source, data_dir=str(tmp_path), minival_shards=2)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="demo data has 8"):
        DataConfig(source="demo", minival_shards=8)
    with pytest.raises(ValueError, match="needs data.minival_shards > 0"):
        list_files(_config(data_dir), "minival")
    with pytest.raises(ValueError, match="needs data.minival_shards > 0"):
        _config(data_dir).num_examples("minival")
    with pytest.raises(ValueError, match="num_minival_examples=5 needs minival_shards > 0"):
        _config(data_dir, num_minival_examples=5)
    with pytest.raises(ValueError, match="split must be one of"):
        input_pipeline(_config(data_dir), "test")
    assert split_minival(["b", "a", "c"], "train", 1) == ["a", "b"]
