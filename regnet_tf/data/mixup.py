"""MixUp and CutMix on batches, returning soft labels.

    images, labels = mixup_cutmix(images, labels, num_classes=1000, mixup_alpha=0.2, cutmix_alpha=1.0, seed=seed)
    ds = ds.batch(256).map(MixupCutmix(1000, mixup_alpha=0.2))          # the same, as a Dataset.map callable

Choices (docs/AUGMENT.md):
- Partners: the batch reversed (as the TF reference), so sample i mixes with sample B - 1 - i (with an odd batch the
  middle sample mixes with itself, i.e. stays as is). No gather, deterministic given the batch.
- One lambda per batch (pycls, timm's default "batch" mode), drawn from Beta(alpha, alpha) with two gammas. CutMix
  pastes one box for the whole batch: sides int(H sqrt(1 - lam)) and int(W sqrt(1 - lam)) (each from its own image
  side: the TF2 reference computes the width from the height), placed uniformly so that it lies inside the image,
  and lam is then recomputed from the box's actual area (pycls). The labels always use that corrected lam.
- With both alphas > 0, CutMix is chosen with probability `switch_prob`, MixUp otherwise; the whole batch is mixed
  with probability `prob`. Both alphas 0 (or prob 0): images unchanged, labels one-hot (smoothed if asked).
- Label smoothing (off by default; the training code applies it in the loss) gives y (1 - ls) + ls / K before
  mixing, so labels always sum to 1. Note the TF2 reference samples each gamma as Gamma(1, rate=alpha), which
  makes its lam Uniform(0, 1) whatever alpha is; we sample Beta(alpha, alpha).
"""

import tensorflow as tf

from regnet_tf.data.augment import make_seeds


def to_soft_labels(labels, num_classes=None, label_smoothing=0.0):
    """Class ids ([B] or [B, 1] ints) to one-hot float32 [B, K]; float labels [B, K] are kept (cast to float32).
    With label_smoothing ls: y (1 - ls) + ls / K."""
    labels = tf.convert_to_tensor(labels)
    if labels.dtype.is_integer:
        if num_classes is None:
            raise ValueError("num_classes is required with integer class ids")
        labels = tf.one_hot(tf.reshape(labels, [-1]), int(num_classes), dtype=tf.float32)
    else:
        labels = tf.cast(labels, tf.float32)
    if label_smoothing:
        k = tf.cast(tf.shape(labels)[-1], tf.float32)
        labels = labels * (1.0 - label_smoothing) + label_smoothing / k
    return labels


def sample_beta(alpha, seed):
    """One sample of Beta(alpha, alpha) (alpha > 0, may be a tensor), stateless, from two Gamma(alpha, 1)."""
    g = tf.random.stateless_gamma([2], seed, alpha=tf.cast(alpha, tf.float32))
    total = g[0] + g[1]
    return tf.where(total > 0, g[0] / tf.maximum(total, 1e-30), 0.5)  # both underflow (tiny alpha): a coin's mean


def cutmix_box(height, width, lam, u):
    """The CutMix box (y0, x0, box_h, box_w) for mixing ratio `lam`: sides int(H sqrt(1 - lam)) and
    int(W sqrt(1 - lam)), top-left corner uniform over the placements inside the image (`u`: two uniforms)."""
    ratio = tf.sqrt(1.0 - tf.clip_by_value(tf.cast(lam, tf.float32), 0.0, 1.0))
    box_h = tf.cast(ratio * tf.cast(height, tf.float32), tf.int32)
    box_w = tf.cast(ratio * tf.cast(width, tf.float32), tf.int32)
    y0 = tf.minimum(tf.cast(u[0] * tf.cast(height - box_h + 1, tf.float32), tf.int32), height - box_h)
    x0 = tf.minimum(tf.cast(u[1] * tf.cast(width - box_w + 1, tf.float32), tf.int32), width - box_w)
    return y0, x0, box_h, box_w


def _mixup(images, lam):
    partner = tf.reverse(images, [0])
    mixed = images * tf.cast(lam, images.dtype) + partner * tf.cast(1.0 - lam, images.dtype)
    return mixed, lam


def _cutmix(images, lam, u):
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    y0, x0, box_h, box_w = cutmix_box(height, width, lam, u)
    box = tf.ones(tf.stack([1, box_h, box_w, 1]), images.dtype)
    mask = tf.pad(box, [[0, 0], [y0, height - y0 - box_h], [x0, width - x0 - box_w], [0, 0]])
    mixed = images * (1 - mask) + tf.reverse(images, [0]) * mask
    area = tf.cast(box_h * box_w, tf.float32) / tf.cast(height * width, tf.float32)
    return mixed, 1.0 - area  # lam corrected by the box's actual area


def mixup_cutmix(images, labels, num_classes=None, mixup_alpha=0.2, cutmix_alpha=0.0, prob=1.0, switch_prob=0.5,
                 label_smoothing=0.0, seed=None):
    """MixUp or CutMix on a batch: images float [B, H, W, C], labels int class ids [B] (with num_classes) or soft
    [B, K]. Returns (images, soft labels float32 [B, K] summing to 1). `seed`: int tensor of shape [2] (stateless)
    or None (fresh randomness)."""
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise TypeError(f"mixup_cutmix needs float images, got {images.dtype.name}")
    labels = to_soft_labels(labels, num_classes, label_smoothing)
    use_mixup, use_cutmix = mixup_alpha > 0, cutmix_alpha > 0
    if not (use_mixup or use_cutmix) or prob <= 0:
        return images, labels
    seeds = make_seeds(seed, 2)
    u = tf.random.stateless_uniform([4], seeds[0])
    if use_mixup and use_cutmix:
        cut = u[1] < switch_prob
    else:
        cut = tf.constant(use_cutmix)
    alpha = tf.where(cut, float(cutmix_alpha or 1.0), float(mixup_alpha or 1.0))
    lam = sample_beta(alpha, seeds[1])

    def mix():
        if use_mixup and use_cutmix:
            mixed, lam_used = tf.cond(cut, lambda: _cutmix(images, lam, u[2:]), lambda: _mixup(images, lam))
        elif use_cutmix:
            mixed, lam_used = _cutmix(images, lam, u[2:])
        else:
            mixed, lam_used = _mixup(images, lam)
        return mixed, lam_used * labels + (1.0 - lam_used) * tf.reverse(labels, [0])

    if prob >= 1:
        return mix()
    return tf.cond(u[0] < prob, mix, lambda: (tf.identity(images), labels))


class MixupCutmix:
    """mixup_cutmix with a fixed configuration, as a callable for `Dataset.map` on batches:
    `ds.batch(b).map(MixupCutmix(1000, mixup_alpha=0.2, cutmix_alpha=1.0))`."""

    def __init__(self, num_classes=None, mixup_alpha=0.2, cutmix_alpha=0.0, prob=1.0, switch_prob=0.5,
                 label_smoothing=0.0):
        self.config = dict(num_classes=num_classes, mixup_alpha=float(mixup_alpha), cutmix_alpha=float(cutmix_alpha),
                           prob=float(prob), switch_prob=float(switch_prob), label_smoothing=float(label_smoothing))

    def __repr__(self):
        return "MixupCutmix(" + ", ".join(f"{k}={v}" for k, v in self.config.items()) + ")"

    def __call__(self, images, labels, seed=None):
        return mixup_cutmix(images, labels, seed=seed, **self.config)
