"""regnet_tf.data.format and regnet_tf.data.config: the data-format facts (label map, image signatures), DataConfig's
source defaults and label offsets, detect_source / check_data / label_map_path, and that both leaves import
without TensorFlow."""

import dataclasses
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image  # the "test" extra installs Pillow (it writes GIF, BMP, WebP, TIFF, PPM and ICO files here)

from regnet_tf.data import config as config_lib
from regnet_tf.data import format as fmt
from regnet_tf.data import records, sources
from regnet_tf.data.config import DataConfig

# A 12 x 8 lossless JPEG XL (cjxl -d 0 of two colour bands: left (200, 30, 40), right (20, 180, 90)): the bare
# codestream, and the same codestream in the ISO BMFF container (signature box, ftyp box, jxlc box).
JXL_CODESTREAM = (b"\xff\n\x01A@q!\x08\x02\x01\x00|\x00K\x18\x8b\x15\x00\xd4\xa2b$#u\x81\x10\x00\n\xe6\x03\x00\x10"
                  b"\t\x10\x9a'\x11%\xdfD(\x01S\x00")
JXL_CONTAINER = (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + b"\x00\x00\x00\x14ftypjxl \x00\x00\x00\x00jxl "
                 + (8 + len(JXL_CODESTREAM)).to_bytes(4, "big") + b"jxlc" + JXL_CODESTREAM)
BANDS = np.zeros((8, 12, 3), np.uint8)
BANDS[:, :6], BANDS[:, 6:] = (200, 30, 40), (20, 180, 90)


def encoded_samples():
    """{format name: [encoded files]}: one or more real files of every accepted format, of the image BANDS."""
    image = Image.fromarray(BANDS)

    def pil(kind, **kwargs):
        buffer = io.BytesIO()
        image.save(buffer, kind, **kwargs)
        return buffer.getvalue()

    return {"JPEG": [tf.io.encode_jpeg(BANDS, quality=95).numpy()], "PNG": [tf.io.encode_png(BANDS).numpy()],
            "GIF": [pil("GIF")], "BMP": [pil("BMP")], "WebP": [pil("WEBP", lossless=True), pil("WEBP")],
            "JPEG XL": [JXL_CODESTREAM, JXL_CONTAINER]}


# ------------------------------------------------------------------------------------------------ images


def test_every_accepted_format_decodes_and_is_recognized():
    samples = encoded_samples()
    assert set(samples) == {f.name for f in fmt.IMAGE_FORMATS}
    for name, files in samples.items():
        for data in files:
            assert fmt.detect_image_format(data) == name
            assert bool(fmt.has_image_signature(tf.constant(data)))
            decoded = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
            assert decoded.shape == (8, 12, 3), name
            assert np.abs(decoded.astype(int) - BANDS).mean() < 8, name  # lossy JPEG / WebP / GIF palette
    assert fmt.NOT_AN_IMAGE == "not a JPEG, PNG, GIF, BMP, WebP or JPEG XL image"


def test_rejected_bytes_are_what_decode_image_refuses():
    image = Image.fromarray(BANDS)
    refused = [b"", b"MB", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"not an image at all", b"\x00\x00\x00\x0cjP  \r\n\x87\n"]
    for kind in ("TIFF", "PPM", "ICO"):
        buffer = io.BytesIO()
        image.save(buffer, kind)
        refused.append(buffer.getvalue())
    for data in refused:
        assert fmt.detect_image_format(data) is None
        assert not bool(fmt.has_image_signature(tf.constant(data)))
        with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.UnimplementedError)):
            tf.io.decode_image(data, channels=3, expand_animations=False)


def test_records_writer_accepts_webp_and_names_the_formats(tmp_path):
    samples = encoded_samples()
    folder = tmp_path / "folder" / "bands"
    folder.mkdir(parents=True)
    (folder / "a.webp").write_bytes(samples["WebP"][0])
    (folder / "b.jxl").write_bytes(JXL_CODESTREAM)
    (folder / "c.png").write_bytes(b"plain text, not a PNG")
    result = records.folder_to_tfrecords(str(tmp_path / "folder"), str(tmp_path / "out"), 1, progress=False,
                                         log=lambda m: None)
    assert result["written"] == 2 and result["errors"] == [f"{folder / 'c.png'}: {fmt.NOT_AN_IMAGE}"]
    kinds = {tf.train.Example.FromString(r.numpy()).features.feature["image/format"].bytes_list.value[0]
             for r in tf.data.TFRecordDataset(result["files"])}
    assert kinds == {b"WEBP", b"JPEG XL"}


# ------------------------------------------------------------------------------------------------ label map


def test_label_map_round_trip(tmp_path):
    names = ["tabby cat", "dog", "the bird"]
    path = fmt.write_label_map(tmp_path, names)
    assert path == str(tmp_path / "label_map.txt")
    assert (tmp_path / "label_map.txt").read_text() == "1 tabby cat\n2 dog\n3 the bird\n"  # stored 1-based
    assert fmt.read_label_map(tmp_path) == {0: "tabby cat", 1: "dog", 2: "the bird"}
    assert fmt.read_label_map(path, label_offset=0) == {1: "tabby cat", 2: "dog", 3: "the bird"}
    other = fmt.write_label_map(tmp_path / "zero.txt", names, label_offset=0)
    assert open(other).read().startswith("0 tabby cat\n") and fmt.read_label_map(other, 0)[2] == "the bird"


@pytest.mark.parametrize("text,error", [
    ("1 cat\n\nx dog\n", r"label_map.txt:3: expected '<stored label> <class name>'; got 'x dog'"),
    ("1 cat\n1 dog\n", r"label_map.txt:2: stored label 1 appears twice"),
    ("1 cat\n2\n", r"label_map.txt:2: stored label 2 has no class name"),
])
def test_label_map_errors_name_the_line(tmp_path, text, error):
    (tmp_path / "label_map.txt").write_text(text)
    with pytest.raises(ValueError, match=error):
        fmt.read_label_map(tmp_path)


def test_label_map_missing_file_and_bad_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fmt.read_label_map(tmp_path)
    for names in (["cat", ""], ["cat", "two\nlines"]):
        with pytest.raises(ValueError, match=r"non-empty single lines; bad classes \[1\]"):
            fmt.write_label_map(tmp_path, names)
    assert not (tmp_path / "label_map.txt").exists()


# ------------------------------------------------------------------------------------------------ DataConfig


def test_sizes_default_to_the_sources():
    assert (DataConfig().num_classes, DataConfig().num_train_examples, DataConfig().num_eval_examples) == (
        1000, 1_281_167, 50_000)
    demo = DataConfig(source="demo")
    assert (demo.num_classes, demo.num_train_examples, demo.num_eval_examples) == (10, 5000, 1000)
    assert config_lib.DEMO_SIZES.num_classes == len(config_lib.DEMO_CLASSES)
    assert DataConfig(source="folder", num_classes=3).num_classes == 3
    assert DataConfig(source="demo", num_classes=10, num_train_examples=500).num_train_examples == 500
    with pytest.raises(ValueError, match=r"the demo data has 10 classes; got num_classes=1000\. Leave num_classes"):
        DataConfig(source="demo", num_classes=1000)
    # A filled-in config stays valid through dataclasses.replace when the source keeps its classes.
    assert dataclasses.replace(demo, image_size=32).num_classes == 10


def test_stored_label_offset_rule():
    assert DataConfig().stored_label_offset == -1
    assert DataConfig(label_offset=0).stored_label_offset == 0
    assert DataConfig(source="demo", label_offset=0).stored_label_offset == -1  # the demo records: 1-based
    assert DataConfig(source="tfds", label_offset=-1).stored_label_offset == 0
    assert DataConfig(source="folder").stored_label_offset == 0


def test_validation_without_tensorflow_names_the_choices():
    with pytest.raises(ValueError, match=r"autoaugment must be '' or one of \['v0'\]"):
        DataConfig(autoaugment="v9")
    with pytest.raises(ValueError, match="source must be one of"):
        DataConfig(source="s3")
    assert DataConfig(autoaugment="v0").autoaugment == "v0"


def test_leaves_import_without_tensorflow():
    code = ("import sys\n"
            "import regnet_tf.data.config, regnet_tf.data.format, regnet_tf.data.augment_policies\n"
            "from regnet_tf.data import DataConfig\n"
            "c = DataConfig(source='demo', autoaugment='v0')\n"
            "assert c.num_classes == 10, c\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------------ sources


def _jpeg_folder(root, classes=("cat", "dog")):
    """Two images per class: one held out for validation, one to train on (regnet_tf.data.folder)."""
    for name in classes:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(2):
            with open(os.path.join(root, name, f"{i}.jpg"), "wb") as f:
                f.write(tf.io.encode_jpeg(BANDS).numpy())
    return str(root)


def test_detect_source(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "validation-00000-of-00001").write_bytes(b"")
    assert sources.detect_source(shards) == "tfrecord"
    assert sources.detect_source(_jpeg_folder(tmp_path / "photos")) == "folder"
    _jpeg_folder(tmp_path / "split" / "train")
    assert sources.detect_source(tmp_path / "split") == "folder"  # root/train/<class>/...
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "cat" / "notes.txt").write_text("no images")
    for path in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(FileNotFoundError) as e:
            sources.detect_source(path)
        message = str(e.value)
        assert "train-00000-of-01024" in message and "<class name>/<image>" in message
        assert "--data tfds" in message and "--data demo" in message


def test_check_data_and_label_map_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        sources.check_data(DataConfig(data_dir=str(tmp_path / "nope")))
    assert "--data demo" in str(e.value)
    (tmp_path / "train-00000-of-00001").write_bytes(b"")
    sources.check_data(DataConfig(data_dir=str(tmp_path)), splits=("train",))
    with pytest.raises(FileNotFoundError, match="validation-"):
        sources.check_data(DataConfig(data_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="root/<class name>"):
        sources.check_data(DataConfig(source="folder", data_dir=str(tmp_path)))
    sources.check_data(DataConfig(source="folder", data_dir=_jpeg_folder(tmp_path / "photos"), num_classes=2))

    assert sources.label_map_path(DataConfig(data_dir=str(tmp_path))) is None
    fmt.write_label_map(tmp_path, ["a"])
    assert sources.label_map_path(DataConfig(data_dir=str(tmp_path))) == str(tmp_path / "label_map.txt")
    assert sources.label_map_path(DataConfig(source="tfds")) is None
