"""Deprecated: `regnet_tf.train.loop` was split into modules that do one job each (issue 10, version 0.1).

Its names still work from here, with a DeprecationWarning naming the new place; import them from there instead:
`Trainer` (train.trainer), `TrainingError` (train), strategies and precision (train.distribute), `MetricsLog`
(train.logs), `serving_model` / `evaluate_saved_model` / `load_run` (train.evaluate), `check_data` /
`label_map_path` (data.sources). This module imports nothing until a name is read.
"""

import importlib
import warnings

_MOVED = {
    "Trainer": ("regnet_tf.train.trainer", "Trainer"),
    "TrainingError": ("regnet_tf.train", "TrainingError"),
    "STRATEGIES": ("regnet_tf.train.recipe", "STRATEGIES"),
    "PRECISIONS": ("regnet_tf.train.distribute", "POLICIES"),
    "MetricsLog": ("regnet_tf.train.logs", "MetricsLog"),
    "check_data": ("regnet_tf.data.sources", "check_data"),
    "label_map_path": ("regnet_tf.data.sources", "label_map_path"),
    **{n: ("regnet_tf.train.distribute", n) for n in ("use_logical_cpus", "make_strategy", "strategy_name", "is_tpu",
                                                      "is_chief", "precision_policy", "use_xla")},
    **{n: ("regnet_tf.train.evaluate", n) for n in ("serving_model", "evaluate_saved_model", "load_run")},
}


def __getattr__(name):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (it was split: see its docstring)")
    module, new = _MOVED[name]
    warnings.warn(f"regnet_tf.train.loop.{name} moved to {module}.{new}; import it from there (regnet_tf.train.loop "
                  "will be removed)", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), new)
