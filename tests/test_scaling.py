"""Model scaling: factors, pycls's rounding, the paper's complexity laws, pycls's scaled RegNetY-4GF."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from regnet_tf import AnyNetSpec, EffNetSpec, RegNetSpec, ResNetSpec, complexity, scale
from regnet_tf.scaling import scaling_factors, strategy_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTORS = (2, 4, 8, 16)


def test_scaling_factors():
    d, w, g, r = scaling_factors("dWr", 4.0)  # alpha 0.8: e_d = 0.1, e_w = 0.4, e_r = 0.05
    assert np.allclose([d, w, g, r], [4 ** 0.1, 4 ** 0.4, 4 ** 0.4, 4 ** 0.05])
    assert np.allclose(scaling_factors("d1_w8_g8_r1", 4.0), (d, w, g, r))  # pycls's spelling of dWr
    assert np.allclose(scaling_factors("dwr", 8.0), (2.0, 8 ** (1 / 6), 8 ** (1 / 6), 8 ** (1 / 6)))
    assert np.allclose(scaling_factors("w", 4.0), (1.0, 2.0, 2.0, 1.0))  # g scales like w by default
    assert np.allclose(scaling_factors("d1_w1_g0", 4.0), (2.0, 2 ** 0.5, 1.0, 1.0))  # pycls letters: g fixed
    for a in (0.5, 2 / 3, 0.8, 1.0):
        d, w, g, r = scaling_factors("dWr", 16.0, alpha=a)
        assert math.isclose(d * w * w * r * r, 16.0) and math.isclose(w, 16 ** (a / 2))
    assert strategy_weights("dWr", 1.0)["d"] == 0.0
    with pytest.raises(ValueError, match="unknown scaling strategy 'x'.*dWr"):
        strategy_weights("x")
    with pytest.raises(ValueError, match="alpha"):
        strategy_weights("dWr", alpha=1.5)


def test_pycls_scaled_regnety_4gf_reproduced_exactly():
    # pycls vitconfigs: RegNetY-4.0GF (d 26, w0 88, wa 30.3, wm 2.404, g 32, train 240) scaled with d1_w8_g8_r1
    base = RegNetSpec(d=26, w0=88, wa=30.3, wm=2.404, g=32, block="Y", se_ratio=0.25)
    s16, r16 = scale(base, 4, "dWr", resolution=240)
    assert (s16.ds, s16.ws, s16.gs, r16) == ((2, 7, 18, 2), (168, 336, 896, 2128), (56,) * 4, 256)
    s32, r32 = scale(base, 8, "d1_w8_g8_r1", resolution=240)
    assert (s32.ds, s32.ws, s32.gs, r32) == ((2, 7, 20, 2), (216, 432, 1152, 2808), (72,) * 4, 268)


def test_rounding_rules():
    spec = AnyNetSpec(ds=(1, 2), ws=(24, 48), gs=(3, 24))
    out, _ = scale(spec, 4, "w")  # w x2 -> 48, 96; g x2 -> 6 (-> 8), 48
    assert out.ws == (48, 96) and out.gs == (8, 48)
    out, _ = scale(AnyNetSpec(ds=(1,), ws=(16,), gs=(2,)), 2, "w")  # g 2 * 1.41 = 2.8 -> 3 -> 4
    assert out.gs == (4,)
    same = AnyNetSpec(ds=(1, 2), ws=(24, 48), gs=(8, 24))
    assert scale(same, 1, "dWr")[0] == same and scale(same, 1, "dWr", resolution=224)[1] == 224
    assert scale(spec, 1, "dWr")[0].gs == (4, 24)  # pycls's group-width rounding: 3 -> 4, even at s = 1
    # depth never below 1, resolution a multiple of 4
    small, res = scale(spec, 0.1, "dwr", resolution=224)
    assert min(small.ds) >= 1 and res % 4 == 0 and res < 224


@pytest.mark.parametrize("name", ["regnety_040", "regnetx_016", "efficientnet_b0", "resnet_rs_50"])
def test_fast_compound_scaling_hits_the_flops_target(name):
    base = complexity(name)
    for s in FACTORS:
        spec, res = scale(name, s, "dWr")
        assert abs(complexity(spec, res)["flops"] / (s * base["flops"]) - 1) < 0.15, (name, s)


def _acts_exponent(name, strategy, alpha=0.8):
    base = complexity(name)["acts"]
    acts = [complexity(*scale(name, s, strategy, alpha))["acts"] / base for s in FACTORS]
    return np.polyfit(np.log(FACTORS), np.log(acts), 1)[0]


@pytest.mark.parametrize("name", ["regnety_040", "efficientnet_b0", "resnet_rs_50"])
def test_activation_growth_follows_the_paper(name):
    # acts ~ s^(1 - alpha/2) for the alpha family (paper Table 4); s^0.5 for w and s^1 for r (Table 1)
    assert abs(_acts_exponent(name, "dWr") - 0.6) < 0.05
    assert abs(_acts_exponent(name, "w") - 0.5) < 0.05
    assert abs(_acts_exponent(name, "r") - 1.0) < 0.05
    if name == "regnety_040":
        # (at small alpha the unscaled stem and head dilute the depth share: 0.70 instead of 0.75 at alpha 0.5)
        for alpha in (2 / 3, 1.0):
            assert abs(_acts_exponent(name, "dWr", alpha) - (1 - alpha / 2)) < 0.05


def test_every_family_scales():
    rs, res = scale("resnet_rs_50", 4, "d")
    assert isinstance(rs, ResNetSpec) and res == 160 and sum(rs.ds) > sum((3, 4, 6, 3))
    en, res = scale("efficientnet_b0", 2, "dwr")
    assert isinstance(en, EffNetSpec) and en.stem_w % 8 == 0 and en.head_w > 1280 and res > 224
    z, _ = scale("regnetz_005", 2, "dWr")
    assert z.block == "Z" and all(w * 4 % g == 0 for w, g in zip(z.ws, z.gs))


def test_scaled_spec_builds():
    from regnet_tf.applications import build_model

    spec, _ = scale(AnyNetSpec(ds=(1, 1), ws=(16, 32), gs=(8, 8), stem_w=8), 4, "dWr")
    model = build_model(spec, input_shape=(32, 32, 3), classes=3)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == complexity(spec, 32, classes=3)["params"]


def test_scale_cli():
    out = subprocess.run([sys.executable, "launch/scale.py", "--model", "regnety_040", "--factor", "4",
                          "--strategy", "dWr"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "before: AnyNetSpec at 224x224: 3.973 GMACs" in out.stdout and "after:" in out.stdout
    assert "w=1904" in out.stdout and "flops x3.93" in out.stdout
    bad = subprocess.run([sys.executable, "launch/scale.py", "--model", "regnety_04"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Did you mean" in bad.stderr and "regnety_040" in bad.stderr
