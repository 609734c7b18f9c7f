"""Spec generation, compatibility adjustment, exact complexity and the registry. Pure Python: no TensorFlow."""

import sys

import pytest

import regnet_tf
from regnet_tf import AnyNetSpec, RegNetSpec, adjust_block_compatibility, complexity, generate_regnet
from regnet_tf.zoo import get_spec, list_models, to_anynet

# pycls dev/model_complexity.json / MODEL_ZOO (pycls.md 1.2): stage widths, depths, adjusted group widths,
# flops (multiply-adds), params, acts at 224 px with 1000 classes.
PYCLS = {
    "regnetx_002": ([24, 56, 152, 368], [1, 1, 4, 7], [8] * 4, 199040872, 2684792, 2164056),
    "regnetx_004": ([32, 64, 160, 384], [1, 2, 7, 12], [16] * 4, 397678568, 5157512, 3143272),
    "regnetx_006": ([48, 96, 240, 528], [1, 3, 5, 7], [24] * 4, 600891112, 6196040, 3975096),
    "regnetx_008": ([64, 128, 288, 672], [1, 3, 7, 5], [16] * 4, 799700712, 7259656, 5148744),
    "regnetx_016": ([72, 168, 408, 912], [2, 4, 10, 2], [24] * 4, 1602850792, 9190136, 7933512),
    "regnetx_032": ([96, 192, 432, 1008], [2, 6, 15, 2], [48] * 4, 3176622952, 15296552, 11367432),
    "regnetx_040": ([80, 240, 560, 1360], [2, 5, 14, 2], [40] * 4, 3964499816, 22118248, 12201608),
    "regnetx_064": ([168, 392, 784, 1624], [2, 4, 10, 1], [56] * 4, 6460292264, 26209256, 16369744),
    "regnetx_080": ([80, 240, 720, 1920], [2, 5, 15, 1], [80, 120, 120, 120], 7995133416, 39572648, 14059688),
    "regnetx_120": ([224, 448, 896, 2240], [2, 5, 11, 1], [112] * 4, 12086679016, 46106056, 21366568),
    "regnetx_160": ([256, 512, 896, 2048], [2, 6, 13, 1], [128] * 4, 15940756456, 54278536, 25515496),
    "regnetx_320": ([336, 672, 1344, 2520], [2, 7, 13, 1], [168] * 4, 31735930792, 107811560, 36302160),
    "regnety_002": ([24, 56, 152, 368], [1, 1, 4, 7], [8] * 4, 199519076, 3162996, 2168052),
    "regnety_004": ([48, 104, 208, 440], [1, 3, 6, 6], [8] * 4, 401849056, 4344144, 3892496),
    "regnety_006": ([48, 112, 256, 608], [1, 3, 7, 4], [16] * 4, 601227608, 6055160, 4334296),
    "regnety_008": ([64, 128, 320, 768], [1, 3, 8, 2], [16] * 4, 797183328, 6263168, 5249888),
    "regnety_016": ([48, 120, 336, 888], [2, 6, 17, 2], [24] * 4, 1612087326, 11202430, 8044814),
    "regnety_032": ([72, 216, 576, 1512], [2, 5, 13, 1], [24] * 4, 3176496162, 19436338, 11263418),
    "regnety_040": ([128, 192, 512, 1088], [2, 6, 12, 2], [64] * 4, 3973301344, 20646656, 12287200),
    "regnety_064": ([144, 288, 576, 1296], [2, 7, 14, 2], [72] * 4, 6355221876, 30583252, 16407188),
    "regnety_080": ([168, 448, 896, 2016], [2, 4, 10, 1], [56] * 4, 7963074196, 39180068, 17968916),
    "regnety_120": ([224, 448, 896, 2240], [2, 5, 11, 1], [112] * 4, 12092395504, 51822544, 21384496),
    "regnety_160": ([224, 448, 1232, 3024], [2, 4, 11, 1], [112] * 4, 15911534044, 83590140, 23041228),
    "regnety_320": ([232, 696, 1392, 3712], [2, 5, 12, 1], [232] * 4, 32279583362, 145046770, 30261570),
}

# RegNetZ: pycls publishes none; these follow pycls's conventions (reference notes pycls.md 1.4 give the same
# values rounded: Z-500MF 507.2M / 7.12M / 5.86M at 224 with the 1024 head; Z-4GF 4.02G / 27.12M / 24.19M at
# 256 without a head and 4.07G / 28.94M / 24.29M with the 1536 head; 3.08G / 18.53M acts at 224).
REGNETZ = {
    ("regnetz_005", 224): ([16, 40, 104, 256], [1, 4, 9, 7], 507217126, 7122742, 5860358),
    ("regnetz_040", 256): ([48, 104, 240, 528], [2, 6, 14, 6], 4015422144, 27116800, 24191936),
    ("regnetz_040", 224): ([48, 104, 240, 528], [2, 6, 14, 6], 3075543744, 27116800, 18529376),
    ("regnetz_040_h", 256): ([48, 104, 240, 528], [2, 6, 14, 6], 4068334656, 28938880, 24290240),
}


def test_pure_python_import():
    import subprocess  # other tests import TensorFlow: check in a fresh interpreter

    code = ("import sys, regnet_tf; regnet_tf.complexity('regnety_016'); regnet_tf.scale('resnet_rs_50', 2); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", sorted(PYCLS))
def test_regnet_zoo_matches_pycls_exactly(name):
    ws, ds, gs, flops, params, acts = PYCLS[name]
    a = to_anynet(name)
    assert list(a.ws) == ws and list(a.ds) == ds and list(a.gs) == gs
    assert complexity(name, 224) == {"flops": flops, "params": params, "acts": acts}


@pytest.mark.parametrize("key", sorted(REGNETZ))
def test_regnetz_complexity(key):
    name, res = key
    ws, ds, flops, params, acts = REGNETZ[key]
    a = to_anynet(name)
    assert list(a.ws) == ws and list(a.ds) == ds and a.block == "Z" and a.bs == (4.0,) * 4
    assert complexity(name, res) == {"flops": flops, "params": params, "acts": acts}


def test_zoo_is_complete():
    names = list_models()
    assert len([n for n in names if n.startswith("regnet")]) == 27 and set(PYCLS) <= set(names)
    assert {"regnetz_005", "regnetz_040", "regnetz_040_h"} <= set(names)
    assert list_models("regnety") == [n for n in names if n.startswith("regnety")]
    assert list_models("regnet?_00*") == [n for n in names if n[7:10] == "_00"]


def test_default_resolution_is_used():
    assert complexity("regnetz_040") == complexity("regnetz_040", 256)
    assert complexity(get_spec("regnetz_040")) == complexity("regnetz_040", 224)  # a bare spec: 224


def test_half_to_even_in_generation():
    # X-1.6GF: w0 * wm / 8 = 80 * 2.25 / 8 = 22.5 exactly -> 22 (half-up would give 23 -> 184 -> 192).
    ws, ds, *_ = generate_regnet(34.01, 80, 2.25, 18)
    assert ws == [80, 176, 408, 912] and ds == [2, 4, 10, 2]
    assert RegNetSpec(d=18, w0=80, wa=34.01, wm=2.25, g=24).to_anynet().ws == (72, 168, 408, 912)


def test_half_to_even_in_compatibility():
    # X-400MF stage 4: 392 / 16 = 24.5 -> 24 -> 384 (half-up: 400).
    assert adjust_block_compatibility([392], [1.0], [16])[0] == [384]
    # Y-800MF: 136 / 16 = 8.5 -> 128 (half-up 144); 776 / 16 = 48.5 -> 768 (half-up 784).
    assert adjust_block_compatibility([136, 776], [1.0, 1.0], [16, 16])[0] == [128, 768]
    assert complexity("regnetx_004")["flops"] == 397678568  # 0.414 GF with half-up rounding


def test_compatibility_clamps_group_width_and_handles_inverted_bottleneck():
    # X-8.0GF stage 1: width 80 < group width 120 -> g = 80 (one group).
    assert adjust_block_compatibility([80, 240], [1.0, 1.0], [120, 120]) == ([80, 240], [1.0, 1.0], [80, 120])
    # b = 4: the inner width is rounded to a multiple of lcm(g, 4).
    ws, bs, gs = adjust_block_compatibility([18], [4.0], [8])
    assert (ws, bs, gs) == ([18], [4.0], [8]) and ws[0] * bs[0] % gs[0] == 0  # 72 is already a multiple of 8
    ws, _, _ = adjust_block_compatibility([17], [4.0], [24])  # 68 -> 72 (lcm(24, 4) = 24)
    assert ws == [18]
    with pytest.raises(ValueError, match="whole numbers"):
        adjust_block_compatibility([64], [1.5], [8])
    # the adjustment moves widths by at most 1/3 (RegNet paper, appendix D)
    for w in range(8, 400, 8):
        for g in (8, 16, 24, 48, 56):
            w2 = adjust_block_compatibility([w], [1.0], [g])[0][0]
            assert abs(w2 - w) <= w / 3 + 1e-9 or g > w


def test_stage_count_errors():
    with pytest.raises(ValueError, match="give 4 stages.*num_stages=3"):
        RegNetSpec(d=13, w0=24, wa=36.44, wm=2.49, g=8, num_stages=3).to_anynet()
    # two stage exponents quantize to the same width (8 * 1.1 rounds back to 8)
    with pytest.raises(ValueError, match="same width"):
        RegNetSpec(d=10, w0=8, wa=0.5, wm=1.1, g=8, num_stages=2).to_anynet()
    with pytest.raises(ValueError, match="w0 % 8"):
        generate_regnet(10.0, 20, 2.0, 10)
    with pytest.raises(ValueError, match="wm > 1"):
        generate_regnet(10.0, 24, 1.0, 10)


def test_regnet_spec_defaults_and_block_types():
    a = RegNetSpec(d=13, w0=24, wa=36.44, wm=2.49, g=8).to_anynet()
    assert a.ss == (2, 2, 2, 2) and a.bs == (1.0,) * 4 and a.stem == "simple" and a.stem_w == 32
    r = RegNetSpec(d=13, w0=24, wa=36.44, wm=2.49, g=8, block="R").to_anynet()
    assert r.gs == r.ws  # R: no groups
    x = complexity(a)
    assert complexity(r)["params"] > x["params"]  # dense 3x3 convs have more weights
    v = complexity(AnyNetSpec(ds=(1, 1), ws=(16, 32), block="V"), 32)
    vr = complexity(AnyNetSpec(ds=(1, 1), ws=(16, 32), block="VR"), 32)
    # VR = V + two projection shortcuts (1x1 conv + BN each): 32x16 + 2x16 and 16x32 + 2x32 params
    assert vr["params"] - v["params"] == (32 * 16 + 32) + (16 * 32 + 64)


def test_anynet_spec_validation():
    with pytest.raises(ValueError, match="unknown block type 'Q'.*X, Y, Z, R, V, VR"):
        AnyNetSpec(ds=(1,), ws=(8,), block="Q")
    with pytest.raises(ValueError, match="one entry per stage"):
        AnyNetSpec(ds=(1, 2), ws=(8,))
    with pytest.raises(ValueError, match="not divisible by the group width"):
        AnyNetSpec(ds=(1,), ws=(24,), gs=(16,))
    with pytest.raises(ValueError, match="se_ratio > 0"):
        AnyNetSpec(ds=(1,), ws=(8,), block="Y")
    with pytest.raises(ValueError, match="unknown activation"):
        AnyNetSpec(ds=(1,), ws=(8,), activation="gelu2")


def test_counter_conventions_by_hand():
    # One X stage: stem 3x3 s2 (3->32) at 32 px -> 16x16; block 32 -> 64 stride 2, g = 64 (one group) -> 8x8.
    spec = AnyNetSpec(ds=(1,), ws=(64,), gs=(64,), se_ratio=0.25)
    cx = complexity(spec, 32, classes=10)
    stem = dict(flops=9 * 3 * 32 * 256, params=9 * 3 * 32 + 64, acts=32 * 256)
    proj = dict(flops=32 * 64 * 64, params=32 * 64 + 128, acts=64 * 64)
    a = dict(flops=32 * 64 * 256, params=32 * 64 + 128, acts=64 * 256)  # 1x1 at 16x16, before the stride
    b = dict(flops=9 * 64 * 64 * 64, params=9 * 64 * 64 + 128, acts=64 * 64)
    w_se = 8  # round(0.25 * 32): of the block input width
    se = dict(flops=64 * 8 + 8 + 8 * 64 + 64, params=64 * 8 + 8 + 8 * 64 + 64, acts=8 + 64)
    c = dict(flops=64 * 64 * 64, params=64 * 64 + 128, acts=64 * 64)
    fc = dict(flops=64 * 10 + 10, params=64 * 10 + 10, acts=10)
    parts = [stem, proj, a, b, se, c, fc]
    assert w_se == 8
    assert cx == {k: sum(p[k] for p in parts) for k in ("flops", "params", "acts")}


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match="Did you mean: .*regnety_016.*Valid names: .*regnetx_002"):
        get_spec("regnety_16")
    with pytest.raises(ValueError, match="Unknown model"):
        complexity("resnet9000")


def test_zoo_table():
    from regnet_tf import zoo

    rows = zoo.rows("regnetx_0[01]*")
    assert [r["model"] for r in rows] == ["regnetx_002", "regnetx_004", "regnetx_006", "regnetx_008", "regnetx_016"]
    text = zoo.format_table(rows)
    assert "RegNetX-1.6GF" in text and "1.603" in text and "9.19" in text
    md = zoo.format_table(rows, markdown=True)
    assert md.splitlines()[0].startswith("| model |") and md.count("\n") == 6
    with pytest.raises(ValueError, match="Unknown model filter"):
        zoo.rows("nothing_like_this")


def test_version_is_one_fact():
    import importlib.metadata
    import re

    # setup.py reads the version from regnet_tf/__init__.py: the installed metadata says the same
    assert re.fullmatch(r"\d+\.\d+\.\d+", regnet_tf.__version__)
    assert importlib.metadata.version("regnet_tf") == regnet_tf.__version__


def test_anynet_resnet_configs_match_pycls_zoo():
    # pycls configs/dds_baselines/resnet (AnyNet form: res stem, stride on the 3x3, b = 0.25 / ResNeXt b = 0.5);
    # pycls MODEL_ZOO: R-50 4.1 GF / 25.6 M / 11.3 M acts, X-50 4.2 / 25.0 / 14.6, R-101 7.8 / 44.5 / 16.4,
    # R-152 11.5 / 60.2 / 22.8. 25,557,032 is also torchvision's ResNet-50 parameter count.
    r50 = AnyNetSpec(ds=(3, 4, 6, 3), ws=(256, 512, 1024, 2048), ss=(1, 2, 2, 2), bs=(0.25,) * 4,
                     gs=(64, 128, 256, 512), stem="res", stem_w=64)
    x50 = r50.replace(bs=(0.5,) * 4, gs=(4, 8, 16, 32))
    assert complexity(r50) == {"flops": 4089185256, "params": 25557032, "acts": 11315688}
    assert complexity(x50)["params"] == 25028904
    for spec, (gf, mp, ma) in [(x50, (4.2, 25.0, 14.6)), (r50.replace(ds=(3, 4, 23, 3)), (7.8, 44.5, 16.4)),
                               (r50.replace(ds=(3, 8, 36, 3)), (11.5, 60.2, 22.8))]:
        cx = complexity(spec)
        assert (round(cx["flops"] / 1e9, 1), round(cx["params"] / 1e6, 1), round(cx["acts"] / 1e6, 1)) == (gf, mp, ma)
