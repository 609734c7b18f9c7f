"""RandAugment and AutoAugment with the TF reference semantics, in plain TensorFlow ops.

The 16 ops of the TF reference (tensorflow/tpu `autoaugment.py`, tensorflow/models `official/vision/ops/augment.py`)
act on a uint8 HxWx3 tensor. The magnitude M maps to op arguments as the reference does (`level_to_arg`, M is not
clipped): rotate +-M/10*30 degrees, shear +-M/10*0.3, translate +-M/10*translate_const pixels, enhance factor
M/10*1.8+0.1 (color, contrast, brightness, sharpness), posterize int(M/10*4) bits, solarize threshold int(M/10*256),
solarize-add int(M/10*110) on pixels < 128, cutout half-side int(M/10*cutout_const); geometric ops and cutout fill
with 128. Each layer picks one op uniformly with a Case op (only that branch runs; see `switch_case`).

Choices on the reference quirks (docs/AUGMENT.md has the details):
- translate_const defaults to 100 (TF1 and the RandAugment class; the ResNet-RS code used it); the TF2 *config*
  default is 10. Pass `translate_const=10.0` to match Model Garden's ResNet-RS runs.
- Solarize is a no-op for M >= 10 (threshold >= 256) and posterize keeps more bits as M grows (6 bits at M=15);
  kept as is, since the recipes were tuned with these semantics.
- `magnitude_std` is not implemented (the reference's version ignores the std and acts as std=1).
- Contrast has three conventions (`contrast_mode`, DataConfig.contrast_mode): "pil" (default: PIL's
  ImageEnhance.Contrast, the blend with the rounded mean of the "L" grayscale), "tf1" (the TF1 reference behind the
  papers' numbers: its "mean" is H*W/256, 196 at 224 px, clipped to 255) and "model_garden" (Model Garden 2.20 calls
  `tf.image.adjust_contrast`: per-channel means, no blend with a grey image; up to 32 grey levels from "pil").
- Out-of-image pixels of rotate/shear/translate are 128 (TF1; the TF2 copy that goes through the Keras 2 transform
  defaults to fill_mode="reflect", which silently bypasses its 128 fill).
- `include_identity=True` is the TF2 reference (17 equiprobable choices, the last one identity); False is TF1 (16).

Layout: the ops are in `augment_ops` (TensorFlow), the magnitude mapping and the policy tables in
`augment_policies` (plain data, no TensorFlow); this module chooses and applies them, and re-exports both, so
`regnet_tf.data.augment.rotate` and `augment.level_to_arg` keep working. Speed: see `augment_ops`; in graphs the op
choice is an unlowered Case op, so the 16 branches that do not run cost nothing.

Randomness is stateless: `RandAugment()(image, seed)` with an int seed tensor of shape [2] is reproducible; without a
seed, a fresh seed is drawn with `tf.random.uniform` so each call differs.
"""

import functools

import tensorflow as tf

from regnet_tf.data.augment_ops import (  # noqa: F401 - the ops are part of this module's API
    FILL, affine, autocontrast, brightness, color, contrast, cutout, equalize, grayscale, invert,
    posterize, rotate, sharpness, shear_x, shear_y, solarize, solarize_add, translate_x, translate_y)
from regnet_tf.data.augment_policies import (  # noqa: F401
    AUTOAUGMENT_POLICIES, CONTRAST_MODES, MAX_LEVEL, POLICY_V0, RANDAUGMENT_OPS, SIGNED_OPS, level_to_arg)
from regnet_tf.data.preprocess import to_uint8

try:
    from tensorflow.python.ops.cond_v2 import indexed_case as _indexed_case
except ImportError:  # pragma: no cover - TensorFlow internals moved
    _indexed_case = None

# ----------------------------------------------------------------------------------------------------------------
# Op dispatch, randomness
# ----------------------------------------------------------------------------------------------------------------

_NO_ARG = {"AutoContrast": autocontrast, "Equalize": equalize, "Invert": invert}
_WITH_ARG = {"Rotate": rotate, "Posterize": posterize, "Solarize": solarize, "SolarizeAdd": solarize_add,
             "Color": color, "Contrast": contrast, "Brightness": brightness, "Sharpness": sharpness,
             "ShearX": shear_x, "ShearY": shear_y, "TranslateX": translate_x, "TranslateY": translate_y}


def apply_op(name, image, arg, u, contrast_mode="pil"):
    """Apply op `name` with argument `arg` (from level_to_arg) to a uint8 image. `u`: float32 uniforms in [0, 1):
    u[0] < 0.5 negates a signed argument, u[1], u[2] place the cutout centre (row, column). `contrast_mode`: the
    Contrast op's convention (`contrast`)."""
    if name == "Contrast":
        return contrast(image, arg, contrast_mode)
    if name in _NO_ARG:
        return _NO_ARG[name](image)
    if name == "Cutout":
        shape = tf.shape(image)
        center = [tf.cast(u[i + 1] * tf.cast(shape[i], tf.float32), tf.int32) for i in range(2)]
        return cutout(image, arg, [tf.minimum(center[0], shape[0] - 1), tf.minimum(center[1], shape[1] - 1)])
    if name in SIGNED_OPS:
        arg = tf.where(u[0] < 0.5, -arg, arg)
    return _WITH_ARG[name](image, arg)


def switch_case(index, branches):
    """`tf.switch_case` whose Case op is not lowered to Switch/Merge nodes in graphs (tf.data maps, tf.function).

    Lowered, every op of all 17 branches is still visited as a dead node on each call (~0.1 ms per RandAugment layer
    on CPU, a quarter of its cost); unlowered, the Case kernel runs only the chosen branch's function. Uses
    TensorFlow's internal `cond_v2.indexed_case` (as `tf.__internal__.execute_fn_for_device` does); falls back to
    `tf.switch_case` eagerly or if that is unavailable.
    """
    if _indexed_case is None or tf.executing_eagerly():
        return tf.switch_case(index, branches)
    return _indexed_case(index, branches, lower_using_switch_merge=False)


def _seed_or_fresh(seed):
    """`seed` (int tensor of shape [2]), or a fresh random one if it is None."""
    if seed is None:
        return tf.random.uniform([2], minval=0, maxval=2**31 - 1, dtype=tf.int32)
    return seed


def _check_contrast_mode(mode):
    if mode not in CONTRAST_MODES:
        raise ValueError(f"contrast_mode must be one of {CONTRAST_MODES}; got {mode!r}")
    return mode


def make_seeds(seed, num):
    """`num` stateless seeds (shape [num, 2]) from `seed` (int tensor of shape [2]), or fresh ones if seed is None."""
    return tf.random.experimental.stateless_split(tf.cast(_seed_or_fresh(seed), tf.int64), num)


class RandAugment:
    """RandAugment (Cubuk et al., 2019) with the TF reference ops and level mapping.

    `num_layers` ops are applied in sequence, each chosen uniformly among the 16 ops (minus `exclude_ops`) plus, with
    `include_identity` (the TF2 reference), an identity choice. With `prob_to_apply`, each layer's result is kept with
    that probability. `contrast_mode`: "pil", "tf1" or "model_garden" (the Contrast op, module docstring). Call on
    a uint8 HxWx3 image (or float 0-255: clipped, cast to uint8 and back), with an optional int seed tensor of shape
    [2]; the output has the input's shape and dtype.
    """

    def __init__(self, num_layers=2, magnitude=10.0, translate_const=100.0, cutout_const=40.0,
                 include_identity=True, exclude_ops=(), prob_to_apply=None, contrast_mode="pil"):
        unknown = set(exclude_ops) - set(RANDAUGMENT_OPS)
        if unknown:
            raise ValueError(f"Unknown ops in exclude_ops: {sorted(unknown)}; ops are {RANDAUGMENT_OPS}")
        self.num_layers = int(num_layers)
        self.magnitude = float(magnitude)
        self.translate_const = float(translate_const)
        self.cutout_const = float(cutout_const)
        self.include_identity = bool(include_identity)
        self.prob_to_apply = None if prob_to_apply is None else float(prob_to_apply)
        self.ops = tuple(op for op in RANDAUGMENT_OPS if op not in set(exclude_ops))
        self.args = level_to_arg(self.magnitude, self.translate_const, self.cutout_const)
        if not self.ops and not self.include_identity:
            raise ValueError("RandAugment needs at least one op")
        self.contrast_mode = _check_contrast_mode(contrast_mode)

    def __repr__(self):
        return (f"RandAugment(num_layers={self.num_layers}, magnitude={self.magnitude}, "
                f"translate_const={self.translate_const}, cutout_const={self.cutout_const}, "
                f"include_identity={self.include_identity}, ops={len(self.ops)}, prob_to_apply={self.prob_to_apply}, "
                f"contrast_mode={self.contrast_mode!r})")

    def __call__(self, image, seed=None):
        image = tf.convert_to_tensor(image)
        x = to_uint8(image)
        num_choices = len(self.ops) + int(self.include_identity)
        # one draw for all layers
        uniforms = tf.random.stateless_uniform([max(self.num_layers, 1), 5], _seed_or_fresh(seed))
        for layer in range(self.num_layers):
            u = uniforms[layer]
            index = tf.minimum(tf.cast(u[0] * num_choices, tf.int32), num_choices - 1)
            op_u = u[1:4]  # one slice shared by the branches (every op outside the Case runs on each call)
            branches = [functools.partial(apply_op, op, x, self.args[op], op_u, self.contrast_mode)
                        for op in self.ops]
            if self.include_identity:
                branches.append(functools.partial(tf.identity, x))
            y = switch_case(index, branches)
            if self.prob_to_apply is not None:
                y = tf.cond(u[4] < self.prob_to_apply, functools.partial(tf.identity, y),
                            functools.partial(tf.identity, x))
            x = y
        x = tf.ensure_shape(x, image.shape)
        return x if image.dtype == tf.uint8 else tf.cast(x, image.dtype)


class AutoAugment:
    """AutoAugment: one sub-policy chosen uniformly per image, each of its ops applied with its own probability,
    with the reference constants (translate_const 250, cutout_const 100). Same call convention and `contrast_mode`
    as RandAugment."""

    def __init__(self, policy="v0", translate_const=250.0, cutout_const=100.0, contrast_mode="pil"):
        if isinstance(policy, str):
            if policy not in AUTOAUGMENT_POLICIES:
                raise ValueError(f"Unknown AutoAugment policy {policy!r}; known: {sorted(AUTOAUGMENT_POLICIES)}")
            policy = AUTOAUGMENT_POLICIES[policy]
        self.policy = tuple(tuple((op, float(p), float(level)) for op, p, level in sub) for sub in policy)
        for op, p, _ in (step for sub in self.policy for step in sub):
            if op not in RANDAUGMENT_OPS or not 0.0 <= p <= 1.0:
                raise ValueError(f"Bad policy step: {(op, p)}")
        self.translate_const = float(translate_const)
        self.cutout_const = float(cutout_const)
        self._max_steps = max(len(sub) for sub in self.policy)
        self.contrast_mode = _check_contrast_mode(contrast_mode)

    def _sub_policy(self, sub, image, u):
        for i, (op, p, level) in enumerate(sub):
            if p == 0.0:
                continue
            arg = level_to_arg(level, self.translate_const, self.cutout_const)[op]
            ui = u[1 + 4 * i: 5 + 4 * i]
            apply = functools.partial(apply_op, op, image, arg, ui[1:], self.contrast_mode)
            image = apply() if p == 1.0 else tf.cond(ui[0] < p, apply, functools.partial(tf.identity, image))
        return image

    def __call__(self, image, seed=None):
        image = tf.convert_to_tensor(image)
        x = to_uint8(image)
        u = tf.random.stateless_uniform([1 + 4 * self._max_steps], make_seeds(seed, 1)[0])
        n = len(self.policy)
        index = tf.minimum(tf.cast(u[0] * n, tf.int32), n - 1)
        x = switch_case(index, [functools.partial(self._sub_policy, sub, x, u) for sub in self.policy])
        x = tf.ensure_shape(x, image.shape)
        return x if image.dtype == tf.uint8 else tf.cast(x, image.dtype)


def augmenter(config):
    """AutoAugment or RandAugment of a DataConfig as fn(uint8 image, seed), or None."""
    if not config.autoaugment and config.randaug_layers <= 0:
        return None
    op = AutoAugment(config.autoaugment, contrast_mode=config.contrast_mode) if config.autoaugment else \
        RandAugment(num_layers=config.randaug_layers, magnitude=config.randaug_magnitude,
                    translate_const=config.randaug_translate_const, cutout_const=config.randaug_cutout_const,
                    contrast_mode=config.contrast_mode)
    return lambda image, seed: op(image, seed=seed)
