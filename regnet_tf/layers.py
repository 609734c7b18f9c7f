"""Keras layers of our own (registered serializable, so ``model.save("m.keras")`` round-trips)."""

from __future__ import annotations

import functools
import math
import warnings

import keras
import tensorflow as tf

from regnet_tf.padding import check_padding

# pycls init: conv kernels ~ N(0, sqrt(2 / fan_out)), fan_out = k * k * C_out (groups ignored, as Keras does).
CONV_INIT = {"class_name": "VarianceScaling",
             "config": {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"}}
DENSE_INIT = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.01}}


@keras.saving.register_keras_serializable(package="regnet_tf")
class Conv2D(keras.layers.Conv2D):
    """2D convolution with symmetric zero padding of (k - 1) // 2 * dilation and a fast grouped path.

    - ``padding="symmetric"`` (default) pads both sides for every stride (as PyTorch/pycls/timm and the TF1 ResNet
      ``fixed_padding``), so the output size is (h - 1) // s + 1 for odd k, and weights trained with symmetric
      padding reproduce exactly. ``padding="tf_same"`` is TensorFlow's "SAME" (same output size; for stride 2 on
      even inputs it pads (0, 1) instead of (1, 1)), for weights trained that way (see `regnet_tf.padding`).
    - Grouped convolutions call ``tf.nn.conv2d`` with a (k, k, C_in / groups, C_out) filter, which TensorFlow
      runs natively. Keras 3's own ``Conv2D(groups > 1)`` wraps the op in ``tf.function(jit_compile=True)``,
      whose CPU gradient is about 19x slower (see docs/DEVIATIONS.md). Same kernel layout and weight names
      as ``keras.layers.Conv2D``, so weights move between the two.
    - ``split_groups=True`` computes a grouped convolution as ``groups`` plain convolutions on channel slices of
      the input and kernel, concatenated (same kernel variable and weights): for runtimes and converters without
      native grouped convolutions (`regnet_tf.inference.split_grouped_convs`). Default False.

    Channels-last only.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="symmetric", groups=1, use_bias=False,
                 kernel_initializer=CONV_INIT, split_groups=False, **kwargs):
        if kwargs.pop("data_format", "channels_last") not in (None, "channels_last"):
            raise ValueError("regnet_tf Conv2D supports data_format='channels_last' only")
        super().__init__(filters, kernel_size, strides=strides, padding="valid", groups=groups,
                         use_bias=use_bias, kernel_initializer=kernel_initializer,
                         data_format="channels_last", **kwargs)
        self.pad_mode = check_padding(padding)
        k, d = self.kernel_size, self.dilation_rate
        self.pads = tuple((k_ - 1) // 2 * d_ for k_, d_ in zip(k, d))
        self.split_groups = bool(split_groups)

    def convolution_op(self, inputs, kernel):
        dtype = inputs.dtype
        if dtype in (tf.float16, tf.bfloat16) and self.groups > 1 and cpu_only():
            inputs = tf.cast(inputs, tf.float32)  # TF has no float16/bfloat16 grouped-conv gradient on CPU
        kernel = tf.cast(kernel, inputs.dtype)
        ph, pw = self.pads
        odd = all(k % 2 for k in self.kernel_size)
        if self.pad_mode == "tf_same" or (self.strides == (1, 1) and odd):
            padding = "SAME"  # TF's own rule; symmetric for odd kernels at stride 1
        else:
            # tf.pad + VALID rather than explicit conv padding: TF has no CPU gradient for grouped convs with
            # explicit padding.
            if ph or pw:
                inputs = tf.pad(inputs, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
            padding = "VALID"
        strides, dilations = (1, *self.strides, 1), (1, *self.dilation_rate, 1)
        if self.groups > 1 and self.split_groups:
            y = tf.concat([tf.nn.conv2d(x, k, strides=strides, padding=padding, dilations=dilations)
                           for x, k in zip(tf.split(inputs, self.groups, -1), tf.split(kernel, self.groups, -1))], -1)
        elif self.groups > 1 and not native_grouped_conv_gradients():
            y = grouped_conv2d(inputs, kernel, strides, padding, dilations, self.groups)
            # grappler would fuse conv + BN + ReLU into _FusedConv2D, whose CPU kernel (without oneDNN) rejects groups
            y = tf.ensure_shape(y, y.shape)
        else:
            y = tf.nn.conv2d(inputs, kernel, strides=strides, padding=padding, dilations=dilations)
        return tf.cast(y, dtype)

    def compute_output_shape(self, input_shape):
        out = list(input_shape[:-1]) + [self.filters]
        for i in (0, 1):
            n = input_shape[1 + i]
            if n is not None:
                k = (self.kernel_size[i] - 1) * self.dilation_rate[i] + 1
                out[1 + i] = (n + 2 * self.pads[i] - k) // self.strides[i] + 1
                if self.pad_mode == "tf_same":
                    out[1 + i] = -(-n // self.strides[i])
        return tuple(out)

    def get_config(self):
        config = super().get_config()
        config["padding"] = self.pad_mode
        config["split_groups"] = self.split_groups
        config.pop("data_format", None)
        return config


def cpu_only() -> bool:
    """No GPU or TPU devices: every op runs on the CPU."""
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


@functools.lru_cache(maxsize=None)
def native_grouped_conv_gradients() -> bool:
    """Whether TensorFlow computes grouped-convolution gradients natively here: on a GPU, or on a CPU with oneDNN.

    TensorFlow's CPU kernels without oneDNN (`TF_ENABLE_ONEDNN_OPTS=0`, the default on CPUs without AVX-512, e.g.
    many AMD EPYCs) run grouped convolutions forward but have no gradient for them ("Gradients for grouped
    convolutions are not supported on CPU"). Then `grouped_conv2d` computes the gradients per group and warns once.
    The switch is read when TensorFlow is imported: the command-line tools (`regnet_tf.cli`) set it; importing
    regnet_tf sets nothing.
    """
    if not cpu_only():
        return True
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # pragma: no cover - private API moved: assume a native kernel
        return True


FALLBACK_WARNING = (
    "regnet_tf: TensorFlow runs here without oneDNN, which has no grouped-convolution gradient on CPU, so "
    "regnet_tf computes it group by group: a RegNetY-1.6GF training step measured ~1.5x slower (docs/SPEED.md). Set "
    "the environment variable TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported (the regnet-* command-line "
    "tools and launch/*.py do)."
)
_fallback_warned = False


def warn_fallback_once():
    """Warns (`UserWarning`, `FALLBACK_WARNING`) the first time a per-group gradient is built in this process
    where TensorFlow has no native one."""
    global _fallback_warned
    if not _fallback_warned and not native_grouped_conv_gradients():
        _fallback_warned = True
        warnings.warn(FALLBACK_WARNING, UserWarning)


def grouped_conv2d(x, kernel, strides, padding, dilations, groups):
    """`tf.nn.conv2d` of a grouped filter (k, k, C_in / groups, C_out) with gradients computed group by group
    (ordinary convolution gradients, which every CPU kernel has). The forward pass is the native grouped op.
    Building the gradient warns once per process (`warn_fallback_once`): oneDNN's native gradient is faster."""

    @tf.custom_gradient
    def conv(x, kernel):
        y = tf.nn.conv2d(x, kernel, strides=strides, padding=padding, dilations=dilations)

        def grad(dy):
            warn_fallback_once()
            xs, ks, dys = tf.split(x, groups, -1), tf.split(kernel, groups, -1), tf.split(dy, groups, -1)
            dx = [tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(a), filter=k, out_backprop=d, strides=strides,
                                                 padding=padding, dilations=dilations)
                  for a, k, d in zip(xs, ks, dys)]
            dk = [tf.raw_ops.Conv2DBackpropFilter(input=a, filter_sizes=tf.shape(k), out_backprop=d, strides=strides,
                                                  padding=padding, dilations=dilations)
                  for a, k, d in zip(xs, ks, dys)]
            return tf.concat(dx, -1), tf.concat(dk, -1)

        return y, grad

    return conv(x, kernel)


def se_bias_init(fan_in: int):
    """PyTorch's default conv bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)): pycls leaves SE biases at it."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package="regnet_tf")
class MaxPool2D(keras.layers.Layer):
    """k x k max pool with stride s and symmetric padding (k - 1) // 2 (PyTorch ``MaxPool2d(k, s, k // 2)``), or
    TensorFlow's "SAME" with ``padding="tf_same"``."""

    def __init__(self, pool_size=3, strides=2, padding="symmetric", **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = int(pool_size), int(strides)
        self.padding = check_padding(padding)

    def call(self, x):
        if self.padding == "tf_same":
            return tf.nn.max_pool2d(x, self.pool_size, self.strides, "SAME")
        p = (self.pool_size - 1) // 2
        if p:
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=x.dtype.min)
        return tf.nn.max_pool2d(x, self.pool_size, self.strides, "VALID")

    def compute_output_shape(self, input_shape):
        p = (self.pool_size - 1) // 2
        size = lambda n: None if n is None else (n + 2 * p - self.pool_size) // self.strides + 1  # noqa: E731
        if self.padding == "tf_same":
            size = lambda n: None if n is None else -(-n // self.strides)  # noqa: E731
        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}


@keras.saving.register_keras_serializable(package="regnet_tf")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """Depthwise convolution with symmetric zero padding (k - 1) // 2 (as PyTorch, pycls and timm EfficientNets),
    or TensorFlow's "SAME" with ``padding="tf_same"`` (Keras's EfficientNet and its TF-trained weights: the same
    output size, the extra row and column after). Channels-last only; same weights as Keras's layer.
    """

    def __init__(self, kernel_size, strides=1, padding="symmetric", use_bias=False, depthwise_initializer=CONV_INIT,
                 **kwargs):
        kwargs.pop("data_format", None)
        self.pad_mode = check_padding(padding)
        super().__init__(kernel_size, strides=strides, padding="same" if padding == "tf_same" else "valid",
                         use_bias=use_bias, depthwise_initializer=depthwise_initializer, data_format="channels_last",
                         **kwargs)
        self.pads = tuple((k - 1) // 2 * d for k, d in zip(self.kernel_size, self.dilation_rate))
        if self.pad_mode == "tf_same":
            self.pads = (0, 0)
        elif self.strides == (1, 1) and all(k % 2 for k in self.kernel_size):
            # TF's "SAME" pads odd kernels at stride 1 symmetrically: the same output without a Pad op (and its copy
            # of the input) before each stride-1 depthwise conv (16 of EfficientNet-B0's)
            self.padding, self.pads = "same", (0, 0)

    def call(self, inputs):
        ph, pw = self.pads
        if ph or pw:
            inputs = tf.pad(inputs, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        return super().call(inputs)

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1:3]
        ph, pw = self.pads
        padded = (input_shape[0], None if h is None else h + 2 * ph, None if w is None else w + 2 * pw, input_shape[3])
        return super().compute_output_shape(padded)

    def get_config(self):
        config = super().get_config()
        config["padding"] = self.pad_mode
        config.pop("data_format", None)
        return config


@keras.saving.register_keras_serializable(package="regnet_tf")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed with TensorFlow's fused kernel for 4D channels-last inputs.

    Same weights, config and semantics as Keras 3's layer (moving statistics updated with the biased batch
    variance; float16/bfloat16 inputs normalized in float32), ~1.4x faster ResNet training on CPU because Keras 3
    only ships the unfused composite. Other cases (masks, renorm, synchronized BN, other ranks or axes, float64
    inputs: the fused kernel has no float64) fall back to Keras's implementation.
    """

    def _fusable(self, inputs, mask):
        return (mask is None and len(inputs.shape) == 4 and inputs.dtype != tf.float64 and self.axis in (-1, 3)
                and self.scale and self.center
                and not self.renorm and not getattr(self, "synchronized", False))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        gamma, beta = tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            y, mean, var = tf.compat.v1.nn.fused_batch_norm(inputs, gamma, beta, epsilon=self.epsilon,
                                                            data_format="NHWC", is_training=True)
            n = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            var = var * (n - 1.0) / tf.maximum(n, 2.0)  # the kernel returns the unbiased variance; Keras uses biased
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + var * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon, data_format="NHWC",
                is_training=False)
        return tf.cast(y, self.compute_dtype)
