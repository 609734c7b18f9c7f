"""The data-format facts, each stated once: normalization constants, TFRecord features, shard names, the label map
and the image formats we accept.

Length: the header readers of the six image formats (graph code, `declared_size`) belong with the format table.

A leaf module: it imports nothing from regnet_tf and no TensorFlow at import (the graph helpers `features()` and
`has_image_signature()` import it when called), so recipes, launchers and docs tools can read these facts cheaply.

- ImageNet mean/std: RGB, on the 0-1 scale: normalized = (x / 255 - MEAN_RGB) / STD_RGB.
- TFRecords (the format of tensorflow/tpu `imagenet_to_gcs.py`): a tf.train.Example per image with
  `image/encoded` (the file's bytes), `image/class/label` (int64, **1-based**: class k is stored as k + 1, as
  ImageNet's 1..1000) and descriptive features (`image/format`, `image/class/synset`, `image/height`, ...).
  The reader adds `label_offset` (default `LABEL_OFFSET` = -1) to a stored label to get the class index.
  Shards are named `<split>-%05d-of-%05d` (`shard_name`); ImageNet's are train-*-of-01024 and
  validation-*-of-00128 (`IMAGENET_TRAIN_SHARDS`, `IMAGENET_VALIDATION_SHARDS`). minival (Revisiting ResNets:
  "20 shards out of 1024") is the last shards of the sorted training files (`split_minival`).
- Label map (`label_map.txt`, next to the shards and inside an exported SavedModel): one
  `<stored label> <class name>` line per class, in class order; stored label = class index - label_offset.
- Images: the formats `tf.io.decode_image` decodes (JPEG, PNG, GIF, BMP, WebP, JPEG XL), recognized by their
  leading bytes (`IMAGE_FORMATS`). The TFRecord writer and the SavedModel's `image_bytes` check both use this one
  table and the one wording `NOT_AN_IMAGE`.
- Pixel budget: `declared_size` reads (frames, height, width) from an image's header in graph ops, before decoding;
  `check_pixel_budget` refuses more than `max_pixels` (default `MAX_PIXELS`) decoded pixels (decompression bombs).
"""

from __future__ import annotations

import os
from typing import NamedTuple

MEAN_RGB = (0.485, 0.456, 0.406)  # ImageNet mean, RGB, 0-1 scale
STD_RGB = (0.229, 0.224, 0.225)  # ImageNet std, RGB, 0-1 scale

# ------------------------------------------------------------------------------------------------ TFRecords

IMAGE_KEY = "image/encoded"
LABEL_KEY = "image/class/label"
LABEL_OFFSET = -1  # stored label + LABEL_OFFSET = class index: records store class k as k + 1 (ImageNet 1..1000)
SPLIT_PATTERNS = {"train": "train-*", "validation": "validation-*"}  # shard files of each split
IMAGENET_TRAIN_SHARDS = 1024  # imagenet_to_gcs.py's shard counts
IMAGENET_VALIDATION_SHARDS = 128


def split_minival(train_files, split, minival_shards, pattern="train-*"):
    """The files of `split` ("train" or "minival") among the sorted training files when the last `minival_shards`
    are held out as minival; ValueError naming the counts when fewer than minival_shards + 1 files exist."""
    files, m = sorted(train_files), minival_shards
    if m <= 0:
        if split == "minival":
            raise ValueError("split 'minival' needs data.minival_shards > 0 (the training shards held out for it)")
        return files
    if len(files) < m + 1:
        raise ValueError(f"minival_shards={m} needs at least {m + 1} training files; {pattern!r} matches "
                         f"{len(files)}: lower data.minival_shards or write more shards (build_tfrecords --shards N)")
    return files[-m:] if split == "minival" else files[:-m]


def features():
    """The parsing spec of the two features the pipeline reads: {IMAGE_KEY: string, LABEL_KEY: int64}."""
    import tensorflow as tf

    return {IMAGE_KEY: tf.io.FixedLenFeature((), tf.string), LABEL_KEY: tf.io.FixedLenFeature((), tf.int64)}


def shard_name(split, index, num_shards):
    """`<split>-00003-of-00008`: shard `index` (0-based) of `num_shards`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def stored_label(class_index, label_offset=LABEL_OFFSET):
    """The label a record stores for `class_index` (class k -> k + 1 with the default offset)."""
    return class_index - label_offset


# ------------------------------------------------------------------------------------------------ label map

LABEL_MAP = "label_map.txt"


def label_map_file(path_or_dir):
    """`path_or_dir/label_map.txt` for a directory, else the path itself."""
    path = os.fspath(path_or_dir)
    return os.path.join(path, LABEL_MAP) if os.path.isdir(path) else path


def check_label_names(names, source="label map"):
    """ValueError unless every name (a sequence or {class index: name}) is a non-empty single line."""
    items = names.items() if isinstance(names, dict) else enumerate(names)
    bad = [k for k, name in items if not isinstance(name, str) or not name.strip() or "\n" in name or "\r" in name]
    if bad:
        raise ValueError(f"{source}: class names must be non-empty single lines; bad classes {bad[:10]}")


def write_label_map(path_or_dir, names, label_offset=LABEL_OFFSET):
    """Writes `label_map.txt` (into a directory, or to the given file path): line k is
    `<stored label of class k> <names[k]>`. Returns the file's path."""
    names = list(names)
    check_label_names(names)
    path = label_map_file(path_or_dir)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{stored_label(k, label_offset)} {name}\n" for k, name in enumerate(names))
    return path


def read_label_map(path_or_dir, label_offset=LABEL_OFFSET):
    """{class index: name} from a `label_map.txt` (or the directory holding it); class index = stored label +
    `label_offset`. Blank lines are skipped; a malformed line, a stored label given twice or without a name is a
    ValueError naming the file and line, a missing file a FileNotFoundError."""
    path = label_map_file(path_or_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label map {path!r} does not exist")
    names = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            stored, _, name = line.partition(" ")
            try:
                index = int(stored) + label_offset
            except ValueError:
                raise ValueError(f"{path}:{number}: expected '<stored label> <class name>'; got {line!r}") from None
            if index in names:
                raise ValueError(f"{path}:{number}: stored label {stored} appears twice")
            if not name.strip():
                raise ValueError(f"{path}:{number}: stored label {stored} has no class name")
            names[index] = name
    return names


# ------------------------------------------------------------------------------------------------ images


class ImageFormat(NamedTuple):
    name: str
    extensions: tuple  # lower-case file name endings of an image folder
    signatures: tuple  # alternatives, each a tuple of (offset, magic bytes) pairs that must all match


# What `tf.io.decode_image` decodes, with the leading bytes its decoder checks (tests/test_format.py decodes a real
# file of each).
IMAGE_FORMATS = (
    ImageFormat("JPEG", (".jpg", ".jpeg"), (((0, b"\xff\xd8\xff"),),)),
    ImageFormat("PNG", (".png",), (((0, b"\x89PNG\r\n\x1a\n"),),)),
    ImageFormat("GIF", (".gif",), (((0, b"GIF8"),),)),
    ImageFormat("BMP", (".bmp",), (((0, b"BM"),),)),
    ImageFormat("WebP", (".webp",), (((0, b"RIFF"), (8, b"WEBP")),)),
    ImageFormat("JPEG XL", (".jxl",), (((0, b"\xff\x0a"),),  # bare codestream
                                       ((0, b"\x00\x00\x00\x0cJXL \r\n\x87\n"),))),  # ISO BMFF container
)
IMAGE_EXTENSIONS = tuple(ext for f in IMAGE_FORMATS for ext in f.extensions)
SIGNATURE_BYTES = max(pos + len(magic) for f in IMAGE_FORMATS for sig in f.signatures for pos, magic in sig)
_names = [f.name for f in IMAGE_FORMATS]
NOT_AN_IMAGE = f"not a {', '.join(_names[:-1])} or {_names[-1]} image"  # the one wording of the check


def detect_image_format(data: bytes) -> str | None:
    """The name of the format (in IMAGE_FORMATS) that `data` starts like, or None."""
    head = bytes(data[:SIGNATURE_BYTES])
    for f in IMAGE_FORMATS:
        if any(all(head[pos:pos + len(magic)] == magic for pos, magic in sig) for sig in f.signatures):
            return f.name
    return None


def has_image_signature(encoded):
    """Graph version of `detect_image_format(...) is not None`: a bool tensor for one scalar string tensor."""
    import tensorflow as tf

    return tf.reduce_any(tf.stack(_signature_matches(encoded)))


def _signature_matches(encoded):
    """A bool tensor per IMAGE_FORMATS entry: does `encoded` start like it?"""
    import tensorflow as tf

    head = tf.strings.join([tf.strings.substr(encoded, 0, SIGNATURE_BYTES), b"\0" * SIGNATURE_BYTES])
    return [tf.reduce_any(tf.stack([tf.reduce_all(tf.stack([
        tf.equal(tf.strings.substr(head, pos, len(magic)), magic) for pos, magic in sig])) for sig in f.signatures]))
        for f in IMAGE_FORMATS]


# ------------------------------------------------------------------------------------------------ pixel budget

MAX_PIXELS = 64_000_000  # default decoded-pixel budget per image: frames x height x width
_PAD = 32  # zero bytes appended before reading fixed offsets, so short inputs never index out of range
_STEPS = 1 << 16  # most steps of a header walk (each consumes >= 1 byte; see declared_size for what happens after)
_GIF_STEPS, _HOPS = 1 << 13, 16  # GIF loop steps, and the data sub-blocks skipped in each
_JPEG_STEPS = 4096  # markers and stray bytes walked before falling back to tf.image.extract_jpeg_shape
_INT64_MAX = (1 << 63) - 1


def declared_size(encoded):
    """(frames, height, width) as an int64 [3] tensor, read from the header of one scalar string tensor without
    decoding pixels; (-1, -1, -1) when the bytes are no known format or too short to say. Graph ops only (works in
    tf.function, tf.map_fn, tf.data maps and SavedModels). The sizes are what TensorFlow's decoders allocate:
    - JPEG: the first SOFn of a marker walk that follows libjpeg (stray bytes, fill bytes, RSTn, segment lengths).
      EOI, SOS, a second SOI or a marker libjpeg does not know before any SOF, or the end of the data: -1s (libjpeg
      refuses those). More than 4096 steps (markers, stray bytes) before the SOF: tf.image.extract_jpeg_shape
      decides, and raises InvalidArgument when there is no SOF (the one way declared_size raises).
    - PNG: IHDR (the first chunk; -1s when it is not there). One frame: decode_png reads an APNG's default image.
    - GIF: frames = image descriptors, counted by walking the blocks to the trailer (or to malformed or truncated
      data, where giflib stops too); height/width = the logical screen's, or a larger frame's (giflib allocates
      every frame before TensorFlow checks bounds). decode_image(expand_animations=False) decodes every frame too.
      A loop step skips 16 data sub-blocks (255 bytes each in common files) and reads one block header.
    - BMP: |int32| width at 18 and height at 22 (negative: top-down), the fields decode_bmp reads whatever the
      header size (it refuses a 12-byte BITMAPCOREHEADER file, reading 0 channels).
    - WebP: the VP8X canvas (animated: frames = ANMF chunks, at least 1), VP8 or VP8L frame header.
    - JPEG XL: the codestream's SizeHeader (bare, or in the container's jxlc or first jxlp box), height and width
      swapped for orientations 5-8 as the decoder outputs them. Frames: 1 (decode_jxl returns an animation's first
      frame). Not handled: a SizeHeader split across jxlp boxes (read as if contiguous).
    A walk longer than 2**16 steps (2**13 for a GIF) stops there: a GIF or WebP adds the most frames the rest of its
    bytes can hold (so a GIF of > 2**17 sub-blocks, over 33 MB with full ones, fails any budget), a JPEG XL
    container is -1s."""
    return _declared_size_function()(encoded)


def check_pixel_budget(encoded, max_pixels, what):
    """`encoded` (tf.identity) under an assertion that its declared frames x height x width <= max_pixels; the
    InvalidArgumentError names `what`, the declared size and the limit. max_pixels <= 0 disables the check; unknown
    sizes (-1) pass (the decoder then reports the error). An animated WebP is always refused (`is_animated_webp`)."""
    import tensorflow as tf

    size = declared_size(encoded)
    frames, height, width = size[0], size[1], size[2]
    dims = tf.minimum(size, (1 << 31) - 1)  # libpng and giflib refuse more; keeps height x width < 2**62
    area, many = dims[1] * dims[2], tf.maximum(dims[0], 1)
    pixels = tf.where(area > _INT64_MAX // many, tf.constant(_INT64_MAX, tf.int64), dims[0] * area)
    limit = tf.cast(max_pixels, tf.int64)
    ok = (limit <= 0) | tf.reduce_any(size < 0) | (pixels <= limit)
    text = tf.strings.as_string
    message = tf.strings.join([
        what, ": the image declares ", text(width), " x ", text(height), " pixels",
        tf.where(frames > 1, tf.strings.join([" x ", text(frames), " frames"]), ""),
        " = ", text(pixels), " pixels, over the limit of ", text(limit), " (max_pixels)"])
    with tf.control_dependencies([tf.debugging.Assert(ok, [message])]):
        return refuse_animated_webp(tf.identity(encoded), what)


def refuse_animated_webp(encoded, what):
    """`encoded` (tf.identity) under an assertion that it is not an animated WebP (`is_animated_webp`)."""
    import tensorflow as tf

    animated = tf.strings.join([what, ": animated WebP is not supported (TensorFlow 2.21's WebP decoder corrupts "
                                      "memory on animations and kills the process): send a still image"])
    with tf.control_dependencies([tf.debugging.Assert(tf.logical_not(is_animated_webp(encoded)), [animated])]):
        return tf.identity(encoded)


def is_animated_webp(encoded):
    """A bool tensor: `encoded` is a WebP whose VP8X header sets the animation flag. TensorFlow 2.21's decoders
    (decode_webp, decode_image with or without expand_animations) abort the process on a multi-frame WebP, so
    `check_pixel_budget` refuses every animated WebP, whatever max_pixels is."""
    import tensorflow as tf

    head = tf.strings.substr(tf.strings.join([tf.strings.substr(encoded, 0, 21), b"\0" * 21]), 0, 21)
    vp8x = (tf.equal(tf.strings.substr(head, 0, 4), b"RIFF") & tf.equal(tf.strings.substr(head, 8, 4), b"WEBP")
            & tf.equal(tf.strings.substr(head, 12, 4), b"VP8X"))
    flags = tf.io.decode_raw(tf.strings.substr(head, 20, 1), tf.uint8)[0]
    return vp8x & tf.equal(tf.bitwise.bitwise_and(flags, 2), 2)


_FUNCTION = []


def _declared_size_function():
    """declared_size's graph, built once per process (a tf.function, so eager calls run the walks as graphs)."""
    if not _FUNCTION:
        import tensorflow as tf

        _FUNCTION.append(tf.function(_declared_size_graph, autograph=False,
                                     input_signature=[tf.TensorSpec([], tf.string)]))
    return _FUNCTION[0]


def _declared_size_graph(encoded):
    import tensorflow as tf

    i64 = tf.int64
    raw = tf.io.decode_raw(encoded, tf.uint8)
    n = tf.size(raw, out_type=i64)
    data = tf.concat([raw, tf.zeros([_PAD], tf.uint8)], 0)

    def window(pos, count):  # the `count` bytes at pos as int64
        return tf.cast(tf.gather(data, tf.clip_by_value(pos + tf.range(count, dtype=i64), 0, n + _PAD - 1)), i64)

    def u(pos, count=1, big=False):  # unsigned integer of `count` bytes at pos (positions past the end read 0)
        index = tf.clip_by_value(pos + tf.range(count, dtype=i64), 0, n + _PAD - 1)
        shifts = 8 * tf.range(count - 1, -1, -1, dtype=i64) if big else 8 * tf.range(count, dtype=i64)
        return tf.reduce_sum(tf.bitwise.left_shift(tf.cast(tf.gather(data, index), i64), shifts))

    def pick(cond, a, b):
        return tf.where(cond, tf.cast(a, i64), tf.cast(b, i64))

    def size(frames, height, width, known=True):
        return tf.where(known, tf.stack([tf.cast(v, i64) for v in (frames, height, width)]),
                        tf.constant([-1, -1, -1], i64))

    def walk(step, state, limit=_STEPS):  # state = (pos, done, ...) -> (steps, *final state), <= limit steps
        return tf.while_loop(lambda k, pos, done, *rest: (~done) & (k < limit), lambda k, *s: (k + 1,) + step(*s),
                             (tf.constant(0, i64),) + state)

    def where(*pairs):  # where(cond1, value1, cond2, value2, ..., default)
        value = pairs[-1]
        for cond, v in zip(pairs[-3::-2], pairs[-2::-2]):
            value = pick(cond, v, value)
        return value

    def jpeg():
        def step(pos, done, found):
            w = window(pos, 4)
            c0, m = w[0], w[1]
            sof = (m >= 0xC0) & (m <= 0xCF) & (m != 0xC4) & (m != 0xC8) & (m != 0xCC)
            plain = ((m >= 0xD0) & (m <= 0xD7)) | (m == 0x01)
            segment = (m == 0xC4) | (m == 0xCC) | ((m >= 0xDB) & (m <= 0xDD)) | ((m >= 0xE0) & (m <= 0xEF)) | (
                m == 0xFE)
            marker = (c0 == 0xFF) & (m != 0xFF) & (m != 0)
            nxt = where(c0 != 0xFF, pos + 1, m == 0xFF, pos + 1, m == 0, pos + 2, plain, pos + 2,
                        pos + 2 + tf.maximum(256 * w[2] + w[3], 2))
            stop = (pos >= n) | (marker & ~plain & ~segment)  # at the end, a SOF, or a marker it cannot skip
            return pick(stop, pos, nxt), stop, pick(marker & sof & (pos < n), 1, pick(stop, -1, 0))

        k, pos, _, found = walk(step, (tf.constant(2, i64), tf.constant(False), tf.constant(0, i64)), _JPEG_STEPS)
        known = size(1, u(pos + 5, 2, True), u(pos + 7, 2, True), found == 1)
        return tf.cond(found == 0, lambda: tf.concat([[1], tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], i64)], 0),
                       lambda: known)

    def png():
        return size(1, u(20, 4, True), u(16, 4, True), (n >= 24) & (u(12, 4, True) == 0x49484452))  # IHDR

    def gif():
        def step(pos, done, chain, frames, height, width):
            for _ in range(_HOPS):  # data sub-blocks: size byte, then its bytes; a 0 size ends the chain
                c = tf.cast(tf.gather(data, tf.minimum(pos, n + _PAD - 1)), i64)
                pos, chain = tf.where(chain, pos + 1 + c, pos), chain & (c != 0)
            w = window(pos, 10)  # then one block, if the chain ended: an image (0x2C) or an extension (0x21)
            c, packed = w[0], w[9]
            image, block = ~chain & (c == 0x2C), ~chain & (c == 0x21)
            local = pick(packed >= 0x80, 3 * tf.bitwise.left_shift(tf.constant(2, i64), packed % 8), 0)
            stop = (pos >= n) | ~(chain | image | block)  # the trailer 0x3B, malformed or truncated
            return (where(image, pos + 11 + local, block, pos + 2, pos), stop, chain | image | block,
                    frames + tf.cast(image & (pos < n), i64), pick(image, tf.maximum(height, w[7] + 256 * w[8]),
                                                                   height),
                    pick(image, tf.maximum(width, w[5] + 256 * w[6]), width))

        packed = u(10)
        start = 13 + pick(packed >= 0x80, 3 * tf.bitwise.left_shift(tf.constant(2, i64), packed % 8), 0)
        k, pos, done, _, frames, height, width = walk(step, (start, tf.constant(False), tf.constant(False),
                                                             tf.constant(0, i64), u(8, 2), u(6, 2)), _GIF_STEPS)
        frames += pick(done, 0, (tf.maximum(n - pos, 0) + 11) // 12)  # a frame takes >= 12 bytes
        return size(frames, height, width, n >= 13)

    def bmp():
        def int32(pos):
            value = u(pos, 4)
            return pick(value >= 1 << 31, value - (1 << 32), value)

        return size(1, tf.abs(int32(22)), tf.abs(int32(18)), n >= 26)

    def webp():
        tag = u(12, 4, True)

        def step(pos, done, frames):
            length = u(pos + 4, 4)
            return (pos + 8 + length + length % 2, pos + 8 > n,
                    frames + tf.cast(tf.equal(u(pos, 4, True), 0x414E4D46) & (pos + 8 <= n), i64))

        animated = (tag == 0x56503858) & tf.equal(tf.bitwise.bitwise_and(u(20), 2), 2)  # VP8X, animation flag
        k, pos, done, count = tf.cond(animated, lambda: walk(step, (tf.constant(30, i64), tf.constant(False),
                                                                    tf.constant(0, i64))),
                                      lambda: (tf.constant(0, i64), n, tf.constant(True), tf.constant(1, i64)))
        count = tf.maximum(count, 1) + pick(done, 0, tf.maximum(n - pos, 0) // 24)  # an ANMF takes >= 24 bytes
        lossless = u(21, 4)
        return where(tag == 0x56503858, size(count, u(27, 3) + 1, u(24, 3) + 1, n >= 30),
                     tag == 0x56503820, size(1, u(28, 2) % 16384, u(26, 2) % 16384,
                                                 (n >= 30) & tf.equal(u(23, 3, True), 0x9D012A)),
                     tag == 0x5650384C, size(1, (lossless // 16384) % 16384 + 1, lossless % 16384 + 1,
                                                 (n >= 25) & (u(20) == 0x2F)),
                     size(-1, -1, -1, False))

    def jxl():
        def step(pos, done, start):
            length, kind = u(pos, 4, True), u(pos + 4, 4, True)
            header = pick(length == 1, 16, 8)
            length = where(length == 1, u(pos + 8, 8, True), length == 0, n - pos, length)
            codestream = (kind == 0x6A786C63) | (kind == 0x6A786C70)  # jxlc, jxlp (after a 4-byte part index)
            stop = codestream | (length < header) | (pos + 8 > n)
            return pos + length, stop, pick(codestream, pos + header + pick(kind == 0x6A786C70, 4, 0), -1)

        bare = u(0, 2, True) == 0xFF0A
        start = tf.cond(bare, lambda: tf.constant(0, i64),
                        lambda: walk(step, (tf.constant(0, i64), tf.constant(False), tf.constant(-1, i64)))[3])

        def bits(pos, count):  # `count` (<= 30) bits at bit position pos, least significant first
            return tf.bitwise.right_shift(u(pos // 8, 5), pos % 8) % tf.bitwise.left_shift(tf.constant(1, i64), count)

        def dimension(pos, small):  # (value, next bit position) of a SizeHeader dimension starting at bit pos
            count = tf.gather(tf.constant([9, 13, 18, 30], i64), bits(pos, 2))
            return (pick(small, (bits(pos, 5) + 1) * 8, bits(pos + 2, count) + 1),
                    pick(small, pos + 5, pos + 2 + count))

        pos = (tf.maximum(start, 0) + 2) * 8
        small = bits(pos, 1) == 1
        height, pos = dimension(pos + 1, small)
        ratio = bits(pos, 3)
        numerator, denominator = (tf.gather(tf.constant(v, i64), ratio) for v in ([1, 1, 12, 4, 3, 16, 5, 2],
                                                                                  [1, 1, 10, 3, 2, 9, 4, 1]))
        width, after = dimension(pos + 3, small)
        after = pick(ratio == 0, after, pos + 3)
        width = pick(ratio == 0, width, height * numerator // denominator)
        turned = (bits(after, 2) == 2) & (bits(after + 2, 3) >= 4)  # !all_default, extra_fields, orientation 5-8
        return size(1, pick(turned, width, height), pick(turned, height, width),
                    (start >= 0) & (u(start, 2, True) == 0xFF0A) & (n >= start + 12))

    branches = [jpeg, png, gif, bmp, webp, jxl]
    matches = _signature_matches(encoded)
    index = tf.argmax(tf.cast(tf.stack(matches + [tf.constant(True)]), tf.int32), output_type=tf.int32)
    return tf.switch_case(index, [*branches, lambda: size(-1, -1, -1, False)])
