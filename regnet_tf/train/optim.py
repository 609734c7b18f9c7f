"""Optimization pieces read from a recipe: learning-rate schedules, weight decay, the optimizer, EMA, the loss.

- `LearningRate`: per-step cosine / step / exponential / staircase / constant schedules with a linear warmup that
  replaces the start of the schedule (TF Model Garden's LinearWarmup: from `warmup_start` x lr(warmup end) to
  lr(warmup end)). The cosine spans the whole run, warmup included, and ends at `min_lr` x peak. The staircase is
  EfficientNet's: peak x decay_rate ^ floor(step / (decay_epochs x steps per epoch)), counted from step 0.
- Weight decay: `l2` adds wd x sum(w^2) / 2 over the decayed variables to the loss (the TF references' wd x
  l2_loss; the gradient gets wd x w, as PyTorch/pycls's coupled decay), `decoupled` lets the optimizer shrink the
  weights after each step (w -= lr x wd x w). Decayed variables: conv/dense kernels, or every trainable variable
  (BN and biases too) with `decay_all`.
- The optimizer: SGD with momentum, or RMSProp with TF1's semantics (`regnet_tf.train.rmsprop.TF1RMSprop`).
- `EMA`: an exponential moving average of *every* model variable, BN moving statistics included (the ResNet-RS
  setting of BN momentum 0 + EMA), with the TF references' dynamic decay min(decay, (1 + t) / (10 + t)). Keras 3's
  optimizer EMA averages trainable variables only. Evaluation and export swap the averages in.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from regnet_tf.data.mixup import to_soft_labels
from regnet_tf.train.rmsprop import TF1RMSprop

KERNEL_NAMES = ("kernel", "depthwise_kernel")


class LearningRate:
    """lr(step) for a `ScheduleConfig`, `peak` lr, `total_steps` and `steps_per_epoch` (tensor or number in)."""

    def __init__(self, config, peak, total_steps, steps_per_epoch):
        self.config, self.peak = config, float(peak)
        self.total = float(max(1, total_steps))
        self.spe = float(steps_per_epoch)
        self.warmup = min(config.warmup_epochs * self.spe, self.total)

    def schedule(self, t):
        c, frac = self.config, t / self.total
        if c.name == "cosine":
            return self.peak * (c.min_lr + (1.0 - c.min_lr) * 0.5 * (1.0 + tf.cos(math.pi * frac)))
        if c.name == "exponential":
            return self.peak * tf.pow(c.final_lr, frac)
        if c.name == "staircase":
            return self.peak * tf.pow(c.decay_rate, tf.floor(t / (c.decay_epochs * self.spe)))
        if c.name == "step":
            passed = tf.add_n([tf.cast(t >= b * self.spe, tf.float32) for b in c.boundaries] or [tf.zeros_like(t)])
            return self.peak * tf.pow(c.decay_rate, passed)
        return self.peak * tf.ones_like(t)

    def __call__(self, step):
        t = tf.cast(step, tf.float32)
        lr = self.schedule(t)
        if self.warmup > 0:
            end = self.schedule(tf.constant(self.warmup, tf.float32))
            start = self.config.warmup_start * end
            lr = tf.where(t < self.warmup, start + (end - start) * t / self.warmup, lr)
        return lr


def decayed_variables(model, decay_all=False):
    """The variables weight decay applies to: conv and dense kernels, or with `decay_all` every trainable one."""
    return [v for v in model.trainable_variables if decay_all or v.name in KERNEL_NAMES]


def l2_loss(variables, weight_decay):
    """weight_decay x sum(w^2) / 2, in float32 (the TF references' wd x tf.nn.l2_loss)."""
    if not weight_decay or not variables:
        return tf.constant(0.0)
    return weight_decay * tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])


def make_optimizer(config, learning_rate, model, loss_scale=False):
    """SGD with momentum (Nesterov option) or TF1 RMSProp (`rho`, `momentum`, `epsilon`); decoupled weight decay
    when `weight_decay_mode` is decoupled; wrapped in a LossScaleOptimizer with `loss_scale`."""
    decoupled = config.weight_decay_mode == "decoupled" and config.weight_decay > 0
    wd = config.weight_decay if decoupled else None
    if config.name == "sgd":
        opt = keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum, nesterov=config.nesterov,
                                   weight_decay=wd)
    elif config.name == "rmsprop":
        if config.nesterov:
            raise ValueError("optimizer.nesterov applies to sgd only: TF1 RMSProp has plain momentum; set "
                             "optimizer.nesterov=false")
        opt = TF1RMSprop(learning_rate=learning_rate, rho=config.rho, momentum=config.momentum,
                         epsilon=config.epsilon, weight_decay=wd)
    else:
        raise ValueError(f"unknown optimizer {config.name!r}; valid: sgd, rmsprop")
    if decoupled:
        keep = {id(v) for v in decayed_variables(model, config.decay_all)}
        opt.exclude_from_weight_decay(var_list=[v for v in model.trainable_variables if id(v) not in keep])
    if loss_scale:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def cross_entropy(labels, logits, num_classes, label_smoothing=0.0):
    """Per-example softmax cross-entropy in float32; `labels` class ids [B] or soft labels [B, K], smoothed as
    `regnet_tf.data.mixup.to_soft_labels` does: y (1 - ls) + ls / K."""
    labels = to_soft_labels(labels, num_classes, label_smoothing)
    return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))


class EMA(tf.Module):
    """Exponential moving average of all of a model's variables (trainable and not).

    Call `update()` after each optimizer step (cross-replica context, inside the training tf.function); `swap()`
    exchanges model weights and averages (call it twice to undo). `num_updates` counts the updates (the step of
    the dynamic decay). Checkpoint it with the model: it tracks the averages and the counter only.
    """

    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES.union({"_model_vars"})

    def __init__(self, model, decay, dynamic=True):
        super().__init__(name="ema")
        self.decay, self.dynamic = float(decay), bool(dynamic)
        # floating-point variables: weights and BN statistics (not the int64 states of dropout's seed generators)
        self._model_vars = [v for v in model.variables if tf.as_dtype(v.dtype).is_floating]
        self.averages = [tf.Variable(tf.identity(v.value), trainable=False, name=f"ema_{i}")
                         for i, v in enumerate(self._model_vars)]
        self.num_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="ema_num_updates")

    def current_decay(self):
        if not self.dynamic:
            return tf.constant(self.decay)
        t = tf.cast(self.num_updates, tf.float32)
        return tf.minimum(self.decay, (1.0 + t) / (10.0 + t))

    def update(self):
        d = self.current_decay()
        for a, v in zip(self.averages, self._model_vars):
            a.assign(d * a + (1.0 - d) * tf.cast(v.value, a.dtype))
        self.num_updates.assign_add(1)

    def reset(self):
        """The averages := the model's current weights (a run that starts from loaded weights)."""
        for a, v in zip(self.averages, self._model_vars):
            a.assign(tf.cast(v.value, a.dtype))

    def swap(self):
        for a, v in zip(self.averages, self._model_vars):
            current = tf.identity(v.value)
            v.assign(a)
            a.assign(current)
