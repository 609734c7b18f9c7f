"""Design-space statistics (EDF, normalized EDF, bootstrap, quantized linear fit) and their PNG plots."""

import numpy as np
import pytest

from regnet_tf.design import stats
from regnet_tf.models.regnet import _REGNETX, _REGNETY, RegNetSpec, generate_regnet

# ---- EDF (eq. 1) ---- #


def test_edf_is_eq1_with_strict_inequality():
    e = [3.0, 1.0, 2.0, 2.0]
    x, f = stats.edf(e, x=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    # F(e) = (1/n) #{e_i < e}: a model whose error equals e is not counted
    np.testing.assert_allclose(f, [0, 0, 0.25, 0.25, 0.75, 0.75, 1.0])
    xs, fs = stats.edf(e)  # step function: value on (xs[k], xs[k+1])
    np.testing.assert_allclose(xs, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(fs, [0.25, 0.75, 1.0])
    # the step value equals eq. (1) just right of each jump
    np.testing.assert_allclose(stats.edf(e, x=xs + 1e-9)[1], fs)


def test_edf_label_is_min_and_mean():
    assert stats.edf_label([40.0, 45.0, 50.0, 61.0]) == "[40.0|49.0]"
    assert stats.edf_label([1.0, 3.0], weights=[3, 1]) == "[1.0|1.5]"
    with pytest.raises(ValueError, match="empty"):
        stats.edf([])
    with pytest.raises(ValueError, match="NaN"):
        stats.edf([1.0, float("nan")])


def test_normalized_edf_makes_complexity_uniform():
    # bins [0, 1), [1, 2]: three models in bin 0, one in bin 1 -> weights 1/6 each and 1/2 (NDS: 1/(k m_j))
    flops, errors = [0.1, 0.2, 0.3, 1.9], [10.0, 20.0, 30.0, 5.0]
    edges = [0.0, 1.0, 2.0]
    np.testing.assert_allclose(stats.complexity_weights(flops, edges=edges), [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    xs, f = stats.normalized_edf(errors, flops, edges=edges)
    np.testing.assert_allclose(xs, [5, 10, 20, 30])
    np.testing.assert_allclose(f, [0.5, 0.5 + 1 / 6, 0.5 + 2 / 6, 1.0])
    np.testing.assert_allclose(stats.normalized_edf(errors, flops, x=[5.0, 6.0], edges=edges)[1], [0.0, 0.5])
    # an empty bin carries no mass; weights still sum to 1
    w = stats.complexity_weights(flops, edges=[0.0, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(w, [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    # a reference population: target its histogram (bin 0: 1 model, bin 1: 3 models)
    w = stats.complexity_weights(flops, edges=edges, reference=[0.5, 1.5, 1.6, 1.7])
    np.testing.assert_allclose(w, [1 / 12, 1 / 12, 1 / 12, 3 / 4])
    # equal counts per bin: normalized EDF = plain EDF
    xs0, f0 = stats.edf(errors)
    xs1, f1 = stats.normalized_edf(errors, [0.1, 0.2, 1.5, 1.9], edges=edges)
    np.testing.assert_allclose(f1, f0)
    with pytest.raises(ValueError, match="outside the bins"):
        stats.complexity_weights([3.0], edges=edges)


def test_complexity_bins_are_shared():
    edges = stats.complexity_bins([[1.0, 2.0], [4.0]], k=3)
    np.testing.assert_allclose(edges, [1, 2, 3, 4])
    np.testing.assert_allclose(stats.complexity_bins([[1.0, 100.0]], k=2, log=True), [1, 10, 100])


# ---- bootstrap (footnote 4) ---- #


def test_bootstrap_determined_min():
    # every sample's min-error pair has value 7 unless it only holds worse pairs, which have value 7 too
    b = stats.bootstrap([7, 7, 7, 7], [0.3, 0.1, 0.2, 0.4], repeats=500, seed=0)
    assert b == (7.0, 7.0, 7.0)
    # n = 2, frac 0.5 -> one pair per sample, so the winner is a fair coin between the two values
    w = stats.bootstrap_winners([1.0, 3.0], [0.1, 0.2], frac=0.5, repeats=4000, seed=1)
    assert set(np.unique(w)) == {1.0, 3.0} and abs(np.mean(w == 1.0) - 0.5) < 0.04
    assert stats.bootstrap([1.0, 3.0], [0.1, 0.2], frac=0.5, repeats=4000, seed=1)[::2] == (1.0, 3.0)


def test_bootstrap_matches_order_statistics():
    # value = error rank (0 best); 25 of 100 drawn with replacement -> P(winner <= k) = 1 - ((99 - k) / 100)^25
    n, m = 100, 25
    values = np.arange(n, dtype=float)
    errors = 30.0 + values * 0.1
    perm = np.random.default_rng(0).permutation(n)  # order of the input must not matter
    w = stats.bootstrap_winners(values[perm], errors[perm], seed=3)
    assert w.shape == (10_000,)
    for k in (0, 2, 5, 12):
        assert abs(np.mean(w <= k) - (1 - ((n - 1 - k) / n) ** m)) < 0.02
    b = stats.bootstrap(values[perm], errors[perm], seed=3)
    assert b.lo == 0.0 and b.best == 2.0 and 12.0 <= b.hi <= 14.0  # P(<=0)=.22, P(<=1)=.40, P(<=2)=.53, P(<=13)=.977
    assert b.lo <= b.best <= b.hi
    assert stats.bootstrap(values[perm], errors[perm], seed=3) == b  # seeded
    wide = stats.bootstrap(values, errors, alpha=50, seed=3)
    assert b.lo <= wide.lo <= wide.hi <= b.hi
    with pytest.raises(ValueError, match="frac"):
        stats.bootstrap(values, errors, frac=0)
    with pytest.raises(ValueError, match="one entry per model"):
        stats.bootstrap(values, errors[:5])


# ---- quantized linear fit (section 3.3) ---- #


def test_quantized_linear_widths_match_generate_regnet():
    for d, w0, wa, wm, _ in list(_REGNETX.values()) + list(_REGNETY.values()):
        np.testing.assert_array_equal(stats.quantized_linear_widths(w0, wa, wm, d), generate_regnet(wa, w0, wm, d)[4])


@pytest.mark.parametrize("name", ["X002", "X016", "X064", "X320", "Y004", "Y016", "Y160"])
def test_fit_recovers_zoo_regnet(name):
    d, w0, wa, wm, g = (_REGNETX if name[0] == "X" else _REGNETY)[name[1:]]
    ws_all = RegNetSpec(d=d, w0=w0, wa=wa, wm=wm, g=g).generate()[4]
    f = stats.fit_quantized_linear(ws_all, num_stages=4)
    assert f.e_fit < 1e-9, f
    np.testing.assert_array_equal(stats.quantized_linear_widths(f.w0, f.wa, f.wm, d), ws_all)
    assert round(f.w0 / 8) * 8 == w0
    assert abs(f.wm / wm - 1) < 0.05 and abs(f.wa / wa - 1) < 0.15, (f, (w0, wa, wm))


def test_fit_recovers_sampled_regnets_and_rejects_random_anynets():
    rng = np.random.default_rng(12)
    fits = 0
    while fits < 10:  # RegNet design space: d < 64, w0, wa < 256, 1.5 <= wm <= 3, four stages
        d, w0 = int(rng.integers(12, 29)), int(8 * rng.integers(1, 32))
        wa, wm = float(np.round(rng.uniform(8, 256), 2)), float(np.round(rng.uniform(1.5, 3), 3))
        ws, _, n, total, ws_all, _ = generate_regnet(wa, w0, wm, d)
        if n != 4 or total != 4:
            continue
        fits += 1
        f = stats.fit_quantized_linear(ws_all)
        assert f.e_fit < 1e-3, ((d, w0, wa, wm), f)
        assert stats.e_fit(ws_all, f.w0, f.wa, f.wm) == pytest.approx(f.e_fit)
    costs = []
    for _ in range(10):  # AnyNetX_A: four stages, d_i <= 16, w_i <= 1024 and divisible by 8, no order
        ds, ws = rng.integers(1, 17, 4), 8 * rng.integers(1, 129, 4)
        costs.append(stats.fit_quantized_linear(np.repeat(ws, ds)).e_fit)
    assert np.median(costs) > 0.1 and min(costs) > 0.01, costs


def test_fit_errors():
    with pytest.raises(ValueError, match="positive widths"):
        stats.fit_quantized_linear([0, 8])
    with pytest.raises(ValueError, match="wm_range"):
        stats.fit_quantized_linear([8, 16], wm_range=(1.0, 2.0))


# ---- plots ---- #


def _check_png(path, min_size=(300, 200)):
    image = pytest.importorskip("PIL.Image")
    with image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        px = np.asarray(im.convert("L"), dtype=np.float64)
    assert px.std() > 5, "blank plot"


def test_plots_write_real_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from regnet_tf.design import plots

    rng = np.random.default_rng(0)
    a, b = 40 + 10 * rng.random(50), 38 + 8 * rng.random(40)
    _check_png(plots.plot_edfs({"A": a, "B": b}, tmp_path / "edf.png"))
    fa, fb = 360e6 + 40e6 * rng.random(50), 360e6 + 40e6 * rng.random(40)
    _check_png(plots.plot_edfs({"A": a, "B": b}, tmp_path / "nedf.png", complexity_by_name={"A": fa, "B": fb}))
    depth = rng.integers(6, 30, 50)
    _check_png(plots.plot_statistic(depth, a, tmp_path / "depth.png", "d", repeats=500))
    specs = [(plots.block_widths(RegNetSpec(d=d, w0=w0, wa=wa, wm=wm, g=g)), float(e))
             for (d, w0, wa, wm, g), e in zip(list(_REGNETX.values())[:4], [41.0, 39.0, 40.0, 45.0])]
    assert plots.block_widths("regnetx_002").tolist() == [24] + [56] + [152] * 4 + [368] * 7
    specs.append(([32, 32, 64, 64, 64, 128], 42.0))
    _check_png(plots.plot_widths(specs, tmp_path / "widths.png", top=3))
    with pytest.raises(ValueError, match="complexity_by_name lacks"):
        plots.plot_edfs({"A": a}, tmp_path / "x.png", complexity_by_name={})
