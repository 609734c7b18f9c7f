"""pycls checkpoints (``.pyth``: RegNetX/Y, AnyNet, EfficientNet B0-B5) -> our models.

    from regnet_tf import weights
    model, config = weights.convert("pycls", "regnety_040", "RegNetY-4.0GF_dds_8gpu.pyth")

A ``.pyth`` file is a torch checkpoint whose ``model_state`` (or ``ema_state``) is the state dict; `core.read_tensors`
unwraps it. pycls's networks are ours layer for layer (our layer names follow pycls); the tensors are named:

- AnyNet / RegNet (pycls ``anynet.py``): ``stem.conv`` / ``stem.bn``, ``s{i}.b{j}.f.a|a_bn|b|b_bn|c|c_bn``,
  ``.f.se.f_ex.0|2`` (SE), ``s{i}.b{j}.proj`` / ``s{i}.b{j}.bn`` (projection shortcut), ``head.conv|conv_bn`` (head
  conv), ``head.fc``. The vanilla block (V) has no ``f.``.
- EfficientNet (pycls ``effnet.py``): ``stem.conv`` / ``stem.bn``, ``s{i}.b{j}.exp|exp_bn|dwise|dwise_bn|lin_proj|
  lin_proj_bn``, ``.se.f_ex.0|2``, ``head.conv|conv_bn|fc``.

Conventions: symmetric padding and BN epsilon 1e-5, as ours. pycls feeds its networks **BGR** images (normalized
with the RGB ImageNet mean/std, then the channels reversed), so `prepare` reverses the input channels of the stem
conv: the converted model takes RGB like every regnet_tf model, and the WeightsConfig notes the flip.
"""

from __future__ import annotations

from regnet_tf.weights.core import ConversionError, Source
from regnet_tf.weights.timm import layer_prefixes

STEM = "stem.conv.weight"
NOTE = "stem conv flipped from BGR to RGB input"

_BOTTLENECK = {**{p: f"f.{p}" for p in ("a", "a_bn", "b", "b_bn", "c", "c_bn")}, "se_reduce": "f.se.f_ex.0",
               "se_expand": "f.se.f_ex.2", "proj": "proj", "proj_bn": "bn"}
_BLOCKS = {"V": {p: p for p in ("a", "a_bn", "b", "b_bn")},
           "VR": {**{p: f"f.{p}" for p in ("a", "a_bn", "b", "b_bn")}, "proj": "proj", "proj_bn": "bn"}}
_MBCONV = {"expand": "exp", "expand_bn": "exp_bn", "dw": "dwise", "dw_bn": "dwise_bn", "se_reduce": "se.f_ex.0",
           "se_expand": "se.f_ex.2", "project": "lin_proj", "project_bn": "lin_proj_bn"}
_TOP = {"stem_conv": "stem.conv", "stem_conv_bn": "stem.bn", "head_conv": "head.conv", "head_conv_bn": "head.conv_bn",
        "predictions": "head.fc"}


def prefixes(spec, layer_names):
    if spec.kind == "anynet":
        block = _BLOCKS.get(spec.block, _BOTTLENECK)
    elif spec.kind == "efficientnet":
        block = _MBCONV
    else:
        raise ConversionError(f"pycls weights convert into RegNet/AnyNet and EfficientNet models; got a {spec.kind} "
                              "spec")
    return layer_prefixes(layer_names, _TOP, lambda i, j: f"s{i}.b{j}", {i: block for i in range(1, len(spec.ds) + 1)})


def head(spec):
    return ("head.fc.weight", "head.fc.bias")


def prepare(spec, tensors):
    """A copy of ``tensors`` with the stem conv's input channels reversed (BGR -> RGB; (O, I, kh, kw) layout)."""
    tensors = dict(tensors)
    if STEM in tensors:
        if tensors[STEM].ndim != 4 or tensors[STEM].shape[1] != 3:
            raise ConversionError(f"pycls {STEM} should have shape (w, 3, k, k); got {tensors[STEM].shape}")
        tensors[STEM] = tensors[STEM][:, ::-1].copy()
    return tensors


def options(spec, tensors, arch):
    return {"spec": {"padding": "symmetric", "bn_eps": 1e-5}, "notes": (NOTE,)}


SOURCE = Source(name="pycls", style="torch", prefixes=prefixes, head=head, options=options, prepare=prepare)
