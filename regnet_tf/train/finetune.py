"""Fine-tuning: a run that starts from trained weights (recipe section `finetune`, docs/TRANSFER.md).

    init = resolve(recipe, model_dir)          # where the weights come from, and the conventions they carry
    model = run_model(spec, recipe, init.config)
    report = load(model, init)                 # every layer whose shape fits; a new classifier otherwise

`finetune.weights` is "imagenet" or a tag of the weights table (fetched and converted once,
`regnet_tf.weights.pretrained`), a `.weights.h5` file (converted, or any Keras weights of the model), a `.keras`
model file, or another run's model_dir: its best checkpoint (`train.keep_best`) or its last, with the weights it
evaluates and exports (EMA, or SWA with its recomputed BN statistics). What the source was is recorded in
`model_dir/init_weights.json` on the first start, so a resumed run, `launch/eval.py` and `launch/export.py` build the
same model (input adapter, padding, BN epsilon of converted weights) without looking for the source again.

The phases and rates (`Plan`): the backbone frozen for `freeze_epochs` (only the classifier trains), BatchNormalization
in inference mode while frozen (Keras's convention), for the whole run or never; per-stage learning rates
(`stage_lr_decay`: stage k of S gets lr x decay^(S + 1 - k), the stem decay^(S + 1), the classifier
`head_lr_multiplier`) applied by scaling gradients, which for SGD with momentum (Nesterov or not) equals a learning
rate per layer: the velocity is linear in the gradient.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zipfile

import keras
import tensorflow as tf

from regnet_tf import imagenet
from regnet_tf.data import sources
from regnet_tf.data.config import DEMO_CLASSES
from regnet_tf.data.format import read_label_map
from regnet_tf.files import write_atomic
from regnet_tf.train import TrainingError, optim
from regnet_tf.train import swa as swa_lib
from regnet_tf.train.best import BEST
from regnet_tf.train.evaluate import load_run, run_model
from regnet_tf.weights import pretrained
from regnet_tf.weights.core import ConversionError, WeightsConfig, load_matching, read_config, save

RECORD = "init_weights.json"  # in the fine-tuning run's model_dir: what it started from
RUN_WEIGHTS = "init.weights.h5"  # a source run's (averaged) weights, written into the fine-tuning run's model_dir
HEAD = "predictions"  # the classifier: new when the class count differs
KERAS_WEIGHTS_IN_ZIP = "model.weights.h5"  # a .keras file is a zip holding this


@dataclasses.dataclass(frozen=True)
class Init:
    """Where a fine-tuning run's weights come from: `weights` as the recipe gave it, `path` the `.weights.h5` that
    is loaded, `config` the WeightsConfig the model is built with (converted weights; None for our own), `source`
    a short description for the logs, `classes` the names of the classes its classifier was trained on (None:
    unknown)."""

    weights: str
    path: str
    config: WeightsConfig | None
    source: str
    classes: tuple | None = None

    def to_json(self):
        return json.dumps({"weights": self.weights, "path": self.path, "source": self.source,
                           "config": json.loads(self.config.to_json()) if self.config else None,
                           "classes": list(self.classes) if self.classes is not None else None}, indent=1)

    @classmethod
    def from_json(cls, text):
        d = json.loads(text)
        config = WeightsConfig.from_json(json.dumps(d["config"])) if d.get("config") else None
        classes = tuple(d["classes"]) if d.get("classes") is not None else None
        return cls(d["weights"], d["path"], config, d["source"], classes)


def class_names(data):
    """The class names of a DataConfig, by class index (its label map), or None when it has none."""
    if data.source == "demo":
        return DEMO_CLASSES
    path = sources.label_map_path(data)
    if path is None:
        return None
    names = read_label_map(path, data.stored_label_offset)
    return tuple(names[k] for k in sorted(names))


def _weights_classes(config):
    return tuple(imagenet.class_names()) if config is not None and config.classes == 1000 else None


def read_record(model_dir) -> Init | None:
    """The `Init` a run recorded on its first start, or None (a run from random initialization)."""
    path = os.path.join(model_dir, RECORD)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return Init.from_json(f.read())


def resolve(recipe, model_dir, chief=True, log=print) -> Init | None:
    """The `Init` of a recipe's `finetune.weights` (None: random initialization). The first start resolves it
    (fetching public weights, extracting a run's) and records it in model_dir; later starts read the record (a run
    with checkpoints keeps what it started from, whatever finetune.weights says now)."""
    weights = recipe.finetune.weights
    recorded = read_record(model_dir)
    if recorded is not None and recorded.weights != weights and (
            not weights or tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))):
        log(f"note: this run started from {recorded.source}; finetune.weights={weights!r} does not apply to its "
            "checkpoints (use another --model_dir to start from other weights)")
        return recorded
    if recorded is not None and recorded.weights == weights:
        return recorded
    if not weights:
        return None
    init = _resolve(weights, recipe, model_dir)
    if chief:
        write_atomic(os.path.join(model_dir, RECORD), init.to_json())
    return init


def _resolve(weights, recipe, model_dir):
    name = recipe.model.name
    if os.path.isdir(weights):
        if os.path.abspath(weights) == os.path.abspath(model_dir):
            raise TrainingError(f"finetune.weights={weights!r} is this run's own model_dir: give another run's "
                                "model_dir (a run resumes from its own checkpoints by itself)")
        return _from_run(weights, recipe.finetune.checkpoint, os.path.join(model_dir, RUN_WEIGHTS))
    if os.path.isfile(weights):
        if weights.endswith(".keras"):
            return _from_keras_file(weights, os.path.join(model_dir, RUN_WEIGHTS))
        if not weights.endswith(".h5"):
            raise TrainingError(f"finetune.weights={weights!r}: a weights file is a Keras .weights.h5 or .keras file; "
                                "convert a timm / pycls / tf_keras checkpoint first (python launch/convert.py --from "
                                "timm --model NAME --input FILE --output FILE.weights.h5)")
        config = read_config(weights)
        _check_model(config, name, weights)
        what = f"{config.tag or config.source} weights" if config else "Keras weights"
        return Init(weights, os.path.abspath(weights), config, f"{weights} ({what})", _weights_classes(config))
    if weights.endswith((".h5", ".keras")) or os.sep in weights:
        raise TrainingError(f"finetune.weights={weights!r}: no such file or directory (give 'imagenet', a weights tag, "
                            "a .weights.h5 / .keras file or a run's model_dir)")
    if not name:
        raise TrainingError(f"finetune.weights={weights!r} are public weights of a registered model: set model.name "
                            f"(regnet_tf.weights.pretrained.models() lists the {len(pretrained.models())} with weights)")
    path, config = pretrained.weights_file(name, weights)
    return Init(weights, path, config, f"{weights} ({config.tag}, {config.url})", _weights_classes(config))


def _check_model(config, name, what):
    if config is not None and config.model and name and config.model != name:
        raise TrainingError(f"the weights {what} are for {config.model}, not {name}: set model.name={config.model} "
                            "or give weights of this model")


def _from_keras_file(path, out):
    """A .keras model file: its weights (the `model.weights.h5` inside the zip) extracted to `out`."""
    try:
        with zipfile.ZipFile(path) as z:
            data = z.read(KERAS_WEIGHTS_IN_ZIP)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise TrainingError(f"finetune.weights={path!r} is not a Keras .keras model file ({e}); save one with "
                            "model.save('m.keras') or give a .weights.h5") from None
    write_atomic(out, data)
    return Init(path, out, None, f"{path} (Keras model file)")


def _checkpoint_path(model_dir, which):
    """(checkpoint prefix, description) of a run's best checkpoint (when it kept one and `which` is best) or last."""
    best = os.path.join(model_dir, BEST, "best.json")
    if which == "best" and os.path.isfile(best):
        with open(best, encoding="utf-8") as f:
            info = json.load(f)
        return os.path.join(model_dir, BEST, "ckpt"), (f"best checkpoint: step {info['step']}, {info['split']} top-1 "
                                                      f"{info['top1']:.2f}%")
    last = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if last is None:
        raise TrainingError(f"finetune.weights={model_dir!r} holds no checkpoint (checkpoints/ is empty): train it "
                            "first, or give another run")
    return last, f"last checkpoint: step {last.rsplit('-', 1)[-1]}"


def _from_run(src, which, out):
    """Another run's weights as it evaluates and exports them (EMA, or SWA with its BN statistics), in `out`."""
    recipe = load_run(src)
    parent = read_record(src)
    config = parent.config if parent else None
    path, what = _checkpoint_path(src, which)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        model = run_model(recipe.spec(), recipe, config)
        items = {"model": model}
        ema = optim.EMA(model, recipe.ema.decay, recipe.ema.dynamic) if recipe.ema.decay > 0 else None
        swa = swa_lib.SWA(model) if recipe.swa.enabled else None
        items.update({k: v for k, v in (("ema", ema), ("swa", swa)) if v is not None})
        status = tf.train.Checkpoint(**items).restore(path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            raise TrainingError(f"cannot read {path} as a checkpoint of the recipe in {src}/recipe.yaml "
                                f"({str(e).splitlines()[0][:200]})") from None
        status.expect_partial()  # the optimizer and step are not needed
        averaged = "raw weights"
        if ema is not None:
            ema.swap()
            averaged = "EMA weights"
        elif swa is not None and int(swa.count.numpy()):
            swa.swap()
            averaged = f"SWA of {int(swa.count.numpy())} snapshots" + (
                "" if swa.bn_current() else " (BN statistics of the last weights: the run stopped before recomputing)")
        if config is not None:
            save(model, out, config)
        else:
            tmp = out[:-len(".weights.h5")] + f".tmp{os.getpid()}.weights.h5"
            model.save_weights(tmp)
            os.replace(tmp, out)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    name = recipe.model.name or recipe.model.kind
    return Init(src, out, config, f"{src} ({name}, {what}, {averaged})", class_names(recipe.data))


def _short(names, limit=4):
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def load(model, init, classes=None, log=print):
    """Loads `init` into `model`: every layer by name; the classifier only when its shape fits and it was trained on
    the same classes (`classes`: this run's class names, when known), else it keeps its fresh initialization. Any
    other mismatch is a TrainingError naming the layers. Logs one line; returns (loaded layer names, initialized
    layer descriptions)."""
    if not os.path.isfile(init.path):
        raise TrainingError(f"the initial weights {init.path} (from finetune.weights={init.weights!r}) are gone; "
                            f"restore the file, or delete {RECORD} in the model_dir to resolve the weights again")
    other = (init.classes is not None and classes is not None and len(init.classes) == len(classes)
             and tuple(init.classes) != tuple(classes))
    try:
        loaded, initialized = load_matching(model, init.path, new=(HEAD,), skip=(HEAD,) if other else ())
        if other:
            initialized = [f"{HEAD} (as many classes, but other ones: the weights' {_short(init.classes)}; this "
                           f"run's {_short(classes)})"]
    except ConversionError as e:
        raise TrainingError(f"finetune.weights={init.weights!r}: {e}") from None
    new = f"; initialized: {', '.join(initialized)}" if initialized else "; the classifier too (same classes)"
    log(f"fine-tuning from {init.source}: loaded {len(loaded)} layers{new}")
    return loaded, initialized


# ---------------------------------------------------------------------------------------------- the phases

_STAGE = re.compile(r"^s(\d+)_b\d+_")


def stage_of(layer_name, num_stages):
    """The stage a layer belongs to: 0 for the stem, k for `s<k>_b<j>_...`, num_stages for the head conv; None for the
    classifier."""
    if layer_name == HEAD:
        return None
    m = _STAGE.match(layer_name)
    if m:
        return int(m.group(1))
    return num_stages if layer_name.startswith("head") else 0


@dataclasses.dataclass
class Plan:
    """What trains at each step of a fine-tuning run: `freeze_steps` steps of the classifier alone, then every layer;
    the BN mode; per-variable gradient multipliers (stage lr decay, classifier lr)."""

    config: object  # the recipe's FinetuneConfig
    freeze_steps: int
    num_stages: int

    @classmethod
    def of(cls, recipe, spec, steps_per_epoch, total_steps):
        c = recipe.finetune
        return cls(c, min(total_steps, round(c.freeze_epochs * steps_per_epoch)), spec.resolved().num_stages)

    def frozen(self, step):
        return step < self.freeze_steps

    def bn_trainable(self, frozen):
        mode = self.config.freeze_bn
        return mode == "never" or (mode == "with_backbone" and not frozen)

    def set_phase(self, model, frozen):
        """Sets the BN layers' `trainable` for the phase; returns the variables that train in it."""
        for layer in swa_lib.bn_layers(model):
            layer.trainable = self.bn_trainable(frozen)
        variables = model.trainable_variables
        if frozen:
            variables = [v for v in variables if v.path.split("/")[0] == HEAD]
        return variables

    def multiplier(self, variable):
        c = self.config
        stage = stage_of(variable.path.split("/")[0], self.num_stages)
        if stage is None:
            return c.head_lr_multiplier
        return c.stage_lr_decay ** (self.num_stages + 1 - stage)

    def describe(self, steps_per_epoch):
        c = self.config
        parts = []
        if self.freeze_steps:
            parts.append(f"backbone frozen for {self.freeze_steps} steps ({self.freeze_steps / steps_per_epoch:.2f} "
                         f"epochs, BN {'updating its statistics' if c.freeze_bn == 'never' else 'in inference mode'})")
        if c.freeze_bn == "always":
            parts.append("BN in inference mode the whole run")
        if c.stage_lr_decay != 1:
            parts.append(f"stage lr decay {c.stage_lr_decay:g} (stem x{c.stage_lr_decay ** (self.num_stages + 1):.3g})")
        if c.head_lr_multiplier != 1:
            parts.append(f"classifier lr x{c.head_lr_multiplier:g}")
        return ", ".join(parts) or "every layer trains from the first step"
