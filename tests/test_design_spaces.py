"""Design spaces (regnet_tf.design.spaces): constraints of samples, flop regimes, reproducibility, Table 1 sizes."""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest

from regnet_tf import AnyNetSpec, RegNetSpec, complexity
from regnet_tf.design import SPACES, get_space, parse_regime, sample, size

ANYNETS = ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e"]
REGNETS = ["regnetx", "regnety", "regnetx_constrained", "regnety_b1", "regnetz"]
POWERS2 = {1, 2, 4, 8, 16, 32}


def _check_anynet(name, spec):
    assert isinstance(spec, AnyNetSpec) and spec.block == "X" and spec.num_stages == 4
    assert all(1 <= d <= 16 for d in spec.ds)
    assert all(8 <= w <= 1024 and w % 8 == 0 for w in spec.ws)
    assert all(1 / b in (1, 2, 4) for b in spec.bs)
    for w, b, g in zip(spec.ws, spec.bs, spec.gs):
        inner = round(w * b)
        assert inner % g == 0
        # the sampled g, or (appendix D) the inner width when the sampled g was wider
        assert g in POWERS2 or g == inner
    if name != "anynetx_a":
        assert len(set(spec.bs)) == 1
    if name in ("anynetx_c", "anynetx_d", "anynetx_e"):
        assert len(set(spec.gs)) == 1 or all(g == round(w * b) for w, b, g in zip(spec.ws, spec.bs, spec.gs)
                                             if g != max(spec.gs))
    if name in ("anynetx_d", "anynetx_e"):
        assert list(spec.ws) == sorted(spec.ws)
    if name == "anynetx_e":
        assert list(spec.ds) == sorted(spec.ds)


def _check_regnet(name, spec):
    assert isinstance(spec, RegNetSpec)
    assert 1 <= spec.d < 64 and 8 <= spec.w0 < 256 and spec.w0 % 8 == 0
    assert 0 < spec.wa < 256 and 1.5 <= spec.wm <= 3
    assert 1 / spec.b in ((0.25,) if name == "regnetz" else (1, 2, 4)) and spec.g in POWERS2
    ws, ds, num_stages, total_stages, _, _ = spec.generate()
    assert num_stages == total_stages == 4 and sum(ds) == spec.d
    net = spec.to_anynet()
    assert net.num_stages == 4 and list(net.ws) == sorted(net.ws)
    if name in ("regnety", "regnety_b1"):
        assert spec.block == "Y" and spec.se_ratio == 0.25 and spec.activation == "relu"
        assert spec.b == 1 or name == "regnety"  # the fast-scaling paper's RegNetY: "b to 1"
    elif name == "regnetz":  # Z blocks: inverted bottleneck (inner width 4 w), SiLU, SE 0.25
        assert (spec.block, spec.b, spec.activation, spec.se_ratio) == ("Z", 4.0, "silu", 0.25)
        assert net.bs == (4.0,) * 4
    else:
        assert spec.block == "X" and spec.se_ratio == 0
    if name == "regnetx_constrained":
        assert spec.b == 1 and 12 <= spec.d <= 28 and spec.wm >= 2


@pytest.mark.parametrize("name", ANYNETS + REGNETS)
def test_space_samples_obey_constraints(name):
    space, rng = SPACES[name], np.random.default_rng(123)
    check = _check_anynet if name in ANYNETS else _check_regnet
    for _ in range(200):
        check(name, space.sample(rng))


@pytest.mark.parametrize("name", ANYNETS + REGNETS)
def test_sample_in_regime(name):
    specs = sample(name, 6, regime="400MF", seed=3)
    assert len(specs) == 6 and len({s.resolved() for s in specs}) == 6
    check = _check_anynet if name in ANYNETS else _check_regnet
    for spec in specs:
        check(name, spec)
        cx = complexity(spec, 224)
        assert 360e6 <= cx["flops"] <= 400e6
        if name == "regnetx_constrained":  # params <= 3 + 5.5 F (M), acts <= 6.5 sqrt(F) (M), F = 0.4 GF
            assert cx["params"] <= (3 + 5.5 * 0.4) * 1e6 and cx["acts"] <= 6.5 * math.sqrt(0.4) * 1e6


def test_constrained_limits_bind():
    """Without the params/acts limits some 400MF constrained-space samples would exceed them."""
    space = SPACES["regnetx_constrained"]
    limits = space.limits(400e6)
    assert limits["params"] == pytest.approx(5.2e6) and limits["acts"] == pytest.approx(6.5e6 * math.sqrt(0.4))
    free = sample(dataclasses.replace(space, params_fit=None, acts_fit=None), 40, "400MF", seed=0)
    assert any(complexity(s)["params"] > limits["params"] or complexity(s)["acts"] > limits["acts"] for s in free)


def test_reproducible_from_seed():
    a = sample("anynetx_a", 5, "400MF", seed=7)
    assert a == sample("anynetx_a", 5, "400MF", seed=7)
    assert a != sample("anynetx_a", 5, "400MF", seed=8)
    r = sample("regnety", 4, "800MF", seed=1)
    assert r == sample("regnety", 4, "800MF", seed=1) and r != sample("regnety", 4, "800MF", seed=2)
    assert sample("anynetx_e", 3, seed=5) == sample("anynetx_e", 4, seed=5)[:3]  # a prefix: draws are sequential


def test_regimes():
    assert parse_regime("400MF") == (360e6, 400e6)
    assert parse_regime("3.2GF") == pytest.approx((2.88e9, 3.2e9))
    assert parse_regime("360MF-400MF") == (360e6, 400e6)
    assert parse_regime((1e8, 2e8)) == (1e8, 2e8) and parse_regime(None) is None
    for bad in ("400XF", "fast", (5, 1), (1, 2, 3)):
        with pytest.raises(ValueError):
            parse_regime(bad)
    for spec in sample("regnetx", 3, regime=(1.5e9, 1.7e9), seed=0):
        assert 1.5e9 <= complexity(spec)["flops"] <= 1.7e9
    with pytest.raises(ValueError, match="give a regime"):
        sample("regnetx_constrained", 2, regime=None)


def test_sample_runs_out_and_bad_n():
    with pytest.raises(ValueError, match="found only"):
        sample("regnetx", 2, regime=(1e3, 2e3), max_tries=50)
    with pytest.raises(ValueError, match="positive"):
        sample("regnetx", 0)


def test_table1_sizes():
    """The paper's Table 1: A (16*128*3*6)^4, B /3^3 (shared b), C /6^3 (shared g), D /4!, E /4!^2, RegNet 64^4*6*3."""
    table1 = {"anynetx_a": 1.8e18, "anynetx_b": 6.8e16, "anynetx_c": 3.2e14, "anynetx_d": 1.3e13,
              "anynetx_e": 5.5e11, "regnetx": 3.0e8, "regnety": 3.0e8}
    for name, expected in table1.items():
        assert float(f"{size(name):.2g}") == expected, name
    assert size("anynetx_a") == (16 * 128 * 3 * 6) ** 4
    assert size("regnetx") == 64**4 * 6 * 3
    # exact counts of the order-constrained spaces: non-decreasing 4-tuples, C(n + 3, 4)
    assert size("anynetx_d", exact=True) == 16**4 * math.comb(131, 4) * 3 * 6
    assert size("anynetx_e", exact=True) == math.comb(19, 4) * math.comb(131, 4) * 3 * 6
    assert size("anynetx_c", exact=True) == size("anynetx_c")
    with pytest.raises(ValueError, match="exact=False"):
        size("regnetx", exact=True)


def test_unknown_space():
    with pytest.raises(ValueError, match="valid: anynetx_a, anynetx_b.*regnetx_constrained"):
        get_space("anynetx_f")
    with pytest.raises(ValueError, match="unknown design space"):
        sample("regnetw", 1)
    assert get_space(SPACES["regnetx"]) is SPACES["regnetx"]


def test_imports_no_tensorflow():
    code = "import sys, regnet_tf.design; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
