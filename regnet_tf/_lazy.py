"""A module imported on first use, so pure-Python modules can hold Keras code without importing TensorFlow.

    keras = LazyModule("keras")
    common = LazyModule("regnet_tf.models.common")

    def block(x, ...):
        return keras.layers.Add(name=...)([x, common.bn(...)])   # imports keras here, at the first call

Attribute access imports the module (once; Python caches it in sys.modules) and reads the attribute from it.
"""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name``; the module is imported when an attribute is first read."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"LazyModule({self._name!r})"
