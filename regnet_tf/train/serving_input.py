"""The serving signatures' input checks: request limits, the per-image header checks, and decoding that names the
image a decoder refuses. Graph code, used by `regnet_tf.train.export` (docs/SERVING.md).

`decode_request(image_bytes, limits, view, size)`:
1. the request limits, before anything else: `max_batch` images and `max_request_bytes` encoded bytes;
2. per image, from its header and leading bytes only: the pixel budget (`format.check_pixel_budget`, which also
   refuses animated WebPs) and the format signature (`format.has_image_signature`);
3. the decode + eval view of every image. By default in a `tf.map_fn` (32 at once): a corrupt or truncated file of a
   known format then fails with TensorFlow's decoder message ("Invalid JPEG data ...", in the name scope
   `decode_image_bytes`), which names no input. With `name_decode_errors`, in a tf.data map whose failures are
   dropped (`ignore_errors`) and counted, so such a file fails the request with "image_bytes[i] could not be decoded:
   corrupt or truncated image data ..." naming the first refused image; creating that dataset per request costs
   ~25-50 ms (measured on 2 CPU cores: one 500 x 375 JPEG 3.5 ms with map_fn, ~39 ms with the dataset), hence an
   option. Steps 1-2 run before either: their own messages are always kept.
"""

from __future__ import annotations

import tensorflow as tf

from regnet_tf.data.format import NOT_AN_IMAGE, check_pixel_budget, has_image_signature

INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
PARALLEL_DECODES = 32  # images decoded at once (the memory of a request: this x max_pixels x 3 bytes at most)


def limit(value, limit_, what, option, shown=()):
    """An assertion that `value` <= `limit_` (none for 0): "<what>, over the limit of <limit> (<option>) ...",
    `what` formatted with `shown` + (value,)."""
    if not limit_:
        return None
    message = tf.strings.format(f"{what}, over the limit of {limit_} ({option}): send fewer or smaller images, or "
                                f"export with a larger {option}", tuple(shown) + (value,))
    return tf.debugging.Assert(value <= limit_, [message], name=f"check_{option}")


def checked(tensor, checks):
    """`tensor` after the assertions `checks` (Nones skipped)."""
    with tf.control_dependencies([c for c in checks if c is not None]):
        return tf.identity(tensor)


def check_limits(**limits):
    """The export's limits, validated: ints >= 0 (0: no limit)."""
    for name, value in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0 (0: no limit); got {value!r}")
    return limits


def checked_image_bytes(encoded, index, max_pixels):
    """`encoded` after its header checks: the pixel budget and the format signature (no decoding)."""
    what = tf.strings.format(INPUT_BYTES + "[{}]", index)
    encoded = check_pixel_budget(encoded, max_pixels, what)
    message = tf.strings.format(INPUT_BYTES + "[{}] could not be decoded: " + NOT_AN_IMAGE + " ({} bytes)",
                                (index, tf.strings.length(encoded)))
    return checked(encoded, [tf.debugging.Assert(has_image_signature(encoded), [message], name="check_image_format")])


def decode_request(image_bytes, limits, view, size, name_decode_errors=False):
    """[B, size, size, 3] float32 eval views of a `serving_default` request, every check above applied in order."""
    with tf.name_scope("request_limits"):
        n = tf.size(image_bytes, out_type=tf.int64)
        total = tf.reduce_sum(tf.cast(tf.strings.length(image_bytes), tf.int64))
        image_bytes = checked(image_bytes, [
            limit(n, limits["max_batch"], INPUT_BYTES + ": the request holds {} images", "max_batch"),
            limit(total, limits["max_request_bytes"], INPUT_BYTES + ": the request holds {} encoded bytes",
                  "max_request_bytes")])
    index = tf.range(n)
    with tf.name_scope("check_image_headers"):
        image_bytes = tf.map_fn(lambda a: checked_image_bytes(a[0], a[1], limits["max_pixels"]), (image_bytes, index),
                                fn_output_signature=tf.string)
    if not name_decode_errors:
        with tf.name_scope("decode_image_bytes"):
            return tf.map_fn(view, image_bytes, parallel_iterations=PARALLEL_DECODES,
                             fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
    with tf.name_scope("decode_image_bytes"):
        ds = tf.data.Dataset.from_tensor_slices((image_bytes, index))
        ds = ds.map(lambda e, i: (view(e), i), num_parallel_calls=PARALLEL_DECODES, deterministic=True)
        empty = (tf.zeros([0, size, size, 3], tf.float32), tf.zeros([0], tf.int64))
        images, decoded = ds.ignore_errors().batch(tf.maximum(n, 1)).reduce(empty, lambda _, batch: batch)
        # the first image the decoder refused: the first position where the decoded indices leave 0, 1, 2, ...
        gaps = tf.where(tf.not_equal(decoded, tf.range(tf.size(decoded, out_type=tf.int64))))
        first = tf.cond(tf.size(gaps) > 0, lambda: gaps[0, 0], lambda: tf.size(decoded, out_type=tf.int64))
        first = tf.minimum(first, tf.maximum(n - 1, 0))
        message = tf.strings.format(INPUT_BYTES + "[{}] could not be decoded: corrupt or truncated image data ({} "
                                    "bytes; TensorFlow's decoder refused it)",
                                    (first, tf.strings.length(tf.gather(tf.concat([image_bytes, [""]], 0), first))))
        ok = tf.equal(tf.size(decoded, out_type=tf.int64), n)
        return checked(images, [tf.debugging.Assert(ok, [message], name="check_decoded")])
