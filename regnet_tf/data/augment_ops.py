"""The 16 image ops of RandAugment / AutoAugment with the TF reference semantics, in plain TensorFlow ops.

Every op takes a uint8 HxWx3 tensor and returns one (the policies that choose and apply them are in `augment`).
Colour ops follow PIL (`ImageEnhance`, `ImageOps`) as the reference does; geometric ops are nearest-neighbour
affine maps whose out-of-image pixels are `FILL` (128). Speed: no tf.where and no broadcasting along the channel
axis on images (both are slow on CPU; per-channel constants are tiled along rows of W x 3 values instead); rotate
and shear are one row gather (equal to ImageProjectiveTransformV3, NEAREST, ~3x faster), translate a slice and a
concat, cutout slices and concats, sharpness's filter shifted-slice sums (~8x faster than a depthwise convolution);
lookups use gather_nd. docs/AUGMENT.md has the details and the reference quirks.
"""

import math

import tensorflow as tf

from regnet_tf.data.augment_policies import CONTRAST_MODES

FILL = 128

# ----------------------------------------------------------------------------------------------------------------
# Colour ops (uint8 HxWx3 in, uint8 HxWx3 out)
# ----------------------------------------------------------------------------------------------------------------

def _blend(image1, image2, factor):
    """image1 + factor * (image2 - image1) in float32, clipped to [0, 255] and truncated to uint8 (reference)."""
    a = tf.cast(image1, tf.float32)
    b = tf.cast(image2, tf.float32)
    return tf.cast(tf.clip_by_value(a + factor * (b - a), 0.0, 255.0), tf.uint8)


def invert(image):
    """255 - x."""
    return 255 - image


def posterize(image, bits):
    """Keep the `bits` most significant bits of each value. Outside 1..8 bits, PIL's meaning (bits >= 8: no-op,
    bits <= 0: black); the reference's clamped uint8 shifts keep 1 bit there."""
    shift = 8 - min(max(int(bits), 0), 8)
    return tf.bitwise.bitwise_and(image, tf.constant((0xFF << shift) & 0xFF, tf.uint8))


def _below(image, threshold):
    """uint8 1 where image < threshold (a Python int), else 0."""
    if threshold > 255:
        return tf.ones_like(image)
    return tf.cast(image < tf.constant(max(int(threshold), 0), tf.uint8), tf.uint8)


def solarize(image, threshold=128):
    """Values >= threshold become 255 - x (no-op for threshold >= 256)."""
    if threshold >= 256:
        return tf.identity(image)
    # 255 - x == x XOR 255 on uint8; tf.where on images is ~10x slower than these elementwise ops.
    return tf.bitwise.bitwise_xor(image, (1 - _below(image, threshold)) * tf.constant(255, tf.uint8))


def solarize_add(image, addition=0, threshold=128):
    """Values < threshold get `addition` added (clipped to [0, 255])."""
    addition = int(addition)
    if addition >= 0:  # uint8 arithmetic: x + min(255 - x, a) saturates at 255
        return image + _below(image, threshold) * tf.minimum(255 - image, min(addition, 255))
    return image - _below(image, threshold) * tf.minimum(image, min(-addition, 255))


def grayscale(image, channels=1):
    """uint8-valued float32 luma, as tf.image.rgb_to_grayscale (x / 255 . (0.2989, 0.587, 0.114), times 255.5,
    truncated), repeated `channels` times, shape HxWx`channels`. One small matmul instead of a broadcast."""
    shape = tf.shape(image)
    weights = tf.constant([[0.2989] * channels, [0.587] * channels, [0.114] * channels], tf.float32)
    flat = tf.reshape(tf.cast(image, tf.float32) * (1.0 / 255.0), [-1, 3])
    gray = tf.floor(tf.matmul(flat, weights) * 255.5)
    return tf.reshape(gray, tf.stack([shape[0], shape[1], channels]))


def color(image, factor):
    """PIL Color: blend the grayscale image (factor 0) with the image (factor 1)."""
    return _blend(grayscale(image, 3), image, factor)


def contrast(image, factor, mode="pil"):
    """Contrast, in one of three conventions (docs/AUGMENT.md, "Contrast"):

    - "pil": PIL `ImageEnhance.Contrast`: blend a constant image at int(m + 0.5), m the mean of PIL's "L" grayscale
      ((19595 R + 38470 G + 7471 B + 2**15) >> 16), with the image.
    - "tf1": the TF1 reference (tensorflow/tpu autoaugment.py, behind the papers' numbers): its "mean" is the sum of
      a 256-bin histogram / 256, i.e. H*W/256, clipped to 255 and truncated; then the same blend.
    - "model_garden": `tf.image.adjust_contrast` (Model Garden 2.20): per-channel mean m of x / 255,
      (x - m) * factor + m, back to uint8 as trunc(clip(y * 255.5, 0, 255)).
    """
    if mode == "model_garden":
        return tf.image.adjust_contrast(image, factor)
    if mode == "tf1":
        shape = tf.shape(image)
        degenerate = tf.floor(tf.minimum(tf.cast(shape[0] * shape[1], tf.float32) / 256.0, 255.0))
    elif mode == "pil":  # float32 is exact here: every weighted sum is an integer < 2**24
        flat = tf.reshape(tf.cast(image, tf.float32), [-1, 3])
        luma = tf.floor(tf.matmul(flat, tf.constant([[19595.0], [38470.0], [7471.0]])) / 65536.0 + 0.5)
        total, n = tf.reduce_sum(tf.cast(luma, tf.int64)), tf.cast(tf.shape(flat)[0], tf.int64)
        degenerate = tf.cast((2 * total + n) // (2 * n), tf.float32)  # int(mean + 0.5), exact
    else:
        raise ValueError(f"contrast mode must be one of {CONTRAST_MODES}; got {mode!r}")
    return _blend(degenerate, image, factor)


def brightness(image, factor):
    """PIL Brightness: blend black with the image."""
    return tf.cast(tf.clip_by_value(tf.cast(image, tf.float32) * factor, 0.0, 255.0), tf.uint8)


def sharpness(image, factor):
    """PIL Sharpness: blend the SMOOTH-filtered image (3x3 kernel [1 1 1; 1 5 1; 1 1 1] / 13, floor; the one-pixel
    border keeps the original values) with the image.

    The filter is the 3x3 box sum (three shifted row slices added, then three column slices) plus 4 x the centre:
    exact integer sums in float32 as the convolution gives, ~8x faster on CPU than a depthwise convolution."""
    x = tf.cast(image, tf.float32)
    shape = tf.shape(image)

    def smoothed():  # images of 3 x 3 pixels or more: the interior is filtered
        rows = x[:-2] + x[1:-1] + x[2:]
        box = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
        smooth = tf.floor((box + 4.0 * x[1:-1, 1:-1]) / 13.0)  # integer sums: this is floor(sum / 13)
        return tf.concat([x[:1], tf.concat([x[1:-1, :1], smooth, x[1:-1, -1:]], 1), x[-1:]], 0)

    degenerate = tf.cond(tf.reduce_all(shape[:2] >= 3), smoothed, lambda: x)
    return _blend(degenerate, x, factor)


def _rows(image):
    """HxWxC -> H x (W C): per-channel constants tiled W times then broadcast along rows, which is fast on CPU."""
    shape = tf.shape(image)
    return tf.reshape(image, tf.stack([shape[0], shape[1] * shape[2]]))


def autocontrast(image):
    """Per channel, map [min, max] linearly to [0, 255] (channels with min == max are left unchanged)."""
    lo = tf.cast(tf.reduce_min(image, axis=[0, 1]), tf.float32)  # uint8 reductions: ~3x faster than float32
    hi = tf.cast(tf.reduce_max(image, axis=[0, 1]), tf.float32)
    scale = tf.where(hi > lo, 255.0 / tf.maximum(hi - lo, 1.0), 1.0)  # scale 1, offset 0: unchanged channel
    offset = tf.where(hi > lo, -lo * scale, 0.0)
    shape = tf.shape(image)
    rows = tf.cast(_rows(image), tf.float32) * tf.tile(scale, shape[1:2]) + tf.tile(offset, shape[1:2])
    return tf.cast(tf.clip_by_value(tf.reshape(rows, shape), 0.0, 255.0), tf.uint8)


def equalize(image):
    """PIL ImageOps.equalize per channel: a lookup table from the histogram's cumulative sum, with
    step = (pixels - count of the highest value) // 255 (channels with step 0 are left unchanged)."""
    shape = tf.shape(image)
    channels = image.shape[-1] if image.shape[-1] is not None else 3
    # value + 256 * channel, on rows of W x C values (broadcasting along the channel axis is slow on CPU)
    offsets = tf.tile(tf.range(channels) * 256, shape[1:2])
    flat = tf.reshape(tf.cast(_rows(image), tf.int32) + offsets, shape)
    # Bin v of [0, 256c - 1] in 256c bins is floor(v * 256c / (256c - 1)) = v (the last one clipped): one histogram
    # for all channels; histogram_fixed_width is ~5x faster than bincount here.
    hist = tf.reshape(tf.histogram_fixed_width(flat, [0, 256 * channels - 1], nbins=256 * channels),
                      [channels, 256])
    top = tf.gather(hist, tf.cast(tf.reduce_max(image, axis=[0, 1]), tf.int32), batch_dims=1)  # top value's count
    step = (tf.reduce_sum(hist, axis=1) - top) // 255
    safe = tf.maximum(step, 1)[:, None]
    lut = (tf.cumsum(hist, axis=1) + safe // 2) // safe
    lut = tf.clip_by_value(tf.pad(lut[:, :-1], [[0, 0], [1, 0]]), 0, 255)  # shift right by one, starting at 0
    lut = tf.where(step[:, None] == 0, tf.range(256)[None], lut)
    # gather_nd with [..., 1] indices: the same lookups as tf.gather, ~1.3x faster for scalar slices on CPU
    return tf.gather_nd(tf.cast(tf.reshape(lut, [-1, 1]), tf.uint8), flat[..., None])[..., 0]


# ----------------------------------------------------------------------------------------------------------------
# Geometric ops: nearest-neighbour affine maps with a constant fill
# ----------------------------------------------------------------------------------------------------------------

def affine(image, transform, fill=FILL):
    """Output pixel (x, y) reads input (round(a0 x + a1 y + a2), round(b0 x + b1 y + b2)), `transform` =
    [a0, a1, a2, b0, b1, b2]; points outside the image read `fill`. Equals tf.raw_ops.ImageProjectiveTransformV3
    (NEAREST, CONSTANT; float32 coordinates in the same order, rounding half away from zero) but ~3x faster on
    CPU: one row gather from the image with a one-pixel `fill` border, where every outside point lands."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    t = tf.cast(transform, tf.float32)
    ys = tf.cast(tf.range(h), tf.float32)[:, None]
    xs = tf.cast(tf.range(w), tf.float32)[None, :]

    def nearest(v, size):  # into the border [-1, size] first (also keeps the int cast from overflowing)
        v = tf.clip_by_value(v, -1.0, tf.cast(size, tf.float32))
        return tf.cast(v + 0.5 * tf.sign(v), tf.int32) + 1  # truncation of v +- 0.5, +1 for the border

    index = nearest(t[3] * xs + t[4] * ys + t[5], h) * (w + 2) + nearest(t[0] * xs + t[1] * ys + t[2], w)
    table = tf.reshape(tf.pad(image, [[1, 1], [1, 1], [0, 0]], constant_values=tf.cast(fill, image.dtype)),
                       [-1, shape[2]])
    return tf.reshape(tf.gather_nd(table, index[..., None]), shape)  # gather_nd: as tf.gather, ~1.2x faster


def rotate(image, degrees, fill=FILL):
    """Rotate about the image centre by `degrees` with the reference's matrix (positive: counter-clockwise on screen,
    +90 is np.rot90; the reference's docstring says clockwise, its matrix does this)."""
    rad = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    h = tf.cast(tf.shape(image)[0], tf.float32) - 1.0
    w = tf.cast(tf.shape(image)[1], tf.float32) - 1.0
    cos, sin = tf.cos(rad), tf.sin(rad)
    x_off = (w - (cos * w - sin * h)) / 2.0
    y_off = (h - (sin * w + cos * h)) / 2.0
    return affine(image, tf.stack([cos, -sin, x_off, sin, cos, y_off]), fill)


def shear_x(image, level, fill=FILL):
    """Output (x, y) reads input (x + level * y, y)."""
    level = tf.cast(level, tf.float32)
    return affine(image, tf.stack([1.0, level, 0.0, 0.0, 1.0, 0.0]), fill)


def shear_y(image, level, fill=FILL):
    """Output (x, y) reads input (x, y + level * x)."""
    level = tf.cast(level, tf.float32)
    return affine(image, tf.stack([1.0, 0.0, 0.0, level, 1.0, 0.0]), fill)


def _shift(image, pixels, axis, fill):
    """Translation along `axis` exactly as the nearest-neighbour transform does it (output i reads input
    round(i + pixels), half away from zero, `fill` outside), as a slice and a concat (~10x faster than a gather)."""
    pixels = tf.cast(pixels, tf.float32)
    shape = tf.shape(image)
    size = shape[axis]
    s = tf.clip_by_value(tf.cast(tf.floor(pixels + 0.5), tf.int32), -size, size)  # the shift for i + pixels >= 0
    # A negative tie (pixels = k + 0.5 <= -0.5) rounds i + pixels = -0.5 to -1: one more filled row or column.
    tie = tf.cast((tf.floor(pixels + 0.5) == pixels + 0.5) & (s <= 0), tf.int32)
    left = tf.minimum(tf.maximum(-s, 0) + tie, size)
    right = tf.maximum(s, 0)
    kept = tf.maximum(size - left - right, 0)
    begin = tf.one_hot(axis, 3, on_value=tf.minimum(left + s, size - kept), off_value=0)

    def with_size(n):
        return tf.tensor_scatter_nd_update(shape, [[axis]], [n])

    fill = tf.constant(fill, image.dtype)
    parts = [tf.fill(with_size(left), fill), tf.slice(image, begin, with_size(kept)), tf.fill(with_size(right), fill)]
    return tf.concat(parts, axis)


def translate_x(image, pixels, fill=FILL):
    """Output (x, y) reads input (x + pixels, y): positive `pixels` moves the content left (PIL/reference)."""
    return _shift(image, pixels, 1, fill)


def translate_y(image, pixels, fill=FILL):
    """Output (x, y) reads input (x, y + pixels): positive `pixels` moves the content up."""
    return _shift(image, pixels, 0, fill)


def cutout(image, pad_size, center, fill=FILL):
    """Fill rows [cy - pad, cy + pad) x columns [cx - pad, cx + pad) (clipped to the image) with `fill`.
    `center` = (cy, cx) int tensors; the reference draws them uniformly over the whole image."""
    shape = tf.shape(image)
    lo = [tf.clip_by_value(tf.cast(center[i], tf.int32) - pad_size, 0, shape[i]) for i in range(2)]
    hi = [tf.clip_by_value(tf.cast(center[i], tf.int32) + pad_size, lo[i], shape[i]) for i in range(2)]
    box = tf.fill(tf.stack([hi[0] - lo[0], hi[1] - lo[1], shape[2]]), tf.constant(fill, image.dtype))
    band = tf.concat([image[lo[0]:hi[0], :lo[1]], box, image[lo[0]:hi[0], hi[1]:]], 1)  # slices and concats only
    return tf.concat([image[:lo[0]], band, image[hi[0]:]], 0)
