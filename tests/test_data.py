"""regnet_tf.data: sources, preprocessing, sharding, determinism, bad input, demo data, tools (small images only)."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from regnet_tf.data import DataConfig, check_records, demo, input_pipeline, make_example, preprocess, records
from regnet_tf.data.format import check_pixel_budget, read_label_map
from regnet_tf.data.sources import user_message

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
LO = (0 - 0.485 * 255) / (0.229 * 255)  # the normalized range of 0..255 over the three channels
HI = (255 - 0.406 * 255) / (0.225 * 255)


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    field = tf.image.resize(rng.uniform(0, 255, (1, 4, 4, 3)), [h, w])[0].numpy()
    return np.clip(field + rng.normal(0, 5, field.shape), 0, 255).astype(np.uint8)


def _jpeg(h, w, seed=0):
    return tf.io.encode_jpeg(_image(h, w, seed), quality=95).numpy()


def _write(path, examples):
    with tf.io.TFRecordWriter(path) as w:
        for e in examples:
            w.write(e)
    return path


def _records(directory, split="train", shards=4, per_shard=5, label=lambda k: k + 1, size=(40, 72)):
    """`shards` files of `per_shard` JPEG records; record k (global) has stored label label(k)."""
    os.makedirs(directory, exist_ok=True)
    k = 0
    for s in range(shards):
        examples = []
        for _ in range(per_shard):
            h, w = np.random.default_rng(k).integers(size[0], size[1], 2)
            examples.append(make_example(_jpeg(int(h), int(w), k), label(k), h, w))
            k += 1
        _write(os.path.join(directory, records.shard_name(split, s, shards)), examples)
    return directory


def _labels(ds):
    return sorted(int(v) for _, y in ds for v in y.numpy())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("records"))
    _records(d, "train")
    _records(d, "validation", shards=2, per_shard=4)
    return d


def _start(script, *args):
    return subprocess.Popen([sys.executable, os.path.join(REPO, "launch", script), *args], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def _image_folder(root):
    """root/<class>/: cat (2 JPEG + 1 PNG), dog (2 JPEG), and one corrupt file in dog."""
    for name, count in (("cat", 3), ("dog", 2)):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(count):
            image = _image(30 + i, 40, seed=i)
            if name == "cat" and i == 2:
                data, ext = tf.io.encode_png(image).numpy(), "png"
            else:
                data, ext = tf.io.encode_jpeg(image).numpy(), "jpg"
            with open(os.path.join(root, name, f"{i}.{ext}"), "wb") as f:
                f.write(data)
    with open(os.path.join(root, "dog", "broken.jpg"), "wb") as f:
        f.write(_jpeg(40, 40)[:200])  # truncated JPEG
    return root


# ------------------------------------------------------------------------------------------- preprocessing


def test_normalization_equals_preprocess_input():
    from regnet_tf import applications

    x = np.random.default_rng(0).uniform(0, 255, (5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(preprocess.normalize(x).numpy(), applications.preprocess_input(x), atol=1e-5)
    assert preprocess.normalize(x, "bfloat16").dtype == tf.bfloat16


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_pipeline_shapes_dtypes_ranges(data_dir, dtype):
    config = DataConfig(data_dir=data_dir, image_size=32, dtype=dtype, shuffle_buffer=20)
    for split, batch in (("train", 4), ("validation", 3)):
        images, labels = next(iter(input_pipeline(config, split, batch)))
        assert images.shape == (batch, 32, 32, 3) and images.dtype == dtype
        assert labels.shape == (batch,) and labels.dtype == tf.int32
        x = images.numpy().astype(np.float32)
        assert LO - 0.02 <= x.min() and x.max() <= HI + 0.02 and x.std() > 0.05
        assert all(0 <= v < 1000 for v in labels.numpy())
    if dtype != "float32":
        return  # what follows does not depend on the dtype
    assert _labels(input_pipeline(config, "validation", 3)) == list(range(8))  # 1..8 stored, offset -1
    raw = next(iter(input_pipeline(DataConfig(data_dir=data_dir, image_size=32, normalize=False), "train", 2)))[0]
    assert raw.dtype == tf.uint8 and raw.numpy().max() > 100


def test_crop_statistics():
    shape = tf.constant([300, 400])
    windows = tf.data.Dataset.range(2000).map(
        lambda i: preprocess.inception_crop_window(shape, tf.stack([i, tf.constant(7, tf.int64)])))
    w = np.array(list(windows.batch(2000).as_numpy_iterator())[0])
    assert (w[:, 0] >= 0).all() and (w[:, 1] >= 0).all()
    assert (w[:, 0] + w[:, 2] <= 300).all() and (w[:, 1] + w[:, 3] <= 400).all()
    center = preprocess.center_crop_window(shape).numpy()
    fallback = (w == center).all(axis=1)
    assert fallback.mean() < 0.1  # a 300x400 image fits a window in 10 attempts almost always
    w = w[~fallback]
    area, aspect = w[:, 2] * w[:, 3] / (300 * 400), w[:, 3] / w[:, 2]
    assert area.min() >= 0.08 - 0.01 and area.max() <= 1.0
    assert area.min() < 0.12 and area.max() > 0.9 and 0.3 < np.median(area) < 0.7
    assert aspect.min() >= 0.75 - 0.05 and aspect.max() <= 4 / 3 + 0.05
    assert aspect.min() < 0.8 and aspect.max() > 1.25 and 0.3 < (aspect < 1).mean() < 0.7


def test_crop_falls_back_to_center_crop():
    # No 3/4..4/3 window with >= 8% of the area fits a 10 x 1000 image: center crop of 0.875 x 10 -> 8.
    encoded = _jpeg(10, 1000)
    window = preprocess.inception_crop_window(tf.constant([10, 1000]), tf.constant([1, 2]))
    assert window.numpy().tolist() == [1, 496, 8, 8]
    image = preprocess.decode_window(tf.constant(encoded), lambda s: window)
    assert image.shape == (8, 8, 3)


def test_eval_crop_geometry():
    # A lossless (PNG) image whose pixels encode their coordinates: the crop must be exactly the window.
    yy, xx = np.mgrid[0:300, 0:400]
    image = np.stack([yy % 256, xx % 256, (yy // 256) * 16 + xx // 256], -1).astype(np.uint8)
    png = tf.io.encode_png(image)
    assert preprocess.center_crop_window(tf.constant([300, 400])).numpy().tolist() == [19, 69, 262, 262]
    out = preprocess.eval_image(png, size=262, normalized=False).numpy()
    np.testing.assert_array_equal(out, image[19:19 + 262, 69:69 + 262])
    # The JPEG path decodes only the window (decode_and_crop_jpeg): same pixels as a full decode + slice.
    jpeg = tf.constant(_jpeg(300, 400))
    full = tf.image.decode_jpeg(jpeg).numpy()
    out = preprocess.eval_image(jpeg, size=262, normalized=False).numpy()
    assert np.abs(out.astype(int) - full[19:281, 69:331]).max() <= 2
    # pycls: short side -> 256 (long side floored: 341), then a centered 224 crop at ceil((256-224)/2) = 16, 59.
    assert preprocess.resize_short_shape(tf.constant([300, 400]), 256).numpy().tolist() == [256, 341]
    out = preprocess.eval_image(png, size=224, mode="resize_short", normalized=False).numpy()
    ref = preprocess.to_uint8(tf.image.resize(image, [256, 341])).numpy()[16:240, 59:283]
    np.testing.assert_array_equal(out, ref)


def test_png_takes_the_general_path_and_bicubic_resize():
    png = tf.io.encode_png(_image(50, 60))
    image = preprocess.train_image(png, tf.constant([3, 4]), size=16, normalized=False)
    assert image.shape == (16, 16, 3) and image.dtype == tf.uint8
    cubic = preprocess.train_image(png, tf.constant([3, 4]), size=16, resize_method="bicubic", normalized=False)
    assert cubic.dtype == tf.uint8 and 0 < np.abs(cubic.numpy().astype(int) - image.numpy()).max() < 64


def test_fast_normalize_equals_broadcasting():
    scale = tf.constant([1.0 / (255.0 * s) for s in preprocess.STD_RGB])
    offset = tf.constant([-m / s for m, s in zip(preprocess.MEAN_RGB, preprocess.STD_RGB)])
    rng = np.random.default_rng(1)
    for shape in ((7, 5, 3), (2, 9, 4, 3), (1, 1, 3)):
        for x in (rng.integers(0, 256, shape).astype(np.uint8), rng.uniform(0, 255, shape).astype(np.float32)):
            expected = tf.cast(x, tf.float32) * scale + offset  # the plain per-channel broadcast
            for dtype in preprocess.DTYPES:
                got = preprocess.normalize(x, dtype)
                assert got.shape == shape and got.dtype == dtype
                np.testing.assert_array_equal(got.numpy(), tf.cast(expected, dtype).numpy())


def test_resize_from_float_equals_the_uint8_kernel():
    rng = np.random.default_rng(2)
    for method in preprocess.RESIZE_METHODS:
        for h, w, size in ((37, 53, 16), (300, 410, 224), (20, 20, 48)):
            x = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            np.testing.assert_array_equal(preprocess.resize(x, [size, size], method).numpy(),
                                          tf.image.resize(x, [size, size], method=method).numpy())


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
def test_train_view_equals_the_reference_order(method):
    """Resize -> round to uint8 -> flip on uint8 (the pipeline) == resize -> flip float -> round (the reference order),
    and the normalized view is the unrounded float resize, normalized."""
    encoded = tf.constant(_jpeg(60, 80, 4))
    flip = tf.image.stateless_random_flip_left_right
    for seed in ([1, 2], [3, 4], [5, 9]):
        seeds = tf.random.experimental.stateless_split(tf.constant(seed, tf.int64), 3)
        window = preprocess.inception_crop_window(tf.image.extract_jpeg_shape(encoded)[:2], seeds[0])
        crop = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
        reference = flip(tf.image.resize(crop, [24, 24], method=method), seeds[1])
        rounded = preprocess.to_uint8(reference, clip=method != "bilinear")
        kwargs = dict(size=24, resize_method=method)
        np.testing.assert_array_equal(preprocess.train_pixels(encoded, seed, **kwargs).numpy(), rounded.numpy())
        np.testing.assert_array_equal(preprocess.train_image(encoded, seed, normalized=False, **kwargs).numpy(),
                                      rounded.numpy())
        np.testing.assert_array_equal(preprocess.train_image(encoded, seed, **kwargs).numpy(),
                                      preprocess.normalize(reference).numpy())
        np.testing.assert_array_equal(preprocess.train_pixels(encoded, seed, quantize=False, **kwargs).numpy(),
                                      reference.numpy())
        # augment sees the rounded, flipped image; its output is normalized
        augmented = preprocess.train_image(encoded, seed, augment=lambda x, s: 255 - x, **kwargs)
        np.testing.assert_array_equal(augmented.numpy(), preprocess.normalize(255 - rounded).numpy())


def _cmyk_jpeg(cmyk):
    """A CMYK JPEG (Adobe APP14, as Photoshop writes them; ImageNet has a few) of a uint8 [H, W, 4] array."""
    image_module = pytest.importorskip("PIL.Image")
    import io

    buffer = io.BytesIO()
    image_module.fromarray(cmyk, "CMYK").save(buffer, "JPEG", quality=100)
    return buffer.getvalue()


# (CMYK, RGB): cyan, magenta + yellow = red, 50% black = grey, black, yellow
CMYK_TO_RGB = (((255, 0, 0, 0), (0, 255, 255)), ((0, 255, 255, 0), (255, 0, 0)), ((0, 0, 0, 128), (127, 127, 127)),
               ((0, 0, 0, 255), (0, 0, 0)), ((0, 0, 255, 0), (255, 255, 0)))


def test_cmyk_jpeg_decodes_to_rgb(tmp_path):
    patches = np.concatenate([np.tile(np.array(c, np.uint8), (32, 16, 1)) for c, _ in CMYK_TO_RGB], 1)
    expected = np.array([rgb for _, rgb in CMYK_TO_RGB])
    encoded = _cmyk_jpeg(patches)
    assert tf.io.is_jpeg(encoded)  # so the train path crops it with decode_and_crop_jpeg
    crop = preprocess.decode_window(tf.constant(encoded), lambda shape: tf.constant([4, 4, 24, 72]))
    assert crop.shape == (24, 72, 3)
    np.testing.assert_allclose(crop.numpy()[12, [4, 20, 36, 52, 68]], expected, atol=3)
    # Through the pipeline (TFRecords): train view (Inception crop + decode_and_crop_jpeg) and eval view (center
    # crop), float32 normalized and uint8, one single-colour CMYK image per colour.
    examples = [make_example(_cmyk_jpeg(np.tile(np.array(c, np.uint8), (40, 56, 1))), k + 1, 40, 56)
                for k, (c, _) in enumerate(CMYK_TO_RGB)]
    _write(str(tmp_path / "train-00000-of-00001"), examples)
    _write(str(tmp_path / "validation-00000-of-00001"), examples)
    for normalize in (False, True):
        config = DataConfig(data_dir=str(tmp_path), image_size=16, normalize=normalize, shuffle_buffer=5)
        for split in ("train", "validation"):
            images, labels = next(iter(input_pipeline(config, split, 5)))
            assert images.shape == (5, 16, 16, 3), split
            rgb = images.numpy().astype(np.float32)
            if normalize:
                rgb = rgb * np.float32(preprocess.STD_RGB) * 255 + np.float32(preprocess.MEAN_RGB) * 255
            colours = np.broadcast_to(expected[labels.numpy()][:, None, None], rgb.shape)
            np.testing.assert_allclose(rgb, colours, atol=3, err_msg=f"{split} normalize={normalize}")


def test_grayscale_jpeg_and_png_with_alpha_come_out_rgb(tmp_path):
    gray = _image(30, 40, 5)[..., :1]
    rgba = np.concatenate([_image(30, 40, 6), np.full((30, 40, 1), 77, np.uint8)], -1)
    gray_jpeg = tf.io.encode_jpeg(gray, quality=100).numpy()
    cases = {"gray jpeg": (gray_jpeg, np.repeat(tf.io.decode_jpeg(gray_jpeg).numpy(), 3, -1)),  # grey repeated
             "rgba png": (tf.io.encode_png(rgba).numpy(), rgba[..., :3]),  # alpha dropped
             "grey + alpha png": (tf.io.encode_png(np.concatenate([gray, rgba[..., 3:]], -1)).numpy(),
                                  np.repeat(gray, 3, -1))}
    for name, (encoded, pixels) in cases.items():
        window = preprocess.decode_window(tf.constant(encoded), lambda shape: tf.constant([2, 3, 20, 30]))
        assert window.shape == (20, 30, 3), name
        np.testing.assert_array_equal(window.numpy(), pixels[2:22, 3:33], err_msg=name)
        eval_view = preprocess.eval_image(tf.constant(encoded), 16, normalized=False)
        train_view = preprocess.train_image(tf.constant(encoded), tf.constant([1, 2]), 16)
        assert eval_view.shape == train_view.shape == (16, 16, 3), name
    examples = [make_example(encoded, k + 1, 30, 40) for k, (encoded, _) in enumerate(cases.values())]
    _write(str(tmp_path / "train-00000-of-00001"), examples)
    _write(str(tmp_path / "validation-00000-of-00001"), examples)
    config = DataConfig(data_dir=str(tmp_path), image_size=16, shuffle_buffer=3)
    for split in ("train", "validation"):
        images, labels = next(iter(input_pipeline(config, split, 3)))
        assert images.shape == (3, 16, 16, 3) and set(labels.numpy().tolist()) <= {0, 1, 2}
    assert _labels(input_pipeline(config, "validation", 3)) == [0, 1, 2]  # none skipped


def test_cache(data_dir):
    config = DataConfig(data_dir=data_dir, image_size=16, cache=True, shuffle_buffer=20)
    val = input_pipeline(config, "validation", 3)
    assert _labels(val) == _labels(val) == list(range(8))  # a second pass reads the cache
    assert set(_labels(input_pipeline(config, "train", 4).take(10))) <= set(range(20))


# ------------------------------------------------------------------------------ determinism and sharding


def test_deterministic_with_seed(data_dir):
    def first(seed):
        config = DataConfig(data_dir=data_dir, image_size=24, deterministic=True, seed=seed, shuffle_buffer=20)
        return [(x.numpy(), y.numpy()) for x, y in input_pipeline(config, "train", 4).take(3)]

    a, b, c = first(3), first(3), first(4)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


@pytest.mark.parametrize("shards,per_shard", [(4, 5), (1, 9)])  # files first; records when files are too few
def test_two_input_pipelines_get_disjoint_complementary_records(tmp_path, shards, per_shard):
    d = _records(str(tmp_path), "validation", shards, per_shard, size=(24, 32))
    config = DataConfig(data_dir=d, image_size=16)
    seen = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
        ds = input_pipeline(config, "validation", global_batch_size=4, input_context=ctx)
        assert next(iter(ds))[0].shape[0] == 2  # per-replica batch
        seen.append(_labels(ds))
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(shards * per_shard))
    # Training streams too: each pipeline sees only its own records.
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    train = input_pipeline(DataConfig(data_dir=d, image_size=16, train_pattern="validation-*", shuffle_buffer=8),
                           "train", 4, input_context=ctx)
    assert set(_labels(train.take(8))) <= set(seen[1])


def test_tfds_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6):
        config = DataConfig(source="tfds", image_size=32)
        images, labels = next(iter(input_pipeline(config, "train", 4)))
        assert images.shape == (4, 32, 32, 3) and images.dtype == tf.float32
        assert ((labels.numpy() >= 0) & (labels.numpy() < 1000)).all()  # TFDS labels: 0-based, no offset
        assert len(_labels(input_pipeline(config, "validation", 4))) == 6


# ------------------------------------------------------------------------------------- folders and tools


def test_folder_to_tfrecords_round_trip(tmp_path):
    folder = _image_folder(str(tmp_path / "folder"))
    out = str(tmp_path / "records")
    result = records.folder_to_tfrecords(folder, out, num_shards=2, workers=2, progress=False, log=lambda m: None)
    assert result["written"] == 5 and result["skipped"] == 1 and "broken.jpg" in result["errors"][0]
    assert result["classes"] == ["cat", "dog"]
    assert read_label_map(out) == {0: "cat", 1: "dog"}
    assert open(os.path.join(out, "label_map.txt")).read() == "1 cat\n2 dog\n"  # stored labels, 1-based
    assert sorted(os.listdir(out)) == ["label_map.txt", "train-00000-of-00002", "train-00001-of-00002"]
    stored = {}
    for r in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(os.path.join(out, "train-*")))):
        e = tf.train.Example.FromString(r.numpy()).features.feature
        stored[e["image/filename"].bytes_list.value[0].decode()] = (
            e["image/encoded"].bytes_list.value[0], e["image/class/label"].int64_list.value[0],
            e["image/format"].bytes_list.value[0])
    with open(os.path.join(folder, "cat", "2.png"), "rb") as f:
        assert stored["2.png"] == (f.read(), 1, b"PNG")  # bytes kept; label 1-based
    config = DataConfig(data_dir=out, num_classes=2, image_size=16, eval_pattern="train-*")
    assert _labels(input_pipeline(config, "validation", 2)) == [0, 0, 0, 1, 1]
    # The folder itself is a source too (the corrupt file is skipped at read time); without a validation/ folder
    # its validation split is held out of training (regnet_tf.data.folder): together they are every image.
    folder_config = DataConfig(source="folder", data_dir=folder, num_classes=2, image_size=16)
    assert sorted(_labels(input_pipeline(folder_config, "train", 2, training=False))
                  + _labels(input_pipeline(folder_config, "validation", 2))) == [0, 0, 0, 1, 1]


def test_build_tfrecords_cli(tmp_path):
    folder = _image_folder(str(tmp_path / "folder"))
    root = str(tmp_path)
    code, out, err = _finish(_start("build_tfrecords.py", "--input", folder, "--output", str(tmp_path / "built"),
                                    "--shards", "2", "--workers", "2"))
    assert code == 0, err[-2000:]
    assert "wrote 5 images of 2 classes into 2 shards" in out and "skipped 1 corrupt" in out
    assert "broken.jpg" in err and "6/6" in err  # the progress bar reached the end (6 files, 1 skipped)
    assert os.path.exists(os.path.join(root, "built", "train-00001-of-00002"))


def test_benchmark_input_cli():
    # the command's flags and tables, not its numbers: the shortest timings (each variant and stage still runs)
    code, out, err = _finish(_start("benchmark_input.py", "--generate", "6", "--min_size", "40", "--max_size", "64",
                                    "--image_size", "32", "--batch", "2", "--seconds", "0.05", "--warmup", "0",
                                    "--stages"))
    assert code == 0, err[-2000:]
    assert "generating 6 photo-like JPEGs" in err
    stages = out.split("stage (cumulative)")[1].splitlines()[2:]
    assert [line[:32].strip() for line in stages] == [
        "crop window (JPEG header)", "+ decode the window", "+ resize", "+ round, flip (uint8 view)",
        "+ normalize (float32 view)", "+ RandAugment(2, 15)"]
    cumulative = [float(line.split()[-3]) for line in stages]
    assert all(c > 0 for c in cumulative)
    out = out.split("stage (cumulative)")[0].rstrip()
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("pipeline"))
    rows = lines[header + 2:]
    assert rows[0].startswith("no augmentation") and rows[-1].startswith("keras.layers.RandAugment")
    assert "1.00x" in rows[0] and float(rows[0].split()[2]) > 0
    assert any(r.startswith("RandAugment (regnet_tf)") for r in rows)


# ----------------------------------------------------------------------------------------------- bad input


def test_missing_directory_and_empty_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        input_pipeline(DataConfig(data_dir=str(tmp_path / "nope")), "train", 2)
    assert "train-*" in str(e.value) and "train-00000-of-01024" in str(e.value) and "demo" in str(e.value)
    with pytest.raises(FileNotFoundError, match="no files match") as e:
        input_pipeline(DataConfig(data_dir=str(tmp_path)), "validation", 2)
    assert os.path.join(str(tmp_path), "validation-*") in str(e.value) and "image/class/label" in str(e.value)
    with pytest.raises(FileNotFoundError, match="data_dir is not set"):
        input_pipeline(DataConfig(), "train", 2)
    with pytest.raises(FileNotFoundError, match="root/<class name>"):
        input_pipeline(DataConfig(source="folder", data_dir=str(tmp_path)), "train", 2)


def test_tfds_not_prepared(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(FileNotFoundError, match="is not prepared") as e:
        input_pipeline(DataConfig(source="tfds", data_dir=str(tmp_path)), "train", 2)
    assert "tfds_manual_dir" in str(e.value) and "ILSVRC2012_img_train.tar" in str(e.value)


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    good = [make_example(_jpeg(30, 30, k), k + 1, 30, 30) for k in range(6)]
    bad = [make_example(_jpeg(30, 30)[:150], 7, 30, 30), make_example(b"not an image", 8, 30, 30), b"garbage"]
    path = _write(str(tmp_path / "validation-00000-of-00001"), good[:3] + bad + good[3:])
    config = DataConfig(data_dir=str(tmp_path), image_size=16)
    assert _labels(input_pipeline(config, "validation", 4)) == [0, 1, 2, 3, 4, 5]
    train = input_pipeline(DataConfig(data_dir=str(tmp_path), image_size=16, train_pattern="validation-*",
                                      shuffle_buffer=9), "train", 4)
    assert set(_labels(train.take(6))) == set(range(6))  # training goes on too
    report = check_records(os.path.join(str(tmp_path), "validation-*"), label_range=(0, 1000))
    assert report["records"] == 9 and report["ok"] == 6 and not report["truncated"]
    assert [(f, i) for f, i, _ in report["corrupt"]] == [(path, 3), (path, 4), (path, 5)]


def test_images_over_the_pixel_budget_are_skipped_and_counted(tmp_path):
    """max_pixels: a 40 x 40 image (1600 pixels) over a budget of 1000 is skipped by the training and evaluation
    views and listed by check_records with file, record index and declared size; 0 turns the check off."""
    sizes = [(30, 30), (40, 40), (20, 30), (40, 40)]
    examples = [make_example(_jpeg(h, w, k), k + 1, h, w) for k, (h, w) in enumerate(sizes)]
    examples[3] = make_example(tf.io.encode_png(_image(40, 40, 3)).numpy(), 4, 40, 40)
    path = _write(str(tmp_path / "validation-00000-of-00001"), examples)
    small = DataConfig(data_dir=str(tmp_path), image_size=16, max_pixels=1000, train_pattern="validation-*")
    assert _labels(input_pipeline(small, "validation", 4)) == [0, 2]
    assert set(_labels(input_pipeline(small, "train", 2).take(4))) == {0, 2}
    assert _labels(input_pipeline(dataclasses.replace(small, max_pixels=0), "validation", 4)) == [0, 1, 2, 3]
    assert _labels(input_pipeline(DataConfig(data_dir=str(tmp_path), image_size=16), "validation", 4)) == [0, 1, 2, 3]
    report = check_records(os.path.join(str(tmp_path), "validation-*"), max_pixels=1000)
    assert report["records"] == 4 and report["ok"] == 2 and not report["corrupt"]
    assert [(f, i) for f, i, _ in report["over_budget"]] == [(path, 1), (path, 3)]
    assert report["over_budget"][0][2] == (f"{path} record index 1: the image declares 40 x 40 pixels = 1600 pixels, "
                                           "over the limit of 1000 (max_pixels)")
    assert check_records(os.path.join(str(tmp_path), "validation-*"), max_pixels=0)["ok"] == 4
    jpeg = _jpeg(40, 40)  # the pipeline's JPEG fast path: the general check's message, the bytes when within
    for check in (preprocess.within_pixel_budget, check_pixel_budget):
        with pytest.raises(tf.errors.InvalidArgumentError, match="x: the image declares 40 x 40 pixels = 1600 pixels"
                                                                 ", over the limit of 1000 "):
            check(tf.constant(jpeg), 1000, "x")
    assert preprocess.within_pixel_budget(tf.constant(jpeg), 1600, "x").numpy() == jpeg
    with pytest.raises(ValueError, match="max_pixels must be >= 0"):
        DataConfig(max_pixels=-1)


def test_build_tfrecords_max_pixels(tmp_path):
    """--max_pixels: images declaring more pixels are skipped, named and counted apart from the corrupt ones."""
    folder = _image_folder(str(tmp_path / "folder"))  # 30 x 40, 31 x 40, 32 x 40 (cat); 30 x 40, 31 x 40 (dog)
    result = records.folder_to_tfrecords(folder, str(tmp_path / "lib"), 1, progress=False, log=lambda m: None,
                                         max_pixels=1220)
    # the truncated 40 x 40 JPEG too: its header is read, not its pixels
    assert result["written"] == 2 and result["skipped"] == 4 and len(result["over_budget"]) == 4
    assert sorted(os.path.relpath(e.split(":")[0], folder) for e in result["over_budget"]) == [
        os.path.join("cat", "1.jpg"), os.path.join("cat", "2.png"), os.path.join("dog", "1.jpg"),
        os.path.join("dog", "broken.jpg")]
    assert result["over_budget"][0].endswith("over the limit of 1220 (max_pixels)")
    code, out, err = _finish(_start("build_tfrecords.py", "--input", folder, "--output", str(tmp_path / "cli"),
                                    "--shards", "1", "--max_pixels", "1220"))
    assert code == 0, err[-2000:]
    assert "wrote 2 images" in out
    assert "skipped 0 corrupt images and 4 over the pixel budget (--max_pixels=1220)" in out
    png = os.path.join(folder, "cat", "2.png")
    assert f"skipped over-budget image {png}: the image declares 40 x 32 pixels = 1280 pixels, over the limit" in err
    code, _, err = _finish(_start("build_tfrecords.py", "--input", folder, "--output", str(tmp_path / "x"),
                                  "--max_pixels", "-1"))
    assert code != 0 and "--max_pixels must be >= 0" in err


def test_truncated_tfrecord_file_stops_with_file_and_index(tmp_path):
    examples = [make_example(_jpeg(30, 30, k), k + 1, 30, 30) for k in range(5)]
    path = _write(str(tmp_path / "train-00001-of-00002"), examples)
    _write(str(tmp_path / "train-00000-of-00002"), examples)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-40])  # the last record is cut
    config = DataConfig(data_dir=str(tmp_path), image_size=16, eval_pattern="train-*", shuffle_buffer=4)
    for split in ("validation", "train"):
        with pytest.raises(tf.errors.InvalidArgumentError) as e:
            for _ in input_pipeline(config, split, 2).take(50):
                pass
        message = str(e.value)
        assert "Truncated or corrupted TFRecord file" in message and path in message
        assert "record index" in message and "4" in message.split("record index")[1][:40]
        line = user_message(e.value)  # the one self-contained line a launcher prints
        assert line.startswith(f"Truncated or corrupted TFRecord file {path}: cannot read record index 4 (")
        assert "check_records" in line and "\n" not in line
    report = check_records(os.path.join(str(tmp_path), "train-*"))
    assert [(f, i) for f, i, _ in report["truncated"]] == [(path, 4)] and report["ok"] == 9


def test_record_reader_counts_bytes_across_blocks(tmp_path):
    """Records are counted in blocks (sources.RECORD_BLOCK): every index once, in order, and the marker of a cut file
    after the last whole record, also when the file spans several blocks."""
    from regnet_tf.data import sources

    count = 2 * sources.RECORD_BLOCK + 7
    path = _write(str(tmp_path / "train-00000-of-00001"), [b"x" * (k % 13) for k in range(count)])
    size = os.path.getsize(path)

    def read(n_bytes):
        elements = list(sources._read_tfrecord_file(path, n_bytes).as_numpy_iterator())
        return [(int(e["index"]), bool(e["broken"])) for e in elements], elements

    whole, elements = read(size)
    assert whole == [(k, False) for k in range(count)]
    assert [len(e["record"]) for e in elements] == [k % 13 for k in range(count)]
    assert all(e["file"] == path.encode() for e in elements)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-5])  # the last record is cut
    cut, _ = read(size - 5)
    assert cut == [(k, False) for k in range(count - 1)] + [(count - 1, True)]


def test_label_out_of_range_stops_with_file_and_index(tmp_path):
    examples = [make_example(_jpeg(30, 30, k), label, 30, 30) for k, label in enumerate([1, 2, 0, 3])]
    path = _write(str(tmp_path / "validation-00000-of-00001"), examples)  # stored 0 -> -1 after the offset
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        _labels(input_pipeline(DataConfig(data_dir=str(tmp_path), image_size=16), "validation", 2))
    message = str(e.value)
    assert "Label out of range" in message and path in message and "label_offset=-1" in message
    assert "record index" in message and "2" in message.split("record index")[1][:20]
    assert user_message(e.value) == (
        f"Label out of range: -1 in file {path} record index 2; expected 0..999 after label_offset=-1 (ImageNet "
        "TFRecords store 1..1000: label_offset=-1; TFDS and image folders are 0-based; check num_classes=1000)")
    assert user_message(ValueError("something else")) is None
    # The same records are fine with label_offset=0 and 4 classes.
    config = DataConfig(data_dir=str(tmp_path), image_size=16, label_offset=0, num_classes=4)
    assert _labels(input_pipeline(config, "validation", 2)) == [0, 1, 2, 3]


# ------------------------------------------------------------------------------------------------ demo data


def test_demo_data(tmp_path, monkeypatch):
    monkeypatch.setenv("REGNET_TF_DATA", str(tmp_path / "cache"))
    path = demo.ensure(num_train=60, num_val=20, shards=(4, 2))
    assert path == os.path.join(str(tmp_path / "cache"), "demo")
    files = sorted(os.listdir(path))
    assert files[:2] == ["label_map.txt", "manifest.json"] and len(files) == 8
    stamp = os.path.getmtime(os.path.join(path, "train-00000-of-00004"))
    assert demo.ensure(num_train=60, num_val=20, shards=(4, 2)) == path  # reused
    assert os.path.getmtime(os.path.join(path, "train-00000-of-00004")) == stamp
    other = demo.generate(str(tmp_path / "again"), num_train=60, num_val=20, shards=(4, 2))
    for name in files[2:]:  # deterministic from the seed
        with open(os.path.join(path, name), "rb") as a, open(os.path.join(other, name), "rb") as b:
            assert a.read() == b.read(), name
    monkeypatch.setattr(demo, "VERSION", demo.VERSION + 1)
    demo.ensure(num_train=60, num_val=20, shards=(4, 2))  # a changed generator rebuilds
    with open(os.path.join(path, "manifest.json")) as f:
        assert f'"version": {demo.VERSION}' in f.read()

    config = demo.config(source="tfrecord", data_dir=path, image_size=32, shuffle_buffer=60)
    images, labels = next(iter(input_pipeline(config, "train", 8)))
    assert images.shape == (8, 32, 32, 3)
    assert _labels(input_pipeline(config, "validation", 8)) == sorted(list(range(10)) * 2)
    sizes = [(int(e["image/height"]), int(e["image/width"])) for e in tf.data.TFRecordDataset(
        tf.io.gfile.glob(os.path.join(path, "train-*"))).map(lambda r: tf.io.parse_single_example(r, {
            "image/height": tf.io.FixedLenFeature((), tf.int64), "image/width": tf.io.FixedLenFeature((), tf.int64)}))]
    assert len(set(sizes)) > 10 and min(min(s) for s in sizes) >= 48 and max(max(s) for s in sizes) <= 96


def test_demo_classes_are_not_a_colour():
    # Nearest-centroid on the mean colour or the centre pixel stays near chance (10 classes).
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 10
    images = [demo.render(rng, k, 64, 64).astype(np.float32) for k in labels]
    for feature in (lambda im: im.mean((0, 1)), lambda im: im[32, 32]):
        x = np.stack([feature(im) for im in images])
        train, test = slice(0, 300), slice(300, 400)
        centroids = np.stack([x[train][labels[train] == k].mean(0) for k in range(10)])
        pred = np.argmin(((x[test][:, None] - centroids[None]) ** 2).sum(-1), 1)
        assert (pred == labels[test]).mean() < 0.3


# ------------------------------------------------------------------------- RandAugment / MixUp plugged in


def test_randaugment_in_pipeline(data_dir):
    config = DataConfig(data_dir=data_dir, image_size=32, randaug_layers=2, randaug_magnitude=15,
                        deterministic=True, seed=1, shuffle_buffer=20)
    a = next(iter(input_pipeline(config, "train", 4)))
    b = next(iter(input_pipeline(config, "train", 4)))
    assert a[0].shape == (4, 32, 32, 3) and a[0].dtype == tf.float32
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    plain = next(iter(input_pipeline(DataConfig(data_dir=data_dir, image_size=32, deterministic=True, seed=1,
                                                shuffle_buffer=20), "train", 4)))
    assert not np.array_equal(a[0].numpy(), plain[0].numpy())


def test_mixup_in_pipeline(data_dir):
    config = DataConfig(data_dir=data_dir, image_size=16, num_classes=20, mixup_alpha=0.2, cutmix_alpha=1.0,
                        shuffle_buffer=20)
    images, labels = next(iter(input_pipeline(config, "train", 4)))
    assert images.shape == (4, 16, 16, 3) and labels.shape == (4, 20)
    np.testing.assert_allclose(labels.numpy().sum(-1), 1.0, atol=1e-5)
    assert _labels(input_pipeline(config, "validation", 4)) == list(range(8))  # eval: hard labels
