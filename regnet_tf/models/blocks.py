"""Deprecated: the Keras blocks moved into their family modules (issue 10, version 0.1).

Each family's stem and blocks are now in `regnet_tf/models/<family>.py` next to their complexity counts
(anynet: X/Y/Z/R/V/VR; resnet; efficientnet: MBConv), the shared pieces (bn, act, conv_bn_act, squeeze_excite,
classifier) in `regnet_tf.models.common`, and a whole network is ``spec.features(x)``. `features(x, spec)` and the
shared pieces still work from here, with a DeprecationWarning; this module imports nothing until a name is read.
"""

import importlib
import warnings

_COMMON = ("bn", "act", "conv_bn_act", "squeeze_excite", "classifier")


def features(x, spec):
    """Deprecated: ``regnet_tf.models.registry.resolve(spec).features(x)``."""
    warnings.warn("regnet_tf.models.blocks.features(x, spec) is spec.features(x) now (resolve a RegNetSpec first: "
                  "regnet_tf.resolve(spec).features(x))", DeprecationWarning, stacklevel=2)
    return importlib.import_module("regnet_tf.models.registry").resolve(spec).features(x)


def __getattr__(name):
    if name not in _COMMON:
        raise AttributeError(f"regnet_tf.models.blocks.{name} moved into its family module (regnet_tf/models/"
                             "anynet.py, resnet.py, efficientnet.py); see the docstring of regnet_tf.models.blocks")
    warnings.warn(f"regnet_tf.models.blocks.{name} moved to regnet_tf.models.common.{name}", DeprecationWarning,
                  stacklevel=2)
    return getattr(importlib.import_module("regnet_tf.models.common"), name)
