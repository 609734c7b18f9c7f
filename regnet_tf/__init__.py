"""regnet_tf: RegNet (X/Y/Z), ResNet-RS and EfficientNet-RS for Keras 3 / TensorFlow.

The spec, generation and complexity tools here are pure Python (importing them does not import TensorFlow);
`build_model` and `regnet_tf.applications` build Keras models.
"""

import os as _os
import sys as _sys

# TensorFlow's CPU kernels compute grouped-convolution gradients only with oneDNN, which TensorFlow turns on by
# default just on some CPUs (AVX-512); it reads the switch once, at import. Turn it on unless the user chose.
if "tensorflow" not in _sys.modules:
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from regnet_tf.counter import complexity  # noqa: E402
from regnet_tf.models.anynet import AnyNetSpec, adjust_block_compatibility  # noqa: E402
from regnet_tf.models.regnet import RegNetSpec, generate_regnet  # noqa: E402
from regnet_tf.models.efficientnet import EffNetSpec  # noqa: E402
from regnet_tf.models.registry import get_entry, get_spec, list_models, resolve, to_anynet  # noqa: E402
from regnet_tf.models.resnet import ResNetSpec  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AnyNetSpec", "EffNetSpec", "RegNetSpec", "ResNetSpec", "adjust_block_compatibility", "build_model",
    "complexity", "generate_regnet", "get_entry", "get_spec", "list_models", "resolve", "scale", "to_anynet",
]


def scale(spec_or_name, factor, strategy="dWr", alpha=0.8, resolution=None):
    """Scale a model by a flops factor: see `regnet_tf.scaling.scale`. Returns (spec, resolution)."""
    from regnet_tf.scaling import scale as _scale

    return _scale(spec_or_name, factor, strategy, alpha, resolution)


def __getattr__(name):
    if name == "build_model":  # imports TensorFlow, so only on demand
        from regnet_tf.applications import build_model

        return build_model
    raise AttributeError(f"module 'regnet_tf' has no attribute {name!r}")
