"""MixUp / CutMix: soft labels, lambda consistent with the images, non-square CutMix boxes, seeds, no-op cases."""

import numpy as np
import pytest
import tensorflow as tf

from regnet_tf.data.mixup import MixupCutmix, cutmix_box, mixup_cutmix, sample_beta, to_soft_labels

B, H, W, K = 6, 12, 20, 10  # non-square images
IMAGES = (np.arange(B * H * W * 3, dtype=np.float32).reshape(B, H, W, 3) + 1.0) / 7.0  # every value distinct
LABELS = np.array([0, 1, 2, 3, 4, 5])  # partner of i is 5 - i: always a different class


def lam_from_labels(soft):
    """Each sample's weight on its own class (labels one-hot, partners of different classes)."""
    return soft[np.arange(B), LABELS]


def test_soft_labels():
    soft = to_soft_labels(tf.constant(LABELS), K).numpy()
    np.testing.assert_array_equal(soft, np.eye(K)[LABELS])
    smooth = to_soft_labels(tf.constant(LABELS[:, None]), K, label_smoothing=0.1).numpy()
    np.testing.assert_allclose(smooth, np.eye(K)[LABELS] * 0.9 + 0.01, rtol=1e-6)
    np.testing.assert_allclose(smooth.sum(1), 1.0, rtol=1e-6)
    given = np.random.RandomState(0).dirichlet(np.ones(K), B).astype(np.float32)
    np.testing.assert_allclose(to_soft_labels(tf.constant(given)).numpy(), given)
    with pytest.raises(ValueError):
        to_soft_labels(tf.constant(LABELS))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_mixup(smoothing):
    for s in range(4):
        images, soft = mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=0.4, label_smoothing=smoothing, seed=[s, 1])
        soft = soft.numpy()
        np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-5)
        lam = lam_from_labels(soft) - smoothing / K
        lam = lam / (1 - smoothing)
        assert np.allclose(lam, lam[0], atol=1e-5)  # one lambda per batch
        expected = lam[0] * IMAGES + (1 - lam[0]) * IMAGES[::-1]  # partner: the batch reversed
        np.testing.assert_allclose(images.numpy(), expected, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(soft[::-1][np.arange(B), LABELS], (1 - lam[0]) * (1 - smoothing) + smoothing / K,
                                   rtol=1e-4, atol=1e-6)


def test_cutmix_non_square_box_and_lambda():
    areas = []
    for s in range(12):
        images, soft = mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=0.0, cutmix_alpha=1.0, seed=[s, 2])
        images, soft = images.numpy(), soft.numpy()
        np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
        pasted = np.all(images != IMAGES, axis=-1)  # [B, H, W]
        np.testing.assert_array_equal(images[pasted], IMAGES[::-1][pasted])  # pasted pixels come from the partner
        np.testing.assert_array_equal(images[~pasted], IMAGES[~pasted])
        box = pasted[0]
        assert (pasted == box).all()  # one box for the whole batch
        lam = lam_from_labels(soft)
        np.testing.assert_allclose(lam, 1.0 - box.mean(), rtol=1e-6, atol=1e-6)  # lam = 1 - actual pasted area
        if box.any():
            rows, cols = np.nonzero(box)
            h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
            assert h * w == box.sum()  # a rectangle, inside the image
            ratio = np.sqrt(1 - lam[0])  # sides scale with their own image side (W != H)
            assert abs(h - H * ratio) <= 1.0 + 1e-3 and abs(w - W * ratio) <= 1.5 + 1e-3
        areas.append(box.mean())
    assert 0 < np.mean(areas) < 1 and len(set(areas)) > 3


def test_cutmix_box_geometry():
    for lam, u in [(0.75, (0.0, 0.0)), (0.75, (0.999, 0.999)), (0.0, (0.3, 0.6)), (1.0, (0.5, 0.5))]:
        y0, x0, bh, bw = [int(v) for v in cutmix_box(12, 20, lam, tf.constant(u))]
        r = np.sqrt(1 - lam)
        assert (bh, bw) == (int(12 * r), int(20 * r))
        assert 0 <= y0 <= 12 - bh and 0 <= x0 <= 20 - bw
    assert [int(v) for v in cutmix_box(12, 20, 0.75, tf.constant((0.999, 0.999)))][:2] == [6, 10]  # far corner


def test_switch_prob_and_prob():
    def is_cutmix(images):
        return np.all((images == IMAGES) | (images == IMAGES[::-1]))

    for s in range(3):
        cut = mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=1.0, seed=[s, 3])[0]
        mix = mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=1.0, cutmix_alpha=1.0, switch_prob=0.0, seed=[s, 3])[0]
        assert is_cutmix(cut.numpy()) and not is_cutmix(mix.numpy())
    kinds = {is_cutmix(mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=1.0, cutmix_alpha=1.0, seed=[s, 4])[0].numpy())
             for s in range(12)}
    assert kinds == {True, False}
    applied = [not np.array_equal(mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=1.0, prob=0.5, seed=[s, 5])[0], IMAGES)
               for s in range(20)]
    assert 0 < sum(applied) < 20


def test_alpha_zero_is_a_no_op():
    for kwargs in [dict(mixup_alpha=0.0, cutmix_alpha=0.0), dict(mixup_alpha=0.8, prob=0.0)]:
        images, soft = mixup_cutmix(IMAGES, LABELS, K, **kwargs)
        np.testing.assert_array_equal(images, IMAGES)
        np.testing.assert_array_equal(soft, np.eye(K)[LABELS])


def test_seed_determinism():
    a = mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=0.2, cutmix_alpha=1.0, seed=[3, 4])
    b = mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=0.2, cutmix_alpha=1.0, seed=tf.constant([3, 4], tf.int64))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    outs = {mixup_cutmix(IMAGES, LABELS, K, mixup_alpha=0.2, cutmix_alpha=1.0)[1].numpy().tobytes() for _ in range(5)}
    assert len(outs) >= 3


def test_beta_depends_on_alpha():
    """Beta(0.2, 0.2) piles up near 0 and 1 (the TF2 reference's gamma parametrization gives Uniform(0, 1))."""
    small = np.array([float(sample_beta(0.2, [s, 6])) for s in range(200)])
    flat = np.array([float(sample_beta(1.0, [s, 7])) for s in range(200)])
    assert ((small > 0.1) & (small < 0.9)).mean() < 0.45
    assert 0.65 < ((flat > 0.1) & (flat < 0.9)).mean() < 0.95
    assert abs(small.mean() - 0.5) < 0.1 and (0 <= small).all() and (small <= 1).all()


def test_in_dataset_map_on_batches():
    ds = tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(3, drop_remainder=True)
    mixed = ds.map(MixupCutmix(K, mixup_alpha=0.2, cutmix_alpha=1.0, label_smoothing=0.1))
    assert mixed.element_spec[1].shape.as_list() == [3, K]
    for images, soft in mixed:
        assert images.shape == (3, H, W, 3)
        np.testing.assert_allclose(soft.numpy().sum(1), 1.0, rtol=1e-5)
    with pytest.raises(TypeError):
        mixup_cutmix(tf.constant(IMAGES, tf.int32), LABELS, K)
