"""Writes tests/fixtures/weights/*.npz: tiny timm networks (and two pycls-format copies) with their logits, for the
torch-free equivalence tests of the weight converters (tests/test_weights_timm.py).

    pip install torch==2.14.1 timm   # this script needs them; the tests do not
    python tools/make_weight_fixtures.py [--out tests/fixtures/weights]

How each fixture is made:

1. A tiny network of the family is built with timm's own classes (not a registered timm name: those are too big),
   `torch.manual_seed(SEED)` before construction, so timm's initialization draws the weights:
   - ``timm_regnetx`` / ``timm_regnety``: `timm.models.regnet.RegNet(RegNetCfg(depth=6, w0=16, wa=6, wm=1.5,
     group_size=8, stem_width=16[, se_ratio=0.25]))`: stages of 16, 24, 32, 56 channels, depths 1, 2, 2, 1.
   - ``timm_regnetz``: RegNetCfg(depth=5, w0=8, wa=8, wm=1.8, group_size=8, bottle_ratio=4, se_ratio=0.25,
     downsample=None, linear_out=True, num_features=64, act_layer="silu", stem_width=16): the RegNetZ block with
     its 1x1 head conv (timm ``final_conv``).
   - ``timm_resnet_rs``: `timm.models.resnet.ResNet` with timm's ResNet-RS options (deep stem, ``replace_stem_pool``,
     ``avg_down``, SE 0.25) at ``channels=(8, 16, 16, 24)``, ``layers=(1, 2, 1, 1)``, ``stem_width=8``.
   - ``timm_efficientnet``: `timm.models.efficientnet.EfficientNet` from the arch strings in ``EFFNET_ARCH`` (a
     depthwise-separable stage and three inverted-residual stages, a 5x5 stride-2 depthwise conv), stem 8, head 48,
     SiLU, symmetric padding, BN epsilon 1e-5 (as timm ``efficientnet_b*``).
   - ``timm_tf_efficientnet``: the same with ``pad_type="same"`` and BN epsilon 1e-3 (as timm ``tf_efficientnet_b*``).
   - ``pycls_regnety`` / ``pycls_efficientnet``: the tensors of ``timm_regnety`` / ``timm_efficientnet`` renamed to
     pycls's state-dict names (`rename_pycls`, written from pycls's anynet.py / effnet.py, independently of
     regnet_tf) with the stem conv's input channels reversed, i.e. the same network for BGR input, as pycls's
     checkpoints. Their expected logits are timm's on the RGB input.
2. `randomize` (a torch.Generator seeded with SEED + 1): every BatchNorm gets a random weight, every bias random
   values; the BN running statistics are set from what each BN sees on the fixture's input (step 3, 64 px), then
   perturbed, so no tensor is left at its 0/1 initialization and activations stay O(1); eval mode.
3. The input: 2 images of 64 x 64, N(0, 1) (`numpy.random.default_rng(SEED)`) rounded to float16 (exact in float32
   and float64), stored NHWC (a preprocessed batch for regnet_tf); the second resolution, 56, is its top-left crop
   (64: even feature maps only; 56: 28, 14, 7, 4, 2 - an odd map followed by a strided conv and an average-pool
   shortcut).
4. The logits of timm's model on that input (NCHW) at both resolutions: in float64 (``model.double()`` on the input
   cast to float64) and in float32.

Each .npz holds: ``t/<tensor name>`` (the state dict, float64), ``input``, ``logits64_<size>``,
``logits32_<size>``, ``sizes``, and JSON strings ``spec`` (our equivalent spec: ``kind`` + fields of the resolved
spec), ``overrides`` (spec options the weights need, e.g. tf_same padding), ``source`` (timm | pycls) and
``meta`` (versions, seeds, how it was made).

The full-size tests run this script too, in a process of their own (importing timm after TensorFlow crashes the
process in triton's import): ``--timm-model ARCH --out FILE`` writes one registered timm model the same way
(`full_size`), ``--timm-facts`` prints timm's model names and the normalization of its weight tags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from functools import partial

import numpy as np

SEED = 11
SIZES = (64, 56)
CLASSES = 10
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EFFNET_ARCH = [["ds_r1_k3_s1_e1_c8_se0.25"], ["ir_r2_k3_s2_e3_c16_se0.25"], ["ir_r2_k5_s2_e2_c24_se0.25"],
               ["ir_r1_k3_s2_e2_c32_se0.25"]]
_PYCLS_BOTTLENECK = {"conv1.conv": "f.a", "conv1.bn": "f.a_bn", "conv2.conv": "f.b", "conv2.bn": "f.b_bn",
                     "conv3.conv": "f.c", "conv3.bn": "f.c_bn", "se.fc1": "f.se.f_ex.0", "se.fc2": "f.se.f_ex.2",
                     "downsample.conv": "proj", "downsample.bn": "bn"}
_PYCLS_DS = {"conv_dw": "dwise", "bn1": "dwise_bn", "se.conv_reduce": "se.f_ex.0", "se.conv_expand": "se.f_ex.2",
             "conv_pw": "lin_proj", "bn2": "lin_proj_bn"}
_PYCLS_IR = {"conv_pw": "exp", "bn1": "exp_bn", "conv_dw": "dwise", "bn2": "dwise_bn", "se.conv_reduce": "se.f_ex.0",
             "se.conv_expand": "se.f_ex.2", "conv_pwl": "lin_proj", "bn3": "lin_proj_bn"}
_PYCLS_TOP = {"stem.conv": "stem.conv", "stem.bn": "stem.bn", "conv_stem": "stem.conv", "bn1": "stem.bn",
              "conv_head": "head.conv", "bn2": "head.conv_bn", "classifier": "head.fc", "head.fc": "head.fc"}


def rename_pycls(key: str) -> str:
    """A timm RegNet / EfficientNet tensor name -> pycls's name of the same tensor."""
    module, var = key.rsplit(".", 1)
    m = re.match(r"^(s\d+\.b\d+)\.(.+)$", module)
    if m:
        return f"{m[1]}.{_PYCLS_BOTTLENECK[m[2]]}.{var}"
    m = re.match(r"^blocks\.(\d+)\.(\d+)\.(.+)$", module)
    if m:
        table = _PYCLS_DS if m[1] == "0" else _PYCLS_IR  # EFFNET_ARCH: only stage 0 is depthwise-separable
        return f"s{int(m[1]) + 1}.b{int(m[2]) + 1}.{table[m[3]]}.{var}"
    return f"{_PYCLS_TOP[module]}.{var}"


def randomize(model, seed: int, x: np.ndarray):
    """Random BN weights and biases (and every other bias), and BN running statistics set, layer by layer, from
    what each BN sees in eval mode on the input ``x`` (NHWC), then perturbed (variance floored at 0.1 x the layer's
    mean, x U(0.5, 1.5); mean + N(0, 0.2) std). No statistic is left at 0/1 or is the batch's own, and activations
    on ``x`` stay O(1) at any depth, so the float64 comparison is well conditioned (random deep networks amplify
    rounding wherever a BN's statistics are far from its input's). Returns the model in eval mode."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def set_statistics(bn, inputs):
        x = inputs[0].transpose(0, 1).flatten(1)  # (C, N * H * W)
        var = torch.maximum(x.var(1), 0.1 * x.var(1).mean()) * (torch.rand(bn.num_features, generator=g) + 0.5)
        bn.running_var.copy_(var)
        bn.running_mean.copy_(x.mean(1) + torch.randn(bn.num_features, generator=g) * 0.2 * var.sqrt())

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        hooks = [m.register_forward_pre_hook(set_statistics) for m in bns]
        logits(model.eval(), x, np.float32)
        for h in hooks:
            h.remove()
    return model


def builders():
    """{fixture name: (timm model builder, our spec, spec overrides)}."""
    import torch
    from timm.layers import get_act_layer, get_attn
    from timm.models.efficientnet import EfficientNet
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.regnet import RegNet, RegNetCfg
    from timm.models.resnet import Bottleneck, ResNet

    from regnet_tf.models.efficientnet import EffNetSpec
    from regnet_tf.models.regnet import RegNetSpec
    from regnet_tf.models.resnet import ResNetSpec

    xy = dict(depth=6, w0=16, wa=6, wm=1.5, group_size=8, stem_width=16)
    ours_xy = dict(d=6, w0=16, wa=6, wm=1.5, g=8, stem_w=16)
    z = dict(depth=5, w0=8, wa=8, wm=1.8, group_size=8, bottle_ratio=4.0, se_ratio=0.25, downsample=None,
             linear_out=True, num_features=64, act_layer="silu", stem_width=16)
    ours_z = dict(d=5, w0=8, wa=8, wm=1.8, g=8, b=4.0, se_ratio=0.25, block="Z", head_w=64, activation="silu",
                  stem_w=16)
    effnet = lambda pad, eps: partial(  # noqa: E731
        EfficientNet, block_args=decode_arch_def(EFFNET_ARCH), num_classes=CLASSES, num_features=48, stem_size=8,
        act_layer=get_act_layer("swish"), norm_layer=partial(torch.nn.BatchNorm2d, eps=eps), pad_type=pad)
    ours_effnet = EffNetSpec(ds=(1, 2, 2, 1), ws=(8, 16, 24, 32), exp_rs=(1, 3, 2, 2), ks=(3, 3, 5, 3),
                             ss=(1, 2, 2, 2), stem_w=8, head_w=48, se_ratio=0.25, activation="silu")
    return {
        "timm_regnetx": (lambda: RegNet(RegNetCfg(**xy), num_classes=CLASSES), RegNetSpec(**ours_xy), {}),
        "timm_regnety": (lambda: RegNet(RegNetCfg(**xy, se_ratio=0.25), num_classes=CLASSES),
                         RegNetSpec(**ours_xy, block="Y", se_ratio=0.25), {}),
        "timm_regnetz": (lambda: RegNet(RegNetCfg(**z), num_classes=CLASSES), RegNetSpec(**ours_z), {}),
        "timm_resnet_rs": (
            lambda: ResNet(Bottleneck, (1, 2, 1, 1), num_classes=CLASSES, channels=(8, 16, 16, 24), stem_width=8,
                           stem_type="deep", replace_stem_pool=True, avg_down=True,
                           block_args=dict(attn_layer=partial(get_attn("se"), rd_ratio=0.25))),
            ResNetSpec(ds=(1, 2, 1, 1), ws=(8, 16, 16, 24), stem="v1", stem_w=16, replace_stem_pool=True,
                       resnetd_shortcut=True, se_ratio=0.25), {}),
        "timm_efficientnet": (effnet("", 1e-5), ours_effnet, {}),
        "timm_tf_efficientnet": (effnet("same", 1e-3), ours_effnet, {"padding": "tf_same", "bn_eps": 1e-3}),
    }


def logits(model, x_nhwc: np.ndarray, dtype) -> np.ndarray:
    import torch

    m = model.double() if dtype == np.float64 else model.float()
    with torch.no_grad():
        return m(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2), dtype=dtype))).numpy()


def make(out_dir: str) -> None:
    import timm
    import torch

    torch.set_num_threads(1)  # deterministic reductions
    # float16 values: exact in float32 and float64, half the bytes
    x = np.random.default_rng(SEED).standard_normal((2, max(SIZES), max(SIZES), 3)).astype(np.float16)
    meta = dict(timm=timm.__version__, torch=torch.__version__, numpy=np.__version__, seed=SEED, sizes=SIZES,
                script="tools/make_weight_fixtures.py")
    os.makedirs(out_dir, exist_ok=True)
    for name, (build, spec, overrides) in builders().items():
        torch.manual_seed(SEED)
        model = randomize(build(), SEED + 1, x.astype(np.float32))
        out = {f"logits{bits}_{s}": logits(model, x[:, :s, :s], dtype)
               for s in SIZES for bits, dtype in ((64, np.float64), (32, np.float32))}
        state = {k: (v.double() if v.is_floating_point() else v).numpy()  # + BN step counters (int64, ignored)
                 for k, v in model.state_dict().items()}
        resolved = spec.resolved()
        spec_json = json.dumps({"kind": resolved.kind, "fields": dataclasses.asdict(resolved)})
        fixtures = {name: (state, "timm")}
        if name in ("timm_regnety", "timm_efficientnet"):
            pycls = {rename_pycls(k): v for k, v in state.items()}
            pycls["stem.conv.weight"] = pycls["stem.conv.weight"][:, ::-1].copy()  # the network for BGR input
            fixtures[name.replace("timm_", "pycls_")] = (pycls, "pycls")
        for fname, (tensors, source) in fixtures.items():
            path = os.path.join(out_dir, f"{fname}.npz")
            np.savez_compressed(
                path, input=x, sizes=np.array(SIZES), spec=np.array(spec_json),
                overrides=np.array(json.dumps(overrides)), source=np.array(source),
                meta=np.array(json.dumps({**meta, "fixture": fname})), **out,
                **{f"t/{k}": v for k, v in tensors.items()})
            print(f"{path}: {len(tensors)} tensors, {os.path.getsize(path) / 1e3:.0f} kB")


def full_size(arch: str, out: str, size: int = 100, seed: int = 1, identity=()) -> None:
    """A registered timm model (``pretrained=False``), `randomize`d, for the full-size tests: writes ``out`` (.npz)
    with ``t/<tensor name>`` (float32: timm computes in float32, so exact), ``input`` (1 image, N(0, 1), float64),
    ``logits64`` / ``logits32`` (timm's, in float64 / on the input cast to float32) and ``bn_eps`` (every BN
    epsilon of the model). ``identity``: top-level modules replaced by ``Identity`` first (e.g. ``final_conv``)."""
    import timm
    import torch

    torch.manual_seed(seed - 1)
    model = timm.create_model(arch, pretrained=False)
    for name in identity:
        setattr(model, name, torch.nn.Identity())
    x = np.random.default_rng(seed - 1).standard_normal((1, size, size, 3))
    model = randomize(model, seed, x.astype(np.float32))
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    eps = sorted({m.eps for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})
    np.savez(out, input=x, logits64=logits(model, x, np.float64), logits32=logits(model, x.astype(np.float32),
                                                                                    np.float32),
             bn_eps=np.array(eps), **{f"t/{k}": v for k, v in state.items()})


def timm_facts() -> dict:
    """timm's names of the architectures of our families and the mean/std of every pretrained weight tag."""
    import timm
    from timm.models import get_pretrained_cfg

    names = sum((timm.list_models(p) for p in ("regnet*", "resnetrs*", "*efficientnet_b*", "resnet[0-9]*")), [])
    tags = {t: [list(get_pretrained_cfg(t).mean), list(get_pretrained_cfg(t).std)] for t in timm.list_pretrained()
            if t.split(".")[0] in names}
    return {"names": names, "tags": tags, "is_model": {n: timm.is_model(n) for n in names}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "weights"),
                        help="the fixture directory; with --timm-model the .npz file")
    parser.add_argument("--timm-model", help="write one full-size timm model instead (`full_size`)")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--identity", nargs="*", default=(), help="modules to replace by Identity (--timm-model)")
    parser.add_argument("--timm-facts", action="store_true", help="print `timm_facts` as JSON")
    args = parser.parse_args(argv)
    if args.timm_facts:
        print(json.dumps(timm_facts()))
    elif args.timm_model:
        full_size(args.timm_model, args.out, args.size, args.seed, args.identity)
    else:
        make(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
