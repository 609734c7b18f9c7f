"""The launchers' shortcut flags (--data, --data_dir, --epochs, ...) as recipe overrides, shared by train and eval.

Shortcuts are `section.key=value` overrides applied before the user's `--set`, so `--set` wins.
"""

from __future__ import annotations

from regnet_tf.data.config import DATA_SOURCES
from regnet_tf.train import recipe as recipe_lib


def shortcut_overrides(data=None, data_dir=None, global_batch_size=None, epochs=None, steps=None,
                       mixed_precision=None, weights=None):
    """The flags as overrides. `data="demo"` switches to the built-in demo data (its class count and split sizes
    are the source's; the recipe's image size and schedule stay: shorten them with --set / --epochs).
    `global_batch_size` scales the learning rate linearly (the recipe's lr is per schedule.base_batch_size).
    `weights`: the weights a fine-tuning run starts from (finetune.weights)."""
    out = []
    if data is not None:
        if data not in DATA_SOURCES:
            raise ValueError(f"unknown --data {data!r}; valid: {', '.join(DATA_SOURCES)}")
        out.append(f"data.source={data}")
    if data_dir is not None:
        out.append(f"data.data_dir={data_dir}")
    if global_batch_size is not None:
        out.append(f"train.global_batch_size={int(global_batch_size)}")
    if epochs is not None:
        out += [f"train.epochs={float(epochs)}", "train.steps=0"]
    if steps is not None:
        out.append(f"train.steps={int(steps)}")
    if mixed_precision is not None:
        out.append(f"runtime.mixed_precision={mixed_precision}")
    if weights is not None:
        out.append(f"finetune.weights={weights}")
    return out


def load_recipe(name, shortcuts, user_overrides, data=None, data_dir=None):
    """The recipe with the shortcut and user overrides. A --data_dir without --data on a recipe of the demo data
    reads the directory's data: its source is what the directory holds (TFRecord shards or class folders)."""
    overrides = list(shortcuts) + list(user_overrides)
    if data_dir is not None and data is None:
        raw = recipe_lib.apply_overrides(recipe_lib.read_raw(name), overrides)
        if (raw.get("data") or {}).get("source") == "demo":
            from regnet_tf.data.sources import detect_source  # imports TensorFlow: only for a demo recipe

            try:
                source = detect_source(data_dir)
            except (ValueError, FileNotFoundError) as e:
                raise ValueError(f"--data_dir without --data on recipe {name!r} (the built-in demo data): add --data "
                                 f"tfrecord|folder|tfds to say what the directory holds. {e}") from e
            overrides = list(shortcuts) + [f"data.source={source}"] + list(user_overrides)
    return recipe_lib.load(name, overrides)
