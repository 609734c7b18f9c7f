"""RandAugment and AutoAugment with the TF reference semantics, in plain TensorFlow ops.

The 16 ops of the TF reference (tensorflow/tpu `autoaugment.py`, tensorflow/models `official/vision/ops/augment.py`)
act on a uint8 HxWx3 tensor. The magnitude M maps to op arguments as the reference does (`level_to_arg`, M is not
clipped): rotate +-M/10*30 degrees, shear +-M/10*0.3, translate +-M/10*translate_const pixels, enhance factor
M/10*1.8+0.1 (color, contrast, brightness, sharpness), posterize int(M/10*4) bits, solarize threshold int(M/10*256),
solarize-add int(M/10*110) on pixels < 128, cutout half-side int(M/10*cutout_const); geometric ops and cutout fill
with 128. Each layer picks one op uniformly with a Case op (only that branch runs; see `switch_case`).

Choices on the reference quirks (docs/AUGMENT.md has the details):
- translate_const defaults to 100 (TF1 and the RandAugment class; the ResNet-RS code used it); the TF2 *config*
  default is 10. Pass `translate_const=10.0` to match Model Garden's ResNet-RS runs.
- Solarize is a no-op for M >= 10 (threshold >= 256) and posterize keeps more bits as M grows (6 bits at M=15);
  kept as is, since the recipes were tuned with these semantics.
- `magnitude_std` is not implemented (the reference's version ignores the std and acts as std=1).
- Contrast blends with the mean of the grayscale image, as PIL and the fixed tensorflow/models (PR #11219); the
  older reference used H*W/256 (196 at 224 px) by mistake.
- Out-of-image pixels of rotate/shear/translate are 128 (TF1; the TF2 copy that goes through the Keras 2 transform
  defaults to fill_mode="reflect", which silently bypasses its 128 fill).
- `include_identity=True` is the TF2 reference (17 equiprobable choices, the last one identity); False is TF1 (16).

Speed: no tf.where and no broadcasting along the channel axis on images (both are slow on CPU; per-channel
constants are tiled along rows of W x 3 values instead); rotate and shear are one row gather (equal to
ImageProjectiveTransformV3, NEAREST, ~3x faster), translate a slice and a concat, cutout slices and concats,
sharpness's filter shifted-slice sums (~8x faster than a depthwise convolution); lookups use gather_nd. In graphs the
op choice is an unlowered Case op, so the 16 branches that do not run cost nothing.

Randomness is stateless: `RandAugment()(image, seed)` with an int seed tensor of shape [2] is reproducible; without a
seed, a fresh seed is drawn with `tf.random.uniform` so each call differs.
"""

import functools
import math

import tensorflow as tf

try:
    from tensorflow.python.ops.cond_v2 import indexed_case as _indexed_case
except ImportError:  # pragma: no cover - TensorFlow internals moved
    _indexed_case = None

FILL = 128
MAX_LEVEL = 10.0
RANDAUGMENT_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
                   "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
SIGNED_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})  # negated with probability 0.5


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


def contrast(image, factor):
    """PIL Contrast: blend a constant image at the (truncated) mean grayscale value with the image."""
    return _blend(tf.floor(tf.reduce_mean(grayscale(image))), image, factor)


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


# ----------------------------------------------------------------------------------------------------------------
# Magnitude -> argument, op dispatch, randomness
# ----------------------------------------------------------------------------------------------------------------

def level_to_arg(magnitude, translate_const=100.0, cutout_const=40.0):
    """The reference mapping from magnitude (0..10 nominal, not clipped) to each op's argument. Signed ops (see
    SIGNED_OPS) get the returned value negated with probability 0.5; ops without argument map to None."""
    m = float(magnitude) / MAX_LEVEL
    enhance = m * 1.8 + 0.1
    return {
        "AutoContrast": None, "Equalize": None, "Invert": None,
        "Rotate": m * 30.0,
        "Posterize": int(m * 4),
        "Solarize": int(m * 256),
        "SolarizeAdd": int(m * 110),
        "Color": enhance, "Contrast": enhance, "Brightness": enhance, "Sharpness": enhance,
        "ShearX": m * 0.3, "ShearY": m * 0.3,
        "TranslateX": m * float(translate_const), "TranslateY": m * float(translate_const),
        "Cutout": int(m * float(cutout_const)),
    }


_NO_ARG = {"AutoContrast": autocontrast, "Equalize": equalize, "Invert": invert}
_WITH_ARG = {"Rotate": rotate, "Posterize": posterize, "Solarize": solarize, "SolarizeAdd": solarize_add,
             "Color": color, "Contrast": contrast, "Brightness": brightness, "Sharpness": sharpness,
             "ShearX": shear_x, "ShearY": shear_y, "TranslateX": translate_x, "TranslateY": translate_y}


def apply_op(name, image, arg, u):
    """Apply op `name` with argument `arg` (from level_to_arg) to a uint8 image. `u`: float32 uniforms in [0, 1):
    u[0] < 0.5 negates a signed argument, u[1], u[2] place the cutout centre (row, column)."""
    if name in _NO_ARG:
        return _NO_ARG[name](image)
    if name == "Cutout":
        shape = tf.shape(image)
        center = [tf.cast(u[i + 1] * tf.cast(shape[i], tf.float32), tf.int32) for i in range(2)]
        return cutout(image, arg, [tf.minimum(center[0], shape[0] - 1), tf.minimum(center[1], shape[1] - 1)])
    if name in SIGNED_OPS:
        arg = tf.where(u[0] < 0.5, -arg, arg)
    return _WITH_ARG[name](image, arg)


def switch_case(index, branches):
    """`tf.switch_case` whose Case op is not lowered to Switch/Merge nodes in graphs (tf.data maps, tf.function).

    Lowered, every op of all 17 branches is still visited as a dead node on each call (~0.1 ms per RandAugment layer
    on CPU, a quarter of its cost); unlowered, the Case kernel runs only the chosen branch's function. Uses
    TensorFlow's internal `cond_v2.indexed_case` (as `tf.__internal__.execute_fn_for_device` does); falls back to
    `tf.switch_case` eagerly or if that is unavailable.
    """
    if _indexed_case is None or tf.executing_eagerly():
        return tf.switch_case(index, branches)
    return _indexed_case(index, branches, lower_using_switch_merge=False)


def _seed_or_fresh(seed):
    """`seed` (int tensor of shape [2]), or a fresh random one if it is None."""
    if seed is None:
        return tf.random.uniform([2], minval=0, maxval=2**31 - 1, dtype=tf.int32)
    return seed


def make_seeds(seed, num):
    """`num` stateless seeds (shape [num, 2]) from `seed` (int tensor of shape [2]), or fresh ones if seed is None."""
    return tf.random.experimental.stateless_split(tf.cast(_seed_or_fresh(seed), tf.int64), num)


def _to_uint8(image):
    if image.dtype == tf.uint8:
        return image
    return tf.cast(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), tf.uint8)


class RandAugment:
    """RandAugment (Cubuk et al., 2019) with the TF reference ops and level mapping.

    `num_layers` ops are applied in sequence, each chosen uniformly among the 16 ops (minus `exclude_ops`) plus, with
    `include_identity` (the TF2 reference), an identity choice. With `prob_to_apply`, each layer's result is kept with
    that probability. Call on a uint8 HxWx3 image (or float 0-255: clipped, cast to uint8 and back), with an optional
    int seed tensor of shape [2]; the output has the input's shape and dtype.
    """

    def __init__(self, num_layers=2, magnitude=10.0, translate_const=100.0, cutout_const=40.0,
                 include_identity=True, exclude_ops=(), prob_to_apply=None):
        unknown = set(exclude_ops) - set(RANDAUGMENT_OPS)
        if unknown:
            raise ValueError(f"Unknown ops in exclude_ops: {sorted(unknown)}; ops are {RANDAUGMENT_OPS}")
        self.num_layers = int(num_layers)
        self.magnitude = float(magnitude)
        self.translate_const = float(translate_const)
        self.cutout_const = float(cutout_const)
        self.include_identity = bool(include_identity)
        self.prob_to_apply = None if prob_to_apply is None else float(prob_to_apply)
        self.ops = tuple(op for op in RANDAUGMENT_OPS if op not in set(exclude_ops))
        self.args = level_to_arg(self.magnitude, self.translate_const, self.cutout_const)
        if not self.ops and not self.include_identity:
            raise ValueError("RandAugment needs at least one op")

    def __repr__(self):
        return (f"RandAugment(num_layers={self.num_layers}, magnitude={self.magnitude}, "
                f"translate_const={self.translate_const}, cutout_const={self.cutout_const}, "
                f"include_identity={self.include_identity}, ops={len(self.ops)}, prob_to_apply={self.prob_to_apply})")

    def __call__(self, image, seed=None):
        image = tf.convert_to_tensor(image)
        x = _to_uint8(image)
        num_choices = len(self.ops) + int(self.include_identity)
        # one draw for all layers
        uniforms = tf.random.stateless_uniform([max(self.num_layers, 1), 5], _seed_or_fresh(seed))
        for layer in range(self.num_layers):
            u = uniforms[layer]
            index = tf.minimum(tf.cast(u[0] * num_choices, tf.int32), num_choices - 1)
            op_u = u[1:4]  # one slice shared by the branches (every op outside the Case runs on each call)
            branches = [functools.partial(apply_op, op, x, self.args[op], op_u) for op in self.ops]
            if self.include_identity:
                branches.append(functools.partial(tf.identity, x))
            y = switch_case(index, branches)
            if self.prob_to_apply is not None:
                y = tf.cond(u[4] < self.prob_to_apply, functools.partial(tf.identity, y),
                            functools.partial(tf.identity, x))
            x = y
        x = tf.ensure_shape(x, image.shape)
        return x if image.dtype == tf.uint8 else tf.cast(x, image.dtype)


# AutoAugment policy v0 (Cubuk et al., 2018; the reference's `policy_v0`): (op, probability, level) pairs.
POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)),
    (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)),
    (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
    (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
    (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
    (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)),
    (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
    (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)),
    (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)),
    (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)),
    (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
    (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
    (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
POLICIES = {"v0": POLICY_V0}


class AutoAugment:
    """AutoAugment: one sub-policy chosen uniformly per image, each of its ops applied with its own probability,
    with the reference constants (translate_const 250, cutout_const 100). Same call convention as RandAugment."""

    def __init__(self, policy="v0", translate_const=250.0, cutout_const=100.0):
        if isinstance(policy, str):
            if policy not in POLICIES:
                raise ValueError(f"Unknown AutoAugment policy {policy!r}; known: {sorted(POLICIES)}")
            policy = POLICIES[policy]
        self.policy = tuple(tuple((op, float(p), float(level)) for op, p, level in sub) for sub in policy)
        for op, p, _ in (step for sub in self.policy for step in sub):
            if op not in RANDAUGMENT_OPS or not 0.0 <= p <= 1.0:
                raise ValueError(f"Bad policy step: {(op, p)}")
        self.translate_const = float(translate_const)
        self.cutout_const = float(cutout_const)
        self._max_steps = max(len(sub) for sub in self.policy)

    def _sub_policy(self, sub, image, u):
        for i, (op, p, level) in enumerate(sub):
            if p == 0.0:
                continue
            arg = level_to_arg(level, self.translate_const, self.cutout_const)[op]
            ui = u[1 + 4 * i: 5 + 4 * i]
            apply = functools.partial(apply_op, op, image, arg, ui[1:])
            image = apply() if p == 1.0 else tf.cond(ui[0] < p, apply, functools.partial(tf.identity, image))
        return image

    def __call__(self, image, seed=None):
        image = tf.convert_to_tensor(image)
        x = _to_uint8(image)
        u = tf.random.stateless_uniform([1 + 4 * self._max_steps], make_seeds(seed, 1)[0])
        n = len(self.policy)
        index = tf.minimum(tf.cast(u[0] * n, tf.int32), n - 1)
        x = switch_case(index, [functools.partial(self._sub_policy, sub, x, u) for sub in self.policy])
        x = tf.ensure_shape(x, image.shape)
        return x if image.dtype == tf.uint8 else tf.cast(x, image.dtype)
