"""timm (PyTorch Image Models) state dicts -> our RegNet X/Y/Z, ResNet / ResNet-RS and EfficientNet.

    from regnet_tf import weights
    model, config = weights.convert("timm", "regnety_040", "model.safetensors", arch="regnety_040")

timm's networks are ours layer for layer; only the names differ (`SOURCE.prefixes`):

- RegNet (timm ``regnet.py``): ``stem.conv`` / ``stem.bn``, ``s{i}.b{j}.conv1|conv2|conv3`` ``.conv`` / ``.bn``,
  ``.se.fc1|fc2``, ``.downsample.conv|bn``, ``final_conv.conv|bn`` (RegNetZ's head conv), ``head.fc``.
- ResNet (timm ``resnet.py``): ``conv1`` (7x7) or the deep stem ``conv1.0|1|3|4|6`` + ``bn1``, ``maxpool.0|1`` (a
  conv in place of the max pool, ResNet-RS), ``layer{i}.{j-1}.conv1|bn1|conv2|bn2|conv3|bn3``, ``.se.fc1|fc2``,
  ``.downsample.0|1`` (``.1|2`` behind the average pool of ResNet-D / RS), ``fc``.
- EfficientNet (timm ``efficientnet.py``): ``conv_stem``, ``bn1``, ``blocks.{i-1}.{j-1}`` (depthwise-separable first
  stage: ``conv_dw``, ``bn1``, ``se.conv_reduce|conv_expand``, ``conv_pw``, ``bn2``; inverted residuals:
  ``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``, ``se``, ``conv_pwl``, ``bn3``), ``conv_head``, ``bn2``, ``classifier``.

Conventions (`options`): timm pads every convolution symmetrically ((k - 1) // 2, as ours) and uses BatchNorm
epsilon 1e-5, except the ``tf_*`` models (weights ported from TensorFlow: TF "SAME" padding, epsilon 1e-3). They
take ImageNet mean/std-normalized RGB, as ours; a few weight tags were trained on mean = std = 0.5 (the
`WeightsConfig` then gives the model an input adapter). ``arch`` (timm's model name, optionally with its ``.tag``)
is checked against the model: `TIMM_TO_OURS` lists every timm architecture with a counterpart in our registry, and
`our_name` says why the others have none.
"""

from __future__ import annotations

import re

from regnet_tf.weights.core import ConversionError, Source, architecture
from regnet_tf.zoo import get_spec

_REGNET_CODES = ("002", "004", "006", "008", "016", "032", "040", "064", "080", "120", "160", "320")
# timm architecture -> our registry name (same architecture; the tf_ variants differ in padding and BN epsilon only)
TIMM_TO_OURS = {
    **{f"regnet{x}_{c}": f"regnet{x}_{c}" for x in "xy" for c in _REGNET_CODES},
    "regnetz_005": "regnetz_005", "regnetz_040": "regnetz_040", "regnetz_040_h": "regnetz_040_h",
    "regnetz_040h": "regnetz_040_h",  # timm's deprecated name
    **{f"resnetrs{d}": f"resnet_rs_{d}" for d in (50, 101, 152, 200, 270, 350, 420)},
    **{f"resnet{d}": f"resnet_{d}" for d in (50, 101, 152, 200)},
    **{f"{tf}efficientnet_b{k}": f"efficientnet_b{k}" for tf in ("", "tf_") for k in range(8)},
}
# timm architectures of our families that have no counterpart, with the reason (first match wins)
_NO_COUNTERPART = (
    (r"_tv$", "torchvision's width rounding (group_min_ratio 0.9) gives other stage widths"),
    (r"^regnetv_", "pre-activation blocks (timm's PreBottleneck), which regnet_tf does not build"),
    (r"_sgn$|_gn$|_evos$", "GroupNorm / EvoNorm instead of BatchNorm"),
    (r"_pruned$", "channel-pruned widths"),
    (r"^regnetz_[b-e]", "timm's ByobNet RegNetZ variants (another architecture than the RegNetZ of regnet_tf)"),
    (r"^regnety_(640|1280|2560)$|efficientnet_(b8|l2)$|^resnet\d+d$",
     "not in regnet_tf's zoo; build its spec by hand (RegNetSpec, ResNetSpec, EffNetSpec) and convert without arch="),
    (r"blur", "blur-pool (anti-aliased) downsampling, which regnet_tf does not build"),
    (r"^resnet", "a ResNet variant outside regnet_tf's zoo (it has timm's resnet50/101/152/200 and resnetrs*); if "
                 "ResNetSpec describes it, convert into that spec without arch="),
)
# weight tags trained on inputs normalized with mean = std = 0.5 (timm 1.0.31's pretrained configs; others: ImageNet's)
_HALF_NORMALIZED = r"\.(ap_in1k|ra4_e3600_r\d+_in1k)$"


def our_name(timm_name: str) -> str:
    """Our registry name for timm architecture ``timm_name`` (a ``.tag`` suffix is ignored). Raises
    `ConversionError` saying why when there is none."""
    arch = timm_name.split(".")[0]
    if arch in TIMM_TO_OURS:
        return TIMM_TO_OURS[arch]
    reason = next((why for pattern, why in _NO_COUNTERPART if re.search(pattern, arch)),
                  "unknown to regnet_tf's timm converter")
    raise ConversionError(f"timm {arch} has no counterpart in regnet_tf: {reason}. timm architectures with one: "
                          f"{', '.join(sorted(TIMM_TO_OURS))}")


def check_arch(spec, arch: str) -> None:
    """Refuses a spec that is not the architecture of timm's ``arch`` (`ConversionError` naming the differences)."""
    name = our_name(arch)
    theirs = get_spec(name).resolved()
    if theirs.kind != spec.kind:
        raise ConversionError(f"timm {arch} is regnet_tf's {name} (kind {theirs.kind}); the model is of kind "
                              f"{spec.kind}")
    ours, want = architecture(spec), architecture(theirs)
    diff = [f"{k}: {ours[k]} (model) vs {want[k]} ({name})" for k in want if ours[k] != want[k]]
    if diff:
        raise ConversionError(f"timm {arch} is regnet_tf's {name}; the model differs in:\n  " + "\n  ".join(diff))


def layer_prefixes(layer_names, top: dict, block, parts: dict) -> dict:
    """{our layer: source prefix}: ``top`` maps whole names (stem, head), block layers ``s{i}_b{j}_{part}`` map to
    ``block(i, j) + "." + parts[i][part]`` (1-based i, j). Names without a mapping are left out (`core.assign`
    lists them). Shared by the timm and pycls sources."""
    out = {}
    for name in layer_names:
        m = re.match(r"^s(\d+)_b(\d+)_(.+)$", name)
        if m and m[3] in parts.get(int(m[1]), {}):
            out[name] = f"{block(int(m[1]), int(m[2]))}.{parts[int(m[1])][m[3]]}"
        elif name in top:
            out[name] = top[name]
    return out


def _bn_pairs(**convs) -> dict:
    """{"a": "conv1.conv", ...} -> also {"a_bn": "conv1.bn", ...} for timm's ConvNormAct modules."""
    out = {}
    for ours, theirs in convs.items():
        out[ours], out[f"{ours}_bn"] = f"{theirs}.conv", f"{theirs}.bn"
    return out


def _regnet(spec, names):
    if spec.stem != "simple" or spec.block not in ("X", "Y", "Z", "R"):
        raise ConversionError(f"timm's RegNet has the simple stem and X/Y/Z bottleneck blocks; this AnyNet has "
                              f"stem={spec.stem!r}, block={spec.block!r}")
    block = {**_bn_pairs(a="conv1", b="conv2", c="conv3", proj="downsample"), "se_reduce": "se.fc1",
             "se_expand": "se.fc2"}
    top = {**_bn_pairs(stem_conv="stem", head_conv="final_conv"), "predictions": "head.fc"}
    return layer_prefixes(names, top, lambda i, j: f"s{i}.b{j}", {i: block for i in range(1, spec.num_stages + 1)})


def _resnet(spec, names):
    proj = (1, 2) if spec.resnetd_shortcut else (0, 1)  # ResNet-D: downsample.0 is the (Identity) average pool
    block = {"a": "conv1", "a_bn": "bn1", "b": "conv2", "b_bn": "bn2", "c": "conv3", "c_bn": "bn3",
             "se_reduce": "se.fc1", "se_expand": "se.fc2", "proj": f"downsample.{proj[0]}",
             "proj_bn": f"downsample.{proj[1]}"}
    if spec.stem == "v0":
        top = {"stem_conv": "conv1", "stem_conv_bn": "bn1"}
    else:  # deep stem: conv1 = Sequential(conv, bn, act, conv, bn, act, conv), then bn1
        top = {"stem_conv1": "conv1.0", "stem_conv1_bn": "conv1.1", "stem_conv2": "conv1.3",
               "stem_conv2_bn": "conv1.4", "stem_conv3": "conv1.6", "stem_conv3_bn": "bn1"}
    top.update(stem_pool_conv="maxpool.0", stem_pool_conv_bn="maxpool.1", predictions="fc")
    stages = {i: block for i in range(1, spec.num_stages + 1)}
    return layer_prefixes(names, top, lambda i, j: f"layer{i}.{j - 1}", stages)


_DS_BLOCK = {"dw": "conv_dw", "dw_bn": "bn1", "project": "conv_pw", "project_bn": "bn2"}  # exp_r == 1
_IR_BLOCK = {"expand": "conv_pw", "expand_bn": "bn1", "dw": "conv_dw", "dw_bn": "bn2", "project": "conv_pwl",
             "project_bn": "bn3"}


def _efficientnet(spec, names):
    se = {"se_reduce": "se.conv_reduce", "se_expand": "se.conv_expand"}
    parts = {i: {**(_DS_BLOCK if e == 1 else _IR_BLOCK), **se} for i, e in enumerate(spec.exp_rs, 1)}
    top = {"stem_conv": "conv_stem", "stem_conv_bn": "bn1", "head_conv": "conv_head", "head_conv_bn": "bn2",
           "predictions": "classifier"}
    return layer_prefixes(names, top, lambda i, j: f"blocks.{i - 1}.{j - 1}", parts)


_FAMILIES = {"anynet": (_regnet, "head.fc"), "resnet": (_resnet, "fc"), "efficientnet": (_efficientnet, "classifier")}


def _family(spec):
    if spec.kind not in _FAMILIES:
        raise ConversionError(f"timm weights convert into RegNet/AnyNet, ResNet and EfficientNet models; got a "
                              f"{spec.kind} spec")
    return _FAMILIES[spec.kind]


def prefixes(spec, layer_names):
    return _family(spec)[0](spec, layer_names)


def head(spec):
    return tuple(f"{_family(spec)[1]}.{v}" for v in ("weight", "bias"))


def options(spec, tensors, arch: str):
    """timm's conventions for ``arch``: symmetric padding and BN epsilon 1e-5; TF "SAME" and 1e-3 for ``tf_*``;
    inputs normalized with mean = std = 0.5 for the weight tags that were trained so (AdvProp ``.ap_in1k``, ...)."""
    if arch:
        check_arch(spec, arch)
    if spec.kind == "anynet" and spec.block == "Z" and not spec.head_w and not spec.head_act:
        raise ConversionError(
            "timm's RegNetZ without a head conv (regnetz_040) applies its activation after the last stage "
            "(timm final_conv = SiLU); this Z network has none there (set head_act=True, as regnet_tf's regnetz_040), "
            "so the converted model would compute another function")
    tf = arch.split(".")[0].startswith("tf_")
    out = {"spec": {"padding": "tf_same" if tf else "symmetric", "bn_eps": 1e-3 if tf else 1e-5}}
    if re.search(_HALF_NORMALIZED, arch):
        out.update(input_mean=(0.5, 0.5, 0.5), input_std=(0.5, 0.5, 0.5))
    return out


SOURCE = Source(name="timm", style="torch", prefixes=prefixes, head=head, options=options)
