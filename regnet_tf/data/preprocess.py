"""Per-image preprocessing: encoded bytes -> normalized image of the compute dtype, all in the TF graph.

    image = train_image(encoded, seed, size=224)            # Inception crop, flip, resize, [RandAugment], normalize
    image = eval_image(encoded, size=224)                   # center crop 0.875 of the short side, resize, normalize
    image = eval_view(pixels, size=224)                     # the same on decoded uint8 pixels (for serving)
    pixels = train_pixels(encoded, seed, size=224)          # the training view before normalization, uint8

Train (the TF Model Garden recipe): the crop window is sampled from the JPEG header (`extract_jpeg_shape` +
`stateless_sample_distorted_bounding_box`: area 0.08-1, aspect 3/4-4/3, 10 attempts; when no window fits, a
center crop of 0.875 of the short side) and only that window is decoded (`decode_and_crop_jpeg`). Other formats
(PNG, GIF, BMP, WebP, JPEG XL) take the general path: full decode, then the same window. Every format comes out
as 3-channel RGB (grayscale repeated, alpha dropped, CMYK JPEGs converted by the decoder). Then a resize (bilinear,
or bicubic), a horizontal flip, optional augmentation on uint8 (RandAugment; the resized image is rounded first) and
normalization with the ImageNet mean/std (`regnet_tf.data.format.MEAN_RGB` / `STD_RGB`, times 255; also those of
`regnet_tf.applications.preprocess_input`), cast to float32, bfloat16 or float16. Random ops are stateless and
take a per-image seed (shape [2]), so a seeded pipeline is deterministic.

Eval: "crop_fraction" (Model Garden / TF1): a centered square of `crop_fraction` x the short side, decoded with
`decode_and_crop_jpeg`, resized to `size`. "resize_short" (pycls): resize the short side to `short_side`
(default round(size / 0.875), 256 for 224; the long side is floored), then a centered `size` x `size` crop.
One implementation (`_eval_view`) serves encoded bytes (`eval_image`) and decoded pixels (`eval_view`).

The input pipeline's view of a `DataConfig` (`pipeline_view`) checks the pixel budget first: the size an image
declares in its header (frames x height x width, `format.declared_size`) must be at most `config.max_pixels`,
else InvalidArgumentError naming the image ("<file> record index <i>: the image declares ..."), raised before any
decoding, which the pipeline turns into a skipped image, as for a corrupt one.
"""

from __future__ import annotations

import tensorflow as tf

from regnet_tf.data.config import (  # noqa: F401 - the choices, re-exported
    CENTER_CROP_FRACTION, DTYPES, EVAL_MODES, RESIZE_METHODS, eval_short_side)
from regnet_tf.data.format import MEAN_RGB, STD_RGB  # noqa: F401 - ImageNet mean/std, RGB, 0-1 scale
from regnet_tf.data.format import check_pixel_budget, refuse_animated_webp


def _decode_any(encoded):
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def decode_window(encoded, window_fn):
    """Decodes the window `window_fn(shape)` -> [y, x, h, w] (int32) of an encoded image, uint8 HWC.

    JPEGs: the shape comes from the header and only the window is decoded (`decode_and_crop_jpeg`). Other formats
    (PNG, GIF, BMP): full decode, then a slice.
    """
    def jpeg():
        window = window_fn(tf.image.extract_jpeg_shape(encoded)[:2])
        return tf.image.decode_and_crop_jpeg(encoded, window, channels=3)

    def general():
        image = _decode_any(encoded)
        y, x, h, w = tf.unstack(window_fn(tf.shape(image)[:2]))
        return image[y:y + h, x:x + w, :]

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, general)
    image.set_shape([None, None, 3])
    return image


def center_crop_window(shape, fraction=CENTER_CROP_FRACTION):
    """[y, x, h, w] of a centered square of side floor(fraction x short side); offsets truncated (TF2)."""
    h, w = shape[0], shape[1]
    side = tf.maximum(tf.cast(tf.cast(tf.minimum(h, w), tf.float32) * fraction, tf.int32), 1)
    return tf.stack([(h - side) // 2, (w - side) // 2, side, side])


def inception_crop_window(shape, seed, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3), max_attempts=10):
    """[y, x, h, w] of a random crop (area fraction in `area_range`, aspect w/h in `aspect_range`).

    When no window fits in `max_attempts` (the sampler then returns the whole image), falls back to
    `center_crop_window(shape)`, as the TF reference does.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([shape, [3]], 0), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=area_range[0], aspect_ratio_range=aspect_range, area_range=area_range,
        max_attempts=max_attempts, use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    whole = tf.reduce_all(tf.equal(size[:2], shape))
    return tf.cond(whole, lambda: center_crop_window(shape), lambda: window)


def normalize(image, dtype="float32"):
    """RGB in [0, 255] -> (x - 255 mean) / (255 std) as one multiply-add, cast to `dtype`. Any rank >= 2 (one image
    [H, W, 3] or a batch [B, H, W, 3]).

    The image is seen as rows of W x 3 values and the per-channel constants are tiled along a row: the same float32
    multiply and add, value for value, as broadcasting the 3 constants along the channel axis, which is ~5x slower
    on CPU (~0.5 ms instead of ~0.1 ms for a 224 px image).
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    width = shape[-2]
    scale = tf.constant([1.0 / (255.0 * s) for s in STD_RGB])
    offset = tf.constant([-m / s for m, s in zip(MEAN_RGB, STD_RGB)])
    rows = tf.reshape(tf.cast(image, tf.float32), tf.stack([-1, width * 3]))
    rows = rows * tf.tile(scale, [width]) + tf.tile(offset, [width])
    return tf.cast(tf.reshape(rows, shape), dtype)


def to_uint8(image, clip=True):
    """Rounds a [0, 255] image to uint8, half up (uint8 input is returned as is; other dtypes go through float32).
    The one uint8 conversion of the package (views, RandAugment's float input, serving). `clip=False` skips the
    clip: for bilinear resizes of uint8 images, whose values are convex combinations of pixels (one pass less)."""
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        return image
    image = tf.cast(image, tf.float32)  # a no-op for float32
    if clip:
        image = tf.clip_by_value(image, 0.0, 255.0)
    return tf.cast(image + 0.5, tf.uint8)  # round half up; the cast truncates the non-negative values


def resize(image, size, method="bilinear"):
    """uint8 (or float) HWC -> float32 [size, size, 3] on the 0-255 scale, `tf.image.resize` (half-pixel centers).

    The uint8 crop is cast to float32 first: the kernels convert every input value to float anyway, so the result
    is identical, but the float32 kernel is ~1.5x faster than the uint8 one on CPU.
    """
    return tf.image.resize(tf.cast(image, tf.float32), size, method=method)


def train_pixels(encoded, seed, size=224, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3), max_attempts=10,
                 hflip=True, resize_method="bilinear", augment=None, quantize=True):
    """Training view of one encoded image before normalization: [size, size, 3] on the 0-255 scale.

    uint8 when `quantize` or `augment` is set (rounded after the resize), else the float32 resize output.
    `seed`: int tensor of shape [2] (stateless ops). `augment`: None or a callable (uint8 HWC image, seed) -> uint8
    image, applied after the resize and the flip (e.g. `RandAugment`). The flip runs on uint8 when the image is
    rounded (4x fewer bytes; rounding and flipping commute).
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    image = decode_window(encoded, lambda shape: inception_crop_window(shape, seeds[0], area_range, aspect_range,
                                                                        max_attempts))
    image = resize(image, [size, size], resize_method)
    if quantize or augment is not None:
        image = to_uint8(image, clip=resize_method != "bilinear")
    if hflip:
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    return image if augment is None else augment(image, seeds[2])


def train_image(encoded, seed, size=224, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3), max_attempts=10,
                hflip=True, resize_method="bilinear", augment=None, dtype="float32", normalized=True):
    """Training view of one encoded image -> [size, size, 3] normalized `dtype` (uint8 with `normalized=False`).

    `seed`: int tensor of shape [2] (stateless ops). `augment`: None or a callable (uint8 HWC image, seed) -> uint8
    image, applied after the resize and before normalization (e.g. `RandAugment`).
    """
    image = train_pixels(encoded, seed, size, area_range, aspect_range, max_attempts, hflip, resize_method, augment,
                         quantize=not normalized)
    return normalize(image, dtype) if normalized else image


def _eval_view(crop, size, mode, crop_fraction, short_side, resize_method):
    """The eval crop and resize, float32 [..., size, size, 3] on the 0-255 scale, of an image given by
    `crop(window_fn)` -> its window `window_fn(shape [h, w])` = [y, x, h, w] (encoded: decoded; pixels: sliced)."""
    if mode == "crop_fraction":
        image = crop(lambda shape: center_crop_window(shape, crop_fraction))
        return resize(image, [size, size], resize_method)
    if mode == "resize_short":
        short_side = eval_short_side(size, short_side)
        image = crop(lambda shape: tf.stack([0, 0, shape[0], shape[1]]))
        image = resize(image, resize_short_shape(tf.shape(image)[-3:-1], short_side), resize_method)
        h, w = tf.shape(image)[-3], tf.shape(image)[-2]
        y, x = (h - size + 1) // 2, (w - size + 1) // 2  # ceil((h - size) / 2), as pycls
        image = image[..., y:y + size, x:x + size, :]
        image.set_shape(image.shape[:-3].concatenate([size, size, 3]))
        return image
    raise ValueError(f"eval mode must be one of {EVAL_MODES}; got {mode!r}")


def eval_pixels(encoded, size=224, mode="crop_fraction", crop_fraction=CENTER_CROP_FRACTION, short_side=None,
                resize_method="bilinear", quantize=True):
    """Evaluation view of one encoded image before normalization: [size, size, 3] on the 0-255 scale, uint8 when
    `quantize`, else the float32 resize output (see the module docstring)."""
    image = _eval_view(lambda window_fn: decode_window(encoded, window_fn), size, mode, crop_fraction, short_side,
                       resize_method)
    return to_uint8(image, clip=resize_method != "bilinear") if quantize else image


def eval_image(encoded, size=224, mode="crop_fraction", crop_fraction=CENTER_CROP_FRACTION, short_side=None,
               resize_method="bilinear", dtype="float32", normalized=True):
    """Evaluation view of one encoded image -> [size, size, 3] normalized `dtype` (see the module docstring)."""
    image = eval_pixels(encoded, size, mode, crop_fraction, short_side, resize_method, quantize=not normalized)
    return normalize(image, dtype) if normalized else image


def resize_short_shape(shape, short_side):
    """(h, w) with the short side = `short_side` and the long side floor(long / short x short_side) (pycls)."""
    h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    s = tf.constant(float(short_side), tf.float64)
    new_h = tf.where(h <= w, s, tf.floor(h / w * s))
    new_w = tf.where(h <= w, tf.floor(w / h * s), s)
    return tf.cast(tf.stack([new_h, new_w]), tf.int32)


def eval_view(image, size=224, mode="crop_fraction", crop_fraction=CENTER_CROP_FRACTION, short_side=None,
              resize_method="bilinear", dtype="float32", normalized=True):
    """`eval_image` of already decoded pixels: uint8 [H, W, 3], or a batch [B, H, W, 3] of same-size images ->
    [..., size, size, 3]. The same crop, resize and normalization as `eval_image` (for serving raw pixels)."""
    def crop(window_fn):
        y, x, h, w = tf.unstack(window_fn(tf.shape(image)[-3:-1]))
        return image[..., y:y + h, x:x + w, :]

    image = _eval_view(crop, size, mode, crop_fraction, short_side, resize_method)
    return normalize(image, dtype) if normalized else to_uint8(image, clip=resize_method != "bilinear")


def within_pixel_budget(encoded, max_pixels, what):
    """`format.check_pixel_budget(encoded, max_pixels, what)` with a fast path for JPEGs: when libjpeg's own header
    read (`extract_jpeg_shape`, what the JPEG decoders allocate by) is within the budget, the general header walk
    is skipped (training view of 500 x 375 JPEGs on 2 CPU cores: ~1,800 images/s unchecked, 1,100-1,550 with this,
    ~700 with the general walk for every image; docs/DATA.md). Other formats, and JPEGs over the budget, take the
    general check and its error message. A JPEG whose header libjpeg cannot read raises its InvalidArgumentError
    here (its decode would fail the same way)."""
    def jpeg_within():
        shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
        return shape[0] * shape[1] <= max_pixels

    fast = tf.cond(tf.io.is_jpeg(encoded), jpeg_within, lambda: tf.constant(False))
    return tf.cond(fast, lambda: tf.identity(encoded), lambda: check_pixel_budget(encoded, max_pixels, what))


def pipeline_view(config, training, augment=None):
    """fn(encoded, seed, what) -> the input pipeline's image of one encoded image for DataConfig `config`: the
    training view (`train_image`, with `augment`) or the evaluation view (`eval_image`), normalized per image.

    First the pixel budget (`config.max_pixels` > 0): an image whose header declares more pixels fails with
    InvalidArgumentError naming `what` (a string tensor: file and record index) before it is decoded.
    """
    def view(encoded, seed, what):
        if config.max_pixels > 0:
            encoded = within_pixel_budget(encoded, config.max_pixels, what)
        else:  # no budget; an animated WebP is still refused (TensorFlow 2.21's decoder aborts the process on it)
            encoded = refuse_animated_webp(encoded, what)
        if training:
            return train_image(encoded, seed, config.image_size, config.crop_area_range, config.crop_aspect_range,
                               config.crop_max_attempts, config.hflip, config.resize_method, augment, config.dtype,
                               config.normalize)
        return eval_image(encoded, config.image_size, config.eval_mode, config.eval_crop_fraction,
                          config.eval_short_side, config.resize_method, config.dtype, config.normalize)

    return view
