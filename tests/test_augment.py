"""RandAugment / AutoAugment ops against direct numpy computations of the TF reference semantics."""

import numpy as np
import pytest
import tensorflow as tf

from regnet_tf.data import augment as A


RNG = np.random.RandomState(0)
IMAGE = RNG.randint(0, 256, (8, 10, 3)).astype(np.uint8)
# A low-contrast image, so autocontrast and equalize have something to stretch; channel 2 is constant.
DULL = np.stack([RNG.randint(40, 90, (8, 10)), RNG.randint(100, 200, (8, 10)), np.full((8, 10), 77)], -1)
DULL = DULL.astype(np.uint8)


def run(fn, *args):
    out = fn(tf.constant(IMAGE if not args else args[0]), *args[1:])
    assert out.dtype == tf.uint8
    return out.numpy()


def np_blend(degenerate, image, factor):
    a = np.asarray(degenerate, np.float32)
    b = image.astype(np.float32)
    return np.clip(a + np.float32(factor) * (b - a), 0, 255).astype(np.uint8)


def np_gray(image):
    flat = image.astype(np.float32) * np.float32(1 / 255)
    gray = flat @ np.float32([0.2989, 0.587, 0.114])
    return np.floor(gray * np.float32(255.5))[..., None]


def np_round(v):  # std::round: half away from zero
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


# ---------------------------------------------------------------------------------------------------------------
# Level mapping (tfmodels.md 3.1)
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m, expected", [
    (10, dict(Rotate=30.0, ShearX=0.3, TranslateX=100.0, Color=1.9, Posterize=4, Solarize=256, SolarizeAdd=110,
              Cutout=40)),
    (15, dict(Rotate=45.0, ShearX=0.45, TranslateX=150.0, Color=2.8, Posterize=6, Solarize=384, SolarizeAdd=165,
              Cutout=60)),
])
def test_level_to_arg(m, expected):
    args = A.level_to_arg(m)  # defaults translate_const=100, cutout_const=40
    for name, value in expected.items():
        assert args[name] == pytest.approx(value), name
    assert args["ShearY"] == args["ShearX"] and args["TranslateY"] == args["TranslateX"]
    assert args["Contrast"] == args["Brightness"] == args["Sharpness"] == args["Color"]
    assert args["AutoContrast"] is args["Equalize"] is args["Invert"] is None
    assert set(args) == set(A.RANDAUGMENT_OPS)
    assert A.level_to_arg(m, translate_const=10)["TranslateX"] == pytest.approx(m)  # the TF2 config's constant
    assert A.level_to_arg(m, cutout_const=100)["Cutout"] == 10 * m
    assert isinstance(args["Posterize"], int) and isinstance(args["Cutout"], int)


def test_level_to_arg_truncates_like_the_reference():
    args = A.level_to_arg(3)  # int((3 / 10) * 256) = int(76.8) = 76, int(0.3 * 110) = 33, int(0.3 * 4) = 1
    assert (args["Solarize"], args["SolarizeAdd"], args["Posterize"], args["Cutout"]) == (76, 33, 1, 12)


# ---------------------------------------------------------------------------------------------------------------
# Colour ops
# ---------------------------------------------------------------------------------------------------------------

def test_invert():
    np.testing.assert_array_equal(run(A.invert), 255 - IMAGE)


@pytest.mark.parametrize("bits, mask", [(4, 0xF0), (6, 0xFC), (1, 0x80), (8, 0xFF), (10, 0xFF), (0, 0)])
def test_posterize(bits, mask):
    np.testing.assert_array_equal(run(A.posterize, IMAGE, bits), IMAGE & mask)


@pytest.mark.parametrize("threshold", [0, 77, 128, 255, 256, 384])
def test_solarize(threshold):
    expected = np.where(IMAGE.astype(int) < threshold, IMAGE, 255 - IMAGE)
    np.testing.assert_array_equal(run(A.solarize, IMAGE, threshold), expected)
    if threshold >= 256:  # the reference's no-op at M >= 10
        np.testing.assert_array_equal(expected, IMAGE)


@pytest.mark.parametrize("addition", [110, 165, 0, -30, 300])
def test_solarize_add(addition):
    added = np.clip(IMAGE.astype(int) + addition, 0, 255)
    expected = np.where(IMAGE < 128, added, IMAGE)
    np.testing.assert_array_equal(run(A.solarize_add, IMAGE, addition), expected)


@pytest.mark.parametrize("factor", [0.1, 0.55, 1.0, 1.9, 2.8])
def test_brightness(factor):
    np.testing.assert_array_equal(run(A.brightness, IMAGE, factor), np_blend(0.0, IMAGE, factor))


@pytest.mark.parametrize("factor", [0.1, 0.55, 1.9, 2.8])
def test_color_blends_with_grayscale(factor):
    expected = np_blend(np_gray(IMAGE), IMAGE, factor)
    got = run(A.color, IMAGE, factor)
    assert np.abs(got.astype(int) - expected).max() <= 1  # float32 summation order of the grey value
    assert np.mean(got == expected) > 0.95


def test_grayscale_matches_tf_image():
    ours = A.grayscale(tf.constant(IMAGE)).numpy()
    theirs = tf.image.rgb_to_grayscale(tf.constant(IMAGE)).numpy().astype(np.float32)
    assert np.abs(ours - theirs).max() <= 1 and np.mean(ours == theirs) > 0.95


# Contrast, three conventions (docs/AUGMENT.md "Contrast"): sizes include non-square ones and one with
# H*W/256 = 292.97 > 255 (tf1's "mean" is clipped); channel ranges differ, so per-channel and grey means differ.
CONTRAST_SIZES = [(1, 2), (8, 10), (37, 61), (224, 224), (250, 300)]


def contrast_image(h, w):
    if (h, w) == (1, 2):  # grey mean exactly 100.5: PIL rounds it up to 101
        return np.array([[[100] * 3, [101] * 3]], np.uint8)
    rng = np.random.default_rng(h * 1000 + w)
    return np.stack([rng.integers(lo, hi, (h, w)) for lo, hi in ((10, 120), (60, 250), (0, 40))], -1).astype(np.uint8)


def np_pil_luma(image):  # PIL's RGB -> "L": ITU-R 601-2 luma in 16-bit fixed point, rounded
    r, g, b = (image[..., i].astype(np.int64) for i in range(3))
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16


def np_contrast(image, factor, mode):
    h, w = image.shape[:2]
    if mode == "tf1":  # the TF1 reference: sum(256-bin histogram) / 256 = H*W/256, clipped, truncated
        return np_blend(np.floor(min(h * w / 256.0, 255.0)), image, factor)
    if mode == "pil":  # ImageEnhance.Contrast: a constant image at int(mean + 0.5) of the L image, Image.blend
        return np_blend(int(np_pil_luma(image).mean() + 0.5), image, factor)
    # tf.image.adjust_contrast on uint8: x / 255, per-channel mean, (x - m) * f + m, x 255.5, clipped, truncated
    x = image.astype(np.float32) * np.float32(1 / 255)
    mean = x.mean(axis=(0, 1), dtype=np.float64)
    return np.trunc(np.clip(((x - mean) * factor + mean) * 255.5, 0, 255)).astype(np.uint8)


@pytest.mark.parametrize("mode", A.CONTRAST_MODES)
@pytest.mark.parametrize("factor", [0.1, 1.0, 1.9])
def test_contrast_modes_against_numpy(mode, factor):
    for h, w in CONTRAST_SIZES:
        image = contrast_image(h, w)
        got = run(A.contrast, image, factor, mode)
        np.testing.assert_array_equal(got, np_contrast(image, factor, mode), err_msg=f"{mode} {h}x{w}")


@pytest.mark.parametrize("factor", [0.1, 1.0, 1.9])
def test_contrast_pil_equals_pillow(factor):
    pil = pytest.importorskip("PIL.Image")
    enhance = pytest.importorskip("PIL.ImageEnhance")
    for h, w in CONTRAST_SIZES:
        image = contrast_image(h, w)
        expected = np.asarray(enhance.Contrast(pil.fromarray(image)).enhance(factor))
        np.testing.assert_array_equal(run(A.contrast, image, factor, "pil"), expected)


def test_contrast_modes_differ_and_are_threaded_through_the_policies():
    image = contrast_image(250, 300)
    # tf1's clipped "mean" (255) against the real means (~70 grey): the modes are far apart here
    outs = {mode: run(A.contrast, image, 1.9, mode) for mode in A.CONTRAST_MODES}
    assert np.abs(outs["tf1"].astype(int) - outs["pil"]).max() > 100
    assert np.abs(outs["model_garden"].astype(int) - outs["pil"]).max() > 10
    x = tf.constant(image)
    for mode in A.CONTRAST_MODES:
        ra = only("Contrast", magnitude=10, include_identity=False, contrast_mode=mode)  # factor 1.9
        np.testing.assert_array_equal(ra(x, [0, 1]), outs[mode])
        aa = A.AutoAugment([[("Contrast", 1.0, 10)]], contrast_mode=mode)
        np.testing.assert_array_equal(aa(x, [0, 1]), outs[mode])
    assert A.RandAugment().contrast_mode == A.AutoAugment().contrast_mode == "pil"
    for bad in (lambda: A.RandAugment(contrast_mode="tf2"), lambda: A.AutoAugment(contrast_mode="PIL")):
        with pytest.raises(ValueError, match="contrast_mode must be one of"):
            bad()


def test_contrast_mode_from_data_config(monkeypatch):
    from regnet_tf.data.config import DataConfig

    made = []
    monkeypatch.setattr(A, "RandAugment", lambda **kw: made.append(("ra", kw["contrast_mode"])))
    monkeypatch.setattr(A, "AutoAugment", lambda policy, **kw: made.append(("aa", kw["contrast_mode"])))
    A.augmenter(DataConfig(randaug_layers=2, contrast_mode="tf1"))
    A.augmenter(DataConfig(autoaugment="v0", contrast_mode="model_garden"))
    assert made == [("ra", "tf1"), ("aa", "model_garden")]
    assert DataConfig().contrast_mode == "pil"
    with pytest.raises(ValueError, match="contrast_mode must be one of"):
        DataConfig(contrast_mode="tf2")


@pytest.mark.parametrize("factor", [0.1, 0.55, 1.9, 2.8])
def test_sharpness(factor):
    x = IMAGE.astype(np.int64)
    h, w = x.shape[:2]
    total = sum(x[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    smooth = x.copy()
    smooth[1:-1, 1:-1] = (total + 4 * x[1:-1, 1:-1]) // 13  # kernel [1 1 1; 1 5 1; 1 1 1] / 13, border kept
    np.testing.assert_array_equal(run(A.sharpness, IMAGE, factor), np_blend(smooth, IMAGE, factor))


@pytest.mark.parametrize("image", [IMAGE, DULL])
def test_autocontrast(image):
    expected = image.copy()
    for c in range(3):
        lo, hi = np.float32(image[..., c].min()), np.float32(image[..., c].max())
        if hi > lo:
            scale = np.float32(255.0) / (hi - lo)
            expected[..., c] = np.clip(image[..., c].astype(np.float32) * scale - lo * scale, 0, 255).astype(np.uint8)
    got = run(A.autocontrast, image)
    np.testing.assert_array_equal(got, expected)
    if image is DULL:
        assert got[..., 0].min() == 0 and got[..., 0].max() == 255
        np.testing.assert_array_equal(got[..., 2], 77)  # constant channel unchanged


def np_equalize_channel(channel):  # PIL ImageOps.equalize as the reference implements it
    hist = np.bincount(channel.ravel(), minlength=256)
    nonzero = hist[hist != 0]
    step = (nonzero.sum() - nonzero[-1]) // 255
    if step == 0:
        return channel
    lut = (np.cumsum(hist) + step // 2) // step
    lut = np.clip(np.concatenate([[0], lut[:-1]]), 0, 255)
    return lut[channel].astype(np.uint8)


@pytest.mark.parametrize("shape, high", [((8, 10, 3), 256), ((40, 37, 3), 256), ((40, 37, 3), 60), ((30, 30, 3), 2)])
def test_equalize(shape, high):
    image = np.random.RandomState(1).randint(0, high, shape).astype(np.uint8)
    image[..., 2] = 200  # constant channel: step 0, unchanged
    expected = np.stack([np_equalize_channel(image[..., c]) for c in range(3)], -1)
    got = run(A.equalize, image)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[..., 2], 200)
    if shape[0] * shape[1] >= 2 * 255:  # fewer pixels: step 0, PIL leaves the image unchanged
        assert not np.array_equal(got[..., :2], image[..., :2])


# ---------------------------------------------------------------------------------------------------------------
# Geometric ops and cutout
# ---------------------------------------------------------------------------------------------------------------

def shifted(image, dy, dx):
    """out[y, x] = in[y + dy, x + dx], 128 outside."""
    h, w = image.shape[:2]
    out = np.full_like(image, 128)
    for y in range(h):
        for x in range(w):
            if 0 <= y + dy < h and 0 <= x + dx < w:
                out[y, x] = image[y + dy, x + dx]
    return out


@pytest.mark.parametrize("pixels", [0, 3, -3, 9, -9, 10, 150, -150])
def test_translate_integer(pixels):
    np.testing.assert_array_equal(run(A.translate_x, IMAGE, pixels), shifted(IMAGE, 0, pixels))
    np.testing.assert_array_equal(run(A.translate_y, IMAGE, pixels), shifted(IMAGE, pixels, 0))


def projective(image, t):
    """The TF kernel the reference used (ImageProjectiveTransformV3, nearest, constant 128)."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(image)[None], transforms=tf.constant([list(t) + [0, 0]], tf.float32),
        output_shape=image.shape[:2], fill_value=128.0, interpolation="NEAREST", fill_mode="CONSTANT")[0].numpy()


@pytest.mark.parametrize("pixels", [2.5, -2.5, -0.5, 0.4, -7.5, 3.7, -3.7])
def test_translate_fractional_matches_the_transform_kernel(pixels):
    np.testing.assert_array_equal(run(A.translate_x, IMAGE, pixels), projective(IMAGE, [1, 0, pixels, 0, 1, 0]))
    np.testing.assert_array_equal(run(A.translate_y, IMAGE, pixels), projective(IMAGE, [1, 0, 0, 0, 1, pixels]))


@pytest.mark.parametrize("degrees, k", [(90, 1), (-90, -1), (180, 2), (0, 0)])
def test_rotate_square_odd(degrees, k):
    image = np.random.RandomState(2).randint(0, 256, (7, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(run(A.rotate, image, degrees), np.rot90(image, k, axes=(0, 1)))


def test_rotate_fills_corners():
    image = np.full((9, 9, 3), 7, np.uint8)
    out = run(A.rotate, image, 45.0)
    assert out[4, 4, 0] == 7 and (out[0, 0] == 128).all() and (out[8, 8] == 128).all()


@pytest.mark.parametrize("level", [0.3, -0.3, 0.45, -0.45])
def test_shear_constant_image(level):
    image = np.full((8, 10, 3), 7, np.uint8)
    ys, xs = np.mgrid[0:8, 0:10].astype(np.float32)
    sx = np_round(xs + np.float32(level) * ys)  # shear_x: output (x, y) reads (x + level * y, y)
    inside_x = (sx >= 0) & (sx < 10)
    np.testing.assert_array_equal(run(A.shear_x, image, level), np.where(inside_x[..., None], 7, 128).repeat(3, -1))
    sy = np_round(ys + np.float32(level) * xs)
    inside_y = (sy >= 0) & (sy < 8)
    np.testing.assert_array_equal(run(A.shear_y, image, level), np.where(inside_y[..., None], 7, 128).repeat(3, -1))
    assert (~inside_x).any() and (~inside_y).any()


@pytest.mark.parametrize("seed", range(6))
def test_affine_equals_the_transform_kernel(seed):
    rs = np.random.RandomState(seed)
    image = rs.randint(0, 256, (23, 31, 3)).astype(np.uint8)
    angle = rs.uniform(-0.8, 0.8)
    t = [np.cos(angle), -np.sin(angle) + rs.uniform(-0.3, 0.3), rs.uniform(-9, 9),
         np.sin(angle), np.cos(angle), rs.uniform(-9, 9)]
    np.testing.assert_array_equal(A.affine(tf.constant(image), t).numpy(), projective(image, t))
    for op, t in [(A.shear_x, [1, 0.37, 0, 0, 1, 0]), (A.shear_y, [1, 0, 0, -0.41, 1, 0])]:
        np.testing.assert_array_equal(run(op, image, t[1] or t[3]), projective(image, t))
    rad = np.float32(np.deg2rad(33.0))
    h, w = np.float32(22), np.float32(30)
    x_off = (w - (np.cos(rad) * w - np.sin(rad) * h)) / 2
    y_off = (h - (np.sin(rad) * w + np.cos(rad) * h)) / 2
    t = [np.cos(rad), -np.sin(rad), x_off, np.sin(rad), np.cos(rad), y_off]
    np.testing.assert_array_equal(run(A.rotate, image, 33.0), projective(image, t))
    for t in ([1, 0, 1e9, 0, 1, 0], [1, 0, -31.4, 0, 1, 22.6], [0.5, 0.5, -3e9, 2, 1, 0]):  # far out: all fill
        np.testing.assert_array_equal(A.affine(tf.constant(image), t).numpy(), projective(image, t))


@pytest.mark.parametrize("pad, cy, cx", [(2, 3, 4), (3, 0, 0), (4, 7, 9), (40, 4, 5), (0, 3, 3)])
def test_cutout(pad, cy, cx):
    expected = IMAGE.copy()
    expected[max(cy - pad, 0):min(cy + pad, 8), max(cx - pad, 0):min(cx + pad, 10)] = 128
    np.testing.assert_array_equal(run(A.cutout, IMAGE, pad, (cy, cx)), expected)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2, 3), (1, 5, 3), (3, 3, 3)])
def test_every_op_on_tiny_images(shape):
    image = np.random.RandomState(5).randint(0, 256, shape).astype(np.uint8)
    for m in (10, 15):
        for name, arg in A.level_to_arg(m).items():
            out = A.apply_op(name, tf.constant(image), arg, tf.constant([0.2, 0.9, 0.9]))
            assert out.dtype == tf.uint8 and out.shape == shape, name
    if shape[0] < 3 or shape[1] < 3:  # no interior pixel: sharpness keeps everything
        np.testing.assert_array_equal(run(A.sharpness, image, 2.8), image)


# ---------------------------------------------------------------------------------------------------------------
# RandAugment
# ---------------------------------------------------------------------------------------------------------------

def only(op, **kwargs):
    return A.RandAugment(num_layers=1, exclude_ops=[o for o in A.RANDAUGMENT_OPS if o != op], **kwargs)


def test_randaugment_applies_the_mapped_argument():
    x = tf.constant(IMAGE)
    for seed in range(3):
        s = [seed, 1]
        np.testing.assert_array_equal(only("Solarize", magnitude=5, include_identity=False)(x, s),
                                      run(A.solarize, IMAGE, 128))
        np.testing.assert_array_equal(only("Posterize", magnitude=15, include_identity=False)(x, s), IMAGE & 0xFC)
        np.testing.assert_array_equal(only("SolarizeAdd", magnitude=10, include_identity=False)(x, s),
                                      run(A.solarize_add, IMAGE, 110))
        np.testing.assert_array_equal(only("Solarize", magnitude=15, include_identity=False)(x, s), IMAGE)


def test_randaugment_signs_and_identity_branch():
    x = tf.constant(IMAGE)
    ra = only("TranslateX", magnitude=1, translate_const=30)  # +-3 px, plus the identity branch
    outs = {ra(x, [s, 0]).numpy().tobytes() for s in range(40)}
    assert outs == {shifted(IMAGE, 0, 3).tobytes(), shifted(IMAGE, 0, -3).tobytes(), IMAGE.tobytes()}
    ra = only("TranslateX", magnitude=1, translate_const=30, include_identity=False)  # TF1: no identity
    outs = {ra(x, [s, 0]).numpy().tobytes() for s in range(40)}
    assert outs == {shifted(IMAGE, 0, 3).tobytes(), shifted(IMAGE, 0, -3).tobytes()}


def test_randaugment_cutout_and_prob_to_apply():
    x = tf.constant(np.full((40, 50, 3), 9, np.uint8))
    out = only("Cutout", magnitude=5, include_identity=False)(x, [3, 4]).numpy()  # pad 20: box up to 40 x 40
    zone = out[..., 0] == 128
    rows, cols = np.nonzero(zone)
    assert zone.any() and np.ptp(rows) < 40 and np.ptp(cols) < 40
    assert zone.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
    assert (out[~zone] == 9).all()
    never = A.RandAugment(num_layers=3, magnitude=9, prob_to_apply=0.0)
    np.testing.assert_array_equal(never(tf.constant(IMAGE), [1, 2]), IMAGE)


def test_randaugment_determinism_and_randomness():
    ra = A.RandAugment(num_layers=2, magnitude=15)
    x = tf.constant(RNG.randint(0, 256, (32, 24, 3)).astype(np.uint8))
    seeded = [ra(x, [7, s]).numpy() for s in range(8)]
    again = [ra(x, tf.constant([7, s], tf.int64)).numpy() for s in range(8)]
    for a, b in zip(seeded, again):
        np.testing.assert_array_equal(a, b)
    assert len({a.tobytes() for a in seeded}) >= 4
    unseeded = {ra(x).numpy().tobytes() for _ in range(6)}
    assert len(unseeded) >= 3


@pytest.mark.parametrize("shape", [(8, 10, 3), (33, 17, 3), (64, 64, 3)])
def test_randaugment_dtype_and_shape(shape):
    ra = A.RandAugment(num_layers=3, magnitude=15)
    image = np.random.RandomState(3).randint(0, 256, shape).astype(np.uint8)
    for s in range(4):
        out = ra(tf.constant(image), [s, 9])
        assert out.dtype == tf.uint8 and out.shape == shape
    out = ra(tf.constant(image, tf.float32) + 0.7, [0, 9])  # float 0-255 input: clipped, uint8 inside, cast back
    assert out.dtype == tf.float32 and out.shape == shape
    assert np.all(out.numpy() == np.round(out.numpy())) and out.numpy().min() >= 0 and out.numpy().max() <= 255


def test_randaugment_in_dataset_map():
    images = np.random.RandomState(4).randint(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    ra = A.RandAugment(num_layers=2, magnitude=15)
    base = tf.data.Dataset.from_tensor_slices(images)
    seeded = base.enumerate().map(lambda i, x: ra(x, tf.stack([tf.constant(5, tf.int64), i])),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    assert seeded.element_spec == tf.TensorSpec((32, 32, 3), tf.uint8)
    first, second = np.stack(list(seeded.as_numpy_iterator())), np.stack(list(seeded.as_numpy_iterator()))
    np.testing.assert_array_equal(first, second)
    unseeded = base.map(ra, num_parallel_calls=2)
    assert unseeded.element_spec == tf.TensorSpec((32, 32, 3), tf.uint8)
    assert len(list(unseeded)) == 6


def test_augmenters_in_a_graph_equal_eager_calls():
    """In tf.data maps the op choice is an unlowered Case op (only the chosen branch runs): the same pixels as eager
    calls, which the op tests check (lowered to Switch/Merge, graph rewrites rounded some rotate coordinates
    differently)."""
    image = tf.constant(np.random.RandomState(6).randint(0, 256, (40, 32, 3)).astype(np.uint8))
    for augmenter in (A.RandAugment(2, 15), A.AutoAugment("v0")):
        mapped = tf.data.Dataset.range(30).map(lambda i: augmenter(image, tf.stack([i, 2 * i])))
        graph = np.stack(list(mapped.as_numpy_iterator()))
        eager = np.stack([augmenter(image, tf.constant([i, 2 * i], tf.int64)).numpy() for i in range(30)])
        np.testing.assert_array_equal(graph, eager)
        assert len({x.tobytes() for x in graph}) > 8  # the ops do vary


@pytest.mark.parametrize("shape", [(224, 224, 3), (5, 3, 3), (3, 40, 3)])
def test_sharpness_sizes(shape):
    image = np.random.RandomState(7).randint(0, 256, shape).astype(np.uint8)
    x = image.astype(np.int64)
    h, w = shape[:2]
    total = sum(x[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    smooth = x.copy()
    smooth[1:-1, 1:-1] = (total + 4 * x[1:-1, 1:-1]) // 13
    np.testing.assert_array_equal(run(A.sharpness, image, 2.8), np_blend(smooth, image, 2.8))


def test_randaugment_arguments():
    with pytest.raises(ValueError, match="Unknown ops"):
        A.RandAugment(exclude_ops=["Blur"])
    ra = A.RandAugment(exclude_ops=["Invert", "Cutout"], include_identity=False)
    assert len(ra.ops) == 14 and "Invert" not in ra.ops
    assert A.RandAugment().translate_const == 100.0 and A.RandAugment().cutout_const == 40.0


# ---------------------------------------------------------------------------------------------------------------
# AutoAugment
# ---------------------------------------------------------------------------------------------------------------

def test_autoaugment_v0():
    assert len(A.POLICY_V0) == 25 and all(len(sub) == 2 for sub in A.POLICY_V0)
    aa = A.AutoAugment("v0")
    assert (aa.translate_const, aa.cutout_const) == (250.0, 100.0)
    x = tf.constant(RNG.randint(0, 256, (20, 24, 3)).astype(np.uint8))
    outs = [aa(x, [1, s]).numpy() for s in range(10)]
    for s, o in enumerate(outs):
        assert o.dtype == np.uint8 and o.shape == (20, 24, 3)
        np.testing.assert_array_equal(o, aa(x, [1, s]).numpy())
    assert len({o.tobytes() for o in outs}) >= 4
    with pytest.raises(ValueError):
        A.AutoAugment("v9")


def test_autoaugment_probabilities_and_levels():
    x = tf.constant(IMAGE)
    always = A.AutoAugment([[("Invert", 1.0, 0), ("Posterize", 1.0, 10)]])
    np.testing.assert_array_equal(always(x, [0, 1]), (255 - IMAGE) & 0xF0)
    never = A.AutoAugment([[("Invert", 0.0, 0), ("Solarize", 0.0, 5)]])
    np.testing.assert_array_equal(never(x), IMAGE)
    half = A.AutoAugment([[("Invert", 0.5, 0)]])
    outs = {half(x, [2, s]).numpy().tobytes() for s in range(30)}
    assert outs == {IMAGE.tobytes(), (255 - IMAGE).tobytes()}


def test_float_input_is_rounded_like_the_pipeline():
    """A float 0-255 input goes through `preprocess.to_uint8` (clipped, rounded half up), the package's one uint8
    conversion, and comes back in its dtype."""
    x = tf.constant([[[-3.0, 0.49, 0.5], [1.5, 254.5, 300.0]]])
    for augment in (A.RandAugment(num_layers=0), A.AutoAugment([[("Equalize", 0.0, 0)]])):
        out = augment(x, tf.constant([1, 2]))
        assert out.dtype == tf.float32
        np.testing.assert_array_equal(out.numpy(), [[[0, 0, 1], [2, 255, 255]]])
