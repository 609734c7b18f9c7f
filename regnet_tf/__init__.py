"""regnet_tf: RegNet (X/Y/Z), ResNet-RS and EfficientNet-RS for Keras 3 / TensorFlow.

The spec, generation, complexity and scaling tools here are pure Python (importing them does not import TensorFlow);
`build_model` and `regnet_tf.applications` build Keras models. Importing the package changes nothing global (no
environment variables, no TensorFlow settings); the command-line tools (`regnet_tf.cli`) set their environment.
"""

# isort: off  (zoo first: it imports the family modules in zoo order, the order of list_models())
from regnet_tf.zoo import complexity, feature_info, get_entry, get_spec, list_models, resolve, scale, to_anynet
from regnet_tf.models.anynet import AnyNetSpec, adjust_block_compatibility
from regnet_tf.models.efficientnet import EffNetSpec
from regnet_tf.models.regnet import RegNetSpec, generate_regnet
from regnet_tf.models.resnet import ResNetSpec
# isort: on

__version__ = "0.1.0"

__all__ = [
    "AnyNetSpec", "EffNetSpec", "RegNetSpec", "ResNetSpec", "adjust_block_compatibility", "build_backbone",
    "build_model", "complexity", "feature_info", "generate_regnet", "get_entry", "get_spec", "list_models", "resolve",
    "scale", "to_anynet",
]


def __getattr__(name):
    if name in ("build_model", "build_backbone"):  # import TensorFlow, so only on demand
        from regnet_tf import applications

        return getattr(applications, name)
    raise AttributeError(f"module 'regnet_tf' has no attribute {name!r}")
