"""Writing standard-format (ImageNet) TFRecords: from arrays, from an image folder; checking existing shards.

    write_shards(examples, out_dir, "train", num_shards=8)        # train-00000-of-00008 ...
    folder_to_tfrecords("photos/", "records/", num_shards=8)     # root/<class>/*.jpg|png -> shards + label map
    check_records("records/train-*")                             # counts: ok / corrupt / over budget / truncated

The format is the one of `tensorflow/tpu` `imagenet_to_gcs.py`: `image/encoded` (the file's bytes), `image/format`,
`image/class/label` (int64, **1-based**: class k of the sorted class names is stored as k + 1, as ImageNet's
1..1000), `image/class/synset` (the class name), `image/height`, `image/width`, `image/channels`,
`image/colorspace`, `image/filename`. The reader's default `label_offset=-1` maps the stored labels to 0..N-1.
Shard names, the label map and the accepted image formats (JPEG, PNG, GIF, BMP, WebP, JPEG XL) are defined in
`regnet_tf.data.format`.

Pixel budget (`max_pixels`, default `format.MAX_PIXELS`; 0: no limit): an image whose header declares more decoded
pixels (frames x height x width) is not decoded: the writer skips it and `check_records` lists it under
"over_budget", each with the file (and record index) and the declared size, as the input pipeline would skip it.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import sys
import threading
import time

import tensorflow as tf

from regnet_tf.data import folder
from regnet_tf.data.format import (  # noqa: F401 - shard_name, IMAGE_EXTENSIONS: re-exported
    IMAGE_EXTENSIONS, IMAGE_KEY, LABEL_KEY, LABEL_OFFSET, MAX_PIXELS, NOT_AN_IMAGE, check_pixel_budget,
    detect_image_format, features, shard_name, stored_label, write_label_map)


def make_example(encoded: bytes, label: int, height: int, width: int, synset: str = "", filename: str = "",
                 image_format: str = "JPEG") -> bytes:
    """One serialized tf.train.Example in the standard format (`label` is stored as given)."""
    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    feature = {
        IMAGE_KEY: b(encoded), "image/format": b(image_format.encode()), LABEL_KEY: i(label),
        "image/class/synset": b(synset.encode()), "image/height": i(height), "image/width": i(width),
        "image/channels": i(3), "image/colorspace": b(b"RGB"), "image/filename": b(filename.encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shards(examples, out_dir, split, num_shards):
    """Writes serialized examples round-robin into `num_shards` files; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, shard_name(split, i, num_shards)) for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    try:
        for k, example in enumerate(examples):
            writers[k % num_shards].write(example)
    finally:
        for w in writers:
            w.close()
    return paths


def list_image_folder(root):
    """([(path, class_index)], class_names) for root/<class>/<image>; classes sorted by name -> 0..N-1."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist; expected root/<class name>/<image> "
                                f"(*{'|*'.join(IMAGE_EXTENSIONS)})")
    files = folder.class_files(root)
    classes = sorted(files)
    items = [(os.path.join(root, name, f), k) for k, name in enumerate(classes) for f in files[name]]
    if not items:
        raise FileNotFoundError(f"no images (*{'|*'.join(IMAGE_EXTENSIONS)}) in {root!r}; expected the layout "
                                f"root/<class name>/<image>, e.g. {os.path.join(root, 'cat', '0001.jpg')}")
    return items, classes


def over_budget(encoded, max_pixels, what) -> str | None:
    """"<what>: the image declares W x H pixels ... (max_pixels)" when the header of `encoded` (bytes or a string
    tensor) declares more than `max_pixels` decoded pixels (`format.check_pixel_budget`; max_pixels <= 0: no
    limit), "<what>: animated WebP is not supported ..." for an animated WebP (TensorFlow's decoder aborts on it),
    else None (also for sizes the header does not tell). Nothing is decoded."""
    try:  # max_pixels <= 0 checks only that it is not an animated WebP (TensorFlow's decoder aborts on those)
        check_pixel_budget(tf.convert_to_tensor(encoded, tf.string), max_pixels, "")
    except tf.errors.InvalidArgumentError as e:
        match = re.search(r"the image declares .*?\(max_pixels\)|animated WebP is not supported.*?still image",
                          str(e))
        return f"{what}: {match.group(0) if match else str(e).splitlines()[0][:200]}"
    return None


def is_over_budget(error: str) -> bool:
    """Whether an error message of `encode_file` is a pixel budget's (`over_budget`)."""
    return ": the image declares " in error and error.endswith("(max_pixels)")


def encode_file(path, label, class_name, max_pixels=MAX_PIXELS):
    """(serialized example of class index `label`, stored 1-based, None) or (None, error message naming the file)
    for a file that is not an image of an accepted format (`format.IMAGE_FORMATS`), declares more than
    `max_pixels` pixels (`over_budget`; checked before decoding) or does not decode."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        fmt = detect_image_format(data)
        if fmt is None:
            raise ValueError(NOT_AN_IMAGE)
        too_big = over_budget(data, max_pixels, path)
        if too_big:
            return None, too_big
        image = tf.io.decode_image(data, channels=3, expand_animations=False)  # full decode: catches truncation
        h, w = int(image.shape[0]), int(image.shape[1])
    except (tf.errors.OpError, ValueError) as e:
        return None, f"{path}: {str(e).splitlines()[0][:200]}"
    return make_example(data, stored_label(label), h, w, class_name, os.path.basename(path), fmt.upper()), None


class Progress:
    """A one-line progress bar on stderr (thread safe)."""

    def __init__(self, total, label="", stream=sys.stderr, width=30):
        self.total, self.label, self.stream, self.width = total, label, stream, width
        self.done, self.start, self.lock, self.last = 0, time.perf_counter(), threading.Lock(), 0.0

    def update(self, n=1):
        with self.lock:
            self.done += n
            now = time.perf_counter()
            if now - self.last > 0.2 or self.done == self.total:
                self.last = now
                frac = self.done / max(self.total, 1)
                bar = "#" * int(frac * self.width)
                rate = self.done / max(now - self.start, 1e-9)
                self.stream.write(f"\r{self.label} [{bar:<{self.width}}] {self.done}/{self.total} "
                                  f"({rate:.0f}/s)")
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()


def folder_to_tfrecords(input_dir, output_dir, num_shards, split="train", workers=4, progress=True, log=print,
                        max_pixels=MAX_PIXELS):
    """Image folder -> `<split>-*-of-*` shards + `label_map.txt`; corrupt images and images over the pixel budget
    (`max_pixels`, 0: no limit) are reported (`log`) and skipped.

    Shard i gets images i, i + num_shards, ... (classes are spread over all shards); `workers` threads encode and
    write shards in parallel (TF's decode releases the GIL). Returns a dict: written, skipped (the count), errors
    (a message naming the file for each skipped image), over_budget (those of errors over the budget), files,
    classes.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1; got {num_shards}")
    items, classes = list_image_folder(input_dir)
    num_shards = min(num_shards, len(items))
    os.makedirs(output_dir, exist_ok=True)
    bar = Progress(len(items), f"{split}") if progress else None

    def write_shard(i):
        path = os.path.join(output_dir, shard_name(split, i, num_shards))
        written, errors = 0, []
        with tf.io.TFRecordWriter(path) as writer:
            for path_in, label in items[i::num_shards]:
                example, error = encode_file(path_in, label, classes[label], max_pixels)
                if error:
                    errors.append(error)
                else:
                    writer.write(example)
                    written += 1
                if bar:
                    bar.update()
        return path, written, errors

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(write_shard, range(num_shards)))
    write_label_map(output_dir, classes, LABEL_OFFSET)
    errors = [e for _, _, errs in results for e in errs]
    for e in errors:
        log(f"skipped {'over-budget' if is_over_budget(e) else 'corrupt'} image {e}")
    return {"written": sum(r[1] for r in results), "skipped": len(errors), "errors": errors,
            "over_budget": [e for e in errors if is_over_budget(e)], "files": [r[0] for r in results],
            "classes": classes}


def check_records(pattern, label_range=None, label_offset=LABEL_OFFSET, max_pixels=MAX_PIXELS):
    """Scans every record of the files matching `pattern` (slow: decodes every image; a diagnosis tool).

    Returns a dict: records, ok, corrupt (list of (file, index, message): undecodable images), over_budget (list
    of (file, index, message): images declaring more than `max_pixels` pixels, not decoded; 0: no limit),
    bad_labels (list of (file, index, label after offset)), truncated (list of (file, index of the first
    unreadable record, message)). `label_range`: (lo, hi) valid labels after the offset, hi exclusive.
    """
    spec = features()
    files = sorted(tf.io.gfile.glob(pattern))
    report = {"files": len(files), "records": 0, "ok": 0, "corrupt": [], "over_budget": [], "bad_labels": [],
              "truncated": []}
    for path in files:
        it, index = iter(tf.data.TFRecordDataset(path)), 0
        while True:
            try:
                record = next(it)
            except StopIteration:
                break
            except tf.errors.OpError as e:  # DataLossError: truncated or corrupted file
                report["truncated"].append((path, index, str(e).splitlines()[0][:200]))
                break
            report["records"] += 1
            try:
                parsed = tf.io.parse_single_example(record, spec)
                too_big = over_budget(parsed[IMAGE_KEY], max_pixels, f"{path} record index {index}")
                if too_big:  # not decoded
                    report["over_budget"].append((path, index, too_big))
                else:
                    tf.io.decode_image(parsed[IMAGE_KEY], channels=3, expand_animations=False)
                    label = int(parsed[LABEL_KEY]) + label_offset
                    if label_range is not None and not label_range[0] <= label < label_range[1]:
                        report["bad_labels"].append((path, index, label))
                    else:
                        report["ok"] += 1
            except tf.errors.OpError as e:
                report["corrupt"].append((path, index, str(e).splitlines()[0][:200]))
            index += 1
    return report
