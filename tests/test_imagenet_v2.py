"""ImageNetV2 (TFDS `imagenet_v2`) as an evaluation source: `regnet_tf.data.config.imagenet_v2` and
`launch/eval.py --data imagenet_v2`, on a small dataset that TFDS's own imagenet_v2 builder prepares offline from
images laid out as the ImageNetV2 tarball extracts (`imagenetv2-<variant>-format-val/<class index>/<image>.jpeg`)."""

import contextlib
import importlib.resources
import importlib.util
import os
import sys
from unittest import mock

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import tensorflow as tf  # noqa: E402

import regnet_tf.cli.eval as eval_cli  # noqa: E402
from conftest import run_command  # noqa: E402
from regnet_tf.data import preprocess  # noqa: E402
from regnet_tf.data.config import (IMAGENET_V2_VARIANTS, DataConfig, imagenet_v2,  # noqa: E402
                                   imagenet_v2_variant)
from regnet_tf.data.sources import check_data, input_pipeline  # noqa: E402
from regnet_tf.train import recipe as recipe_lib  # noqa: E402

VARIANT = "matched-frequency"
RED, GREEN, BLUE = (230, 20, 20), (20, 230, 20), (20, 20, 230)
# The fixture: (ImageNet class index, color) of each image. The color model below predicts 3 for red, 500 for green
# and 999 for blue: 5 of these 7 images are classified right.
IMAGES = [(3, RED), (3, RED), (3, BLUE), (500, GREEN), (500, GREEN), (999, BLUE), (999, RED)]
COLOR_CLASSES = {RED: 3, GREEN: 500, BLUE: 999}


def _importlib_resources():
    """TFDS 4.9.10 prepares a dataset with `importlib_resources`, which it does not require on Python >= 3.9: the
    standard library's `importlib.resources` (the same API) stands in when it is not installed."""
    if importlib.util.find_spec("importlib_resources"):
        return contextlib.nullcontext()
    return mock.patch.dict(sys.modules, {"importlib_resources": importlib.resources})


def _image(index, color, size=(40, 48)):
    """A JPEG of `color` with a gray border (cut by the center crop) and a size of its own."""
    pixels = np.full((size[0] + index, size[1], 3), 128, np.uint8)
    pixels[3:-3, 3:-3] = color
    return tf.io.encode_jpeg(pixels, quality=95).numpy()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A TFDS data_dir with imagenet_v2/matched-frequency prepared by TFDS's builder, its download replaced by the
    images of `IMAGES` in the layout of the extracted ImageNetV2 tarball."""
    root = tmp_path_factory.mktemp("imagenet_v2")
    extracted = root / "extracted"
    for i, (label, color) in enumerate(IMAGES):
        class_dir = extracted / f"imagenetv2-{VARIANT}-format-val" / str(label)
        class_dir.mkdir(parents=True, exist_ok=True)
        (class_dir / f"{i:040x}.jpeg").write_bytes(_image(i, color))
    tfds_dir = str(root / "tensorflow_datasets")
    builder = tfds.builder(f"imagenet_v2/{VARIANT}", data_dir=tfds_dir)
    no_download = mock.patch.object(tfds.download.DownloadManager, "download_and_extract",
                                    lambda self, url: str(extracted))
    with no_download, _importlib_resources():
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            compute_stats=tfds.download.ComputeStatsMode.SKIP))
    assert builder.info.splits["test"].num_examples == len(IMAGES)
    return tfds_dir


def _color_model(size):
    """Logits of class 3 / 500 / 999 = the mean normalized red / green / blue; every other logit 0."""
    import keras

    inputs = keras.Input((size, size, 3))
    dense = keras.layers.Dense(1000)
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    kernel = np.zeros((3, 1000), np.float32)
    for channel, label in enumerate(COLOR_CLASSES.values()):
        kernel[channel, label] = 1.0
    dense.set_weights([kernel, np.zeros(1000, np.float32)])
    return model


def test_config_variants_and_errors(tmp_path):
    config = imagenet_v2(data_dir="/tfds")
    assert (config.source, config.tfds_name, config.tfds_eval_split, config.data_dir) == (
        "tfds", "imagenet_v2/matched-frequency", "test", "/tfds")
    assert (config.num_classes, config.num_eval_examples, config.num_examples("validation")) == (1000, 10_000, 10_000)
    assert [imagenet_v2(v).imagenet_v2_variant for v in IMAGENET_V2_VARIANTS] == list(IMAGENET_V2_VARIANTS)
    assert imagenet_v2_variant("imagenet_v2:3.0.0") == VARIANT and imagenet_v2_variant("imagenet2012") is None
    # Written by hand: "validation" (the default) reads the one split, "test"; ImageNet's own sizes stay ImageNet's.
    assert DataConfig(source="tfds", tfds_name="imagenet_v2/topimages").tfds_eval_split == "test"
    assert DataConfig(source="tfds").num_eval_examples == 50_000
    assert DataConfig(source="tfrecord", tfds_name="imagenet_v2").imagenet_v2_variant is None

    # The eval view of the model being evaluated stays; the run's ImageNet sizes, minival and data_dir do not.
    run = DataConfig(data_dir="/data/imagenet", minival_shards=20, image_size=288, eval_mode="resize_short",
                     resize_method="bicubic", num_eval_examples=50_000)
    v2 = imagenet_v2("topimages", "/tfds", base=run)
    assert (v2.image_size, v2.eval_mode, v2.resize_method) == (288, "resize_short", "bicubic")
    assert (v2.minival_shards, v2.num_minival_examples, v2.num_eval_examples, v2.data_dir) == (0, 0, 10_000, "/tfds")
    # launch/eval.py --data imagenet_v2 sets the same fields on the run's recipe
    raw = recipe_lib.Recipe(data=run).to_dict()
    overrides = eval_cli.imagenet_v2_overrides("topimages", "/tfds")
    assert recipe_lib.from_dict(recipe_lib.apply_overrides(raw, overrides)).data == v2

    with pytest.raises(ValueError, match=r"^unknown ImageNetV2 variant 'top'; valid: matched-frequency, "
                                         r"threshold-0.7, topimages$"):
        imagenet_v2("top")
    with pytest.raises(ValueError, match="unknown ImageNetV2 variant 'v1'"):
        DataConfig(source="tfds", tfds_name="imagenet_v2/v1")
    with pytest.raises(ValueError, match="ImageNet-1k's 1000 classes; got num_classes=10"):
        imagenet_v2(num_classes=10)
    with pytest.raises(ValueError, match="one split, 'test'"):
        DataConfig(source="tfds", tfds_name="imagenet_v2", tfds_eval_split="train")
    # Training on it: an error naming why, before and when reading.
    for split in ("train", "minival"):
        with pytest.raises(ValueError, match=f"is a test set.*split '{split}' cannot read it"):
            check_data(config, (split,))
    with pytest.raises(ValueError, match="is a test set"):
        input_pipeline(imagenet_v2(data_dir=str(tmp_path)), "train", 2)
    # Not prepared: the one-line error says how to prepare it.
    with pytest.raises(FileNotFoundError, match="is not prepared") as e:
        input_pipeline(imagenet_v2("threshold-0.7", str(tmp_path)), "validation", 2)
    message = str(e.value)
    assert "\n" not in message and "tfds build imagenet_v2/threshold-0.7 --data_dir DIR" in message
    assert "--data_dir" in message and "ILSVRC2012" not in message


def test_evaluate_on_the_fixture(data_dir):
    from regnet_tf.train import evaluate

    config = imagenet_v2(VARIANT, data_dir, image_size=32)
    model = _color_model(config.image_size)
    metrics = evaluate.evaluate_model(model, config, "validation", batch_size=3)
    expected = sum(COLOR_CLASSES[color] == label for label, color in IMAGES)  # by construction: 5
    # ... and by calling the model on the fixture's images, each decoded and preprocessed here
    root = os.path.join(os.path.dirname(data_dir), "extracted", f"imagenetv2-{VARIANT}-format-val")
    images, labels = [], []
    for label in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, label))):
            with open(os.path.join(root, label, name), "rb") as f:
                images.append(preprocess.eval_image(f.read(), config.image_size, config.eval_mode,
                                                    config.eval_crop_fraction, resize_method=config.resize_method))
            labels.append(int(label))
    direct = int(np.sum(np.argmax(model(tf.stack(images)).numpy(), -1) == np.array(labels)))
    assert direct == expected == 5
    assert metrics["examples"] == len(IMAGES)
    assert metrics["top1"] == pytest.approx(100 * expected / len(IMAGES))
    assert metrics["top5"] == pytest.approx(metrics["top1"])  # the other labels' logits are negative


def test_eval_command(data_dir, tmp_path):
    """launch/eval.py --model M --weights W --data imagenet_v2: weights whose classifier always ranks classes 500, 3,
    7, 8, 9 first (top-1: the two images of class 500; top-5: also the three of class 3)."""
    from regnet_tf.applications import build_model

    model = build_model("regnetx_002", classes=1000, classifier_activation=None, input_shape=(32, 32, 3))
    kernel, bias = model.get_layer("predictions").get_weights()
    bias[:] = 0
    bias[[500, 3, 7, 8, 9]] = [5, 4, 3, 2, 1]
    model.get_layer("predictions").set_weights([np.zeros_like(kernel), bias])
    weights = str(tmp_path / "ranked.weights.h5")
    model.save_weights(weights)

    args = ["--model", "regnetx_002", "--weights", weights, "--data_dir", data_dir, "--set", "data.image_size=32",
            "--batch_size", "4"]
    out = run_command(eval_cli, *args, "--data", "imagenet_v2")
    assert ("on ImageNetV2 matched-frequency (TFDS imagenet_v2/matched-frequency test): top-1 28.57%, top-5 71.43% "
            "(7 images)") in out, out
    with pytest.raises(ValueError, match="--imagenet_v2 picks the variant of --data imagenet_v2"):
        run_command(eval_cli, *args, "--imagenet_v2", "topimages", "--data", "demo")


def test_eval_command_on_a_run_of_other_classes(tmp_path):
    """--model_dir: the run's recipe with ImageNetV2's data; a run of the demo data's 10 classes is an error (also
    with --imagenet_v2 alone: it implies --data imagenet_v2)."""
    (tmp_path / "recipe.yaml").write_text(recipe_lib.Recipe(data=DataConfig(source="demo")).to_yaml())
    for args in (["--data", "imagenet_v2"], ["--imagenet_v2", "topimages"]):
        with pytest.raises(ValueError, match=r"ImageNetV2 \(imagenet_v2/.*1000 classes; got num_classes=10"):
            run_command(eval_cli, "--model_dir", str(tmp_path), *args)
