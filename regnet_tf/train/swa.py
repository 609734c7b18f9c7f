"""Stochastic weight averaging (Izmailov et al. 2018; fast scaling, section 6.1): the equal-weight average of
snapshots of the trainable weights, with BN statistics recomputed for the averaged weights.

- Snapshots (`SWA.update`, between two compiled loops, cross-replica context): from step ceil(swa.start x total)
  on, at every step that is a multiple of round(swa.every_epochs x steps per epoch) (the end of every
  `every_epochs` epochs) and always at the last step (`snapshot_due`). The average after n snapshots is
  a_n = (a_{n-1} x (n - 1) + w_n) / n, so a_1 = w_1 exactly.
- BN moving statistics are not averaged: before the averages are evaluated or exported, `recompute_bn` runs the
  model in training mode on `swa.bn_examples` training images (0: one epoch) with the training augmentation, and
  sets every BN layer's moving mean / variance to the equal average over those batches of the per-batch statistics
  (pycls's precise BN, torch.optim.swa_utils.update_bn with momentum None). The per-batch statistics are read
  exactly: during the pass the layers' momentum is 0, so a moving statistic *is* the last batch's; the average is
  taken here in float64, over the per-replica batches, never through a momentum.
- `swap()` exchanges the model's trainable weights and BN statistics with the averages and the recomputed
  statistics (twice undoes it). The module tracks the averages, the recomputed statistics, the snapshot counter and
  the snapshot count the statistics belong to: a checkpoint restores the evaluated weights exactly.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf


def snapshot_steps(total, steps_per_epoch, start, every_epochs):
    """(first step, period) of the snapshot schedule: steps >= first that are multiples of period, and `total`."""
    return math.ceil(start * total), max(1, round(every_epochs * steps_per_epoch))


def snapshot_due(step, total, first, period):
    return step == total or (step >= first and step % period == 0)


def next_snapshot(step, first, period):
    """The first snapshot step after `step` (the last step aside)."""
    k = max(step + 1, first)
    return -(-k // period) * period


def bn_batches(bn_examples, global_batch_size, steps_per_epoch):
    """Batches of the BN recompute: ceil(bn_examples / global batch), or one epoch when bn_examples is 0."""
    return -(-bn_examples // global_batch_size) if bn_examples else steps_per_epoch


def weights_note(ema, swa):
    """How the evaluated weights were made: ', EMA weights', ', SWA of n snapshots' or ''."""
    if swa is not None and int(swa.count.numpy()):
        n = int(swa.count.numpy())
        return f", SWA of {n} snapshot{'s' if n > 1 else ''}"
    return ", EMA weights" if ema is not None else ""


def bn_layers(model):
    """The BatchNormalization layers of a model, nested models included."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            out.append(layer)
        elif hasattr(layer, "layers"):
            out += bn_layers(layer)
    return out


class SWA(tf.Module):
    """The running equal-weight average of a model's trainable weights (`averages`, `count` snapshots) and the BN
    statistics recomputed for it (`bn_stats`, valid for `bn_count` snapshots). Create under the strategy's scope."""

    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES.union(
        {"_model", "_weights", "_bn_layers", "_bn_vars", "_bn_step"})

    def __init__(self, model):
        super().__init__(name="swa")
        self._model = model
        self._weights = [v for v in model.trainable_variables if tf.as_dtype(v.dtype).is_floating]
        self._bn_layers = bn_layers(model)
        self._bn_vars = [v for layer in self._bn_layers for v in (layer.moving_mean, layer.moving_variance)]
        self._bn_step = None
        self.averages = [tf.Variable(tf.identity(v.value), trainable=False, name=f"swa_{i}")
                         for i, v in enumerate(self._weights)]
        self.bn_stats = [tf.Variable(tf.identity(v.value), trainable=False, name=f"swa_bn_{i}")
                         for i, v in enumerate(self._bn_vars)]
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name="swa_count")
        self.bn_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="swa_bn_count")

    @tf.function
    def update(self):
        """Adds the current weights as a snapshot (cross-replica context)."""
        n = tf.cast(self.count, tf.float32)
        for a, v in zip(self.averages, self._weights):
            a.assign((a * n + tf.cast(v.value, a.dtype)) / (n + 1.0))
        self.count.assign_add(1)

    @tf.function
    def swap(self):
        for a, v in zip(self.averages + self.bn_stats, self._weights + self._bn_vars):
            current = tf.identity(v.value)
            v.assign(a)
            a.assign(current)

    def bn_current(self):
        return int(self.bn_count.numpy()) == int(self.count.numpy()) > 0

    def recompute_bn(self, strategy, dataset, num_batches, log=None):
        """Sets `bn_stats` to the precise BN statistics of the averaged weights over `num_batches` batches of
        `dataset` (a distributed training dataset). The model's own weights and statistics are left unchanged."""
        self.swap()  # the model holds the averages (and stale statistics)
        try:
            self.bn_stats_assign(precise_bn_stats(self, strategy, dataset, num_batches))
        finally:
            self.swap()
        self.bn_count.assign(self.count)
        if log:
            log(f"SWA: BN statistics recomputed on {num_batches} training batches for the average of "
                f"{int(self.count.numpy())} snapshots")

    def bn_stats_assign(self, values):
        """While swapped: the model's BN variables get `values` (they go to `bn_stats` on the swap back)."""
        for v, value in zip(self._bn_vars, values):
            v.assign(tf.constant(value, v.dtype))


def precise_bn_stats(swa, strategy, dataset, num_batches):
    """The mean over `num_batches` batches (and over replicas, each with its per-replica batch) of every BN layer's
    batch mean and (biased) batch variance, in the order of `swa._bn_vars`, as float64 arrays. Other non-trainable
    state the training-mode pass touches (the dropout seed generators) is put back afterwards."""
    layers, bn_vars = swa._bn_layers, swa._bn_vars  # noqa: SLF001
    model = swa._model  # noqa: SLF001
    bn_ids = {id(v) for v in bn_vars}
    others = [v for v in model.non_trainable_variables if id(v) not in bn_ids]
    momenta = [layer.momentum for layer in layers]
    saved = [tf.identity(v.value) for v in others]
    for layer in layers:
        layer.momentum = 0.0
    try:
        if swa._bn_step is None:  # noqa: SLF001 - traced once, with momentum 0
            def replica(images, labels):  # noqa: ARG001
                model(images, training=True)
                return [tf.identity(v.value) for v in bn_vars]

            @tf.function
            def step(iterator):
                out = strategy.run(replica, args=next(iterator))
                return [strategy.reduce("MEAN", o, axis=None) for o in out]

            swa._bn_step = step  # noqa: SLF001
        sums = [np.zeros(v.shape, np.float64) for v in bn_vars]
        iterator = iter(dataset)
        for _ in range(num_batches):
            for s, value in zip(sums, swa._bn_step(iterator)):  # noqa: SLF001
                s += value.numpy().astype(np.float64)
    finally:
        for layer, m in zip(layers, momenta):
            layer.momentum = m
        for v, value in zip(others, saved):
            v.assign(value)
    return [s / max(num_batches, 1) for s in sums]
