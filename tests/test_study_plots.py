"""The paper's population analysis plots: parameter trends over flop regimes (Fig. 11), error vs lr / wd (Figs.
21-22) and the study report (`report.analyze_study`), on seeded synthetic sweep records."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from regnet_tf.design import plots, report  # noqa: E402

REGIMES = ("200MF", "800MF", "3.2GF")
FAST = {"repeats": 1000}  # the bootstrap's 10^4 repeats are not needed for these checks


def _records(n, regime_index=0, best_d=20, hparams=False, seed=0, only_d=False):
    """n RegNetX-like records whose error is lowest at depth ``best_d`` and bottleneck multiplier 0.25 (the paper's
    b = 4), g fixed at 8; with ``hparams`` also lowest near lr = 0.1; ``only_d``: w0, wa, wm, b fixed too (one
    trends panel, a faster plot)."""
    rng = np.random.default_rng([seed, regime_index])
    out = []
    for i in range(n):
        d = int(rng.integers(8, 33))
        w0 = int(8 * np.round(np.exp(rng.uniform(np.log(16), np.log(256))) / 8))
        spec_b = float(rng.choice([1.0, 0.5, 0.25]))
        wa, wm = float(rng.uniform(8, 64)), float(rng.uniform(1.5, 3.0))
        if only_d:
            w0, wa, wm, spec_b = 24, 36.0, 2.5, 1.0
        error = 40.0 - 3 * regime_index + 0.5 * abs(d - best_d) + 2.5 * (spec_b != 0.25) + rng.normal(0, 0.3)
        rec = {"index": i, "space": "regnetx", "error": error, "epochs": 10.0,
               "spec": {"kind": "regnet", "d": d, "w0": w0, "wa": wa, "wm": wm, "g": 8, "b": spec_b, "block": "X"},
               "complexity": {"flops": 2e8 * 4 ** regime_index * rng.uniform(0.9, 1.0),
                              "params": 3e6 * 2 ** regime_index, "acts": 4e6 * 2 ** regime_index}}
        if hparams:
            lr, wd = 10 ** rng.uniform(-2, 0), 10 ** rng.uniform(-5, -3)
            rec["hparams"] = {"lr": lr, "wd": wd}
            rec["error"] += 8 * (np.log10(lr) + 1) ** 2
        out.append(rec)
    return out


def _check_png(path):
    image = pytest.importorskip("PIL.Image")
    assert os.path.isfile(path)
    with image.open(path) as im:
        assert im.format == "PNG"
        rgb = im.convert("RGB")
        assert len(rgb.getcolors(maxcolors=1 << 20) or range(2)) > 1, "blank plot"
        assert np.asarray(rgb.convert("L"), dtype=np.float64).std() > 5, "blank plot"


def test_plot_trends_bands_contain_the_best_depth_per_regime(tmp_path):
    by_regime = {g: _records(60, i) for i, g in enumerate(REGIMES)}
    by_regime["12GF"] = []  # a regime not swept yet keeps its x position, without a band
    drawn = plots.plot_trends(by_regime, str(tmp_path / "trends.png"), seed=1, **FAST)
    assert drawn.path == str(tmp_path / "trends.png")
    _check_png(drawn.path)
    # Fig. 11's parameters that vary: g is fixed at 8 here, so it gets no panel
    assert list(drawn.bands) == ["d", "w0", "wa", "wm", "b"]
    for param, rows in drawn.bands.items():
        assert [r[0] for r in rows] == list(REGIMES)
        assert all(lo <= best <= hi for _, lo, best, hi in rows)
    for regime, lo, best, hi in drawn.bands["d"]:
        assert lo <= 20 <= hi and abs(best - 20) <= 2, (regime, lo, best, hi)
    # b is the paper's bottleneck ratio, 1 / the spec's multiplier: the best models have spec b = 0.25
    assert all(best == hi == 4.0 and lo in (1.0, 2.0, 4.0) for _, lo, best, hi in drawn.bands["b"])
    # the numbers are the bootstrap of each regime's records alone: a moving optimum is followed
    moving = {g: _records(60, i, best_d=10 + 8 * i) for i, g in enumerate(REGIMES)}
    rows = plots.plot_trends(moving, str(tmp_path / "moving.png"), params=["d"], **FAST).bands["d"]
    assert [lo <= 10 + 8 * i <= hi for i, (_, lo, _, hi) in enumerate(rows)] == [True] * 3
    assert rows[0][2] < rows[1][2] < rows[2][2]


def test_plot_trends_errors(tmp_path):
    with pytest.raises(ValueError, match="no records"):
        plots.plot_trends({"200MF": []}, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="unknown parameter 'depthh'"):
        plots.plot_trends({"200MF": _records(4)}, str(tmp_path / "x.png"), params=["depthh"])


def test_plot_hparams_bands_and_missing_hparams(tmp_path):
    recs = _records(80, hparams=True)
    drawn = plots.plot_hparams(recs, str(tmp_path / "hp.png"), **FAST)
    _check_png(drawn.path)
    assert list(drawn.bands) == ["lr", "wd", "lr*wd"]
    lr = drawn.bands["lr"]
    assert lr.lo <= 0.1 <= lr.hi and 0.05 < lr.best < 0.2
    assert all(b.lo <= b.best <= b.hi for b in drawn.bands.values())
    products = [r["hparams"]["lr"] * r["hparams"]["wd"] for r in recs]
    assert min(products) <= drawn.bands["lr*wd"].lo <= drawn.bands["lr*wd"].hi <= max(products)
    with pytest.raises(ValueError, match="lack 'hparams'.*samples the learning rate and weight decay"):
        plots.plot_hparams(_records(5), str(tmp_path / "x.png"))


def test_analyze_study_writes_every_file_of_each_kind(tmp_path):
    kw = {"hparams": True, "only_d": True}
    pops = {"RegNetX": {"200MF": _records(24, 0, **kw), "800MF": _records(24, 1, **kw)},
            "RegNetY (SE)": {"200MF": _records(20, 0, seed=1, **kw), "800MF": []},
            "later": {}}
    expected = {"edf": {"edf_200MF", "edf_800MF"},
                "trends": {"edf_200MF", "edf_800MF", "trends_RegNetX", "trends_RegNetY_SE"},
                "hparams": {"edf_200MF", "edf_800MF", "hparams_RegNetX_200MF", "hparams_RegNetX_800MF",
                            "hparams_RegNetY_SE_200MF"}}
    for kind, names in expected.items():
        out = tmp_path / kind
        paths = report.analyze_study(f"study {kind}", pops, kind, str(out), top=3, **FAST)
        assert set(paths) == names | {"report"}
        assert sorted(os.listdir(out)) == sorted([n + ".png" for n in names] + ["report.html"])
        for name in names:
            assert paths[name] == str(out / (name + ".png"))
        _check_png(paths[sorted(names)[-1]])
        page = open(paths["report"], encoding="utf-8").read()
        assert f"study {kind}" in page and page.count("no records yet") == 2  # RegNetY 800MF, "later"
        assert all(f"src='{n}.png'" in page for n in names)
        assert "<td>RegNetX</td><td>200MF</td><td>24</td>" in page
        assert ("95% range" in page) == (kind != "edf")
        assert ("<td>d</td>" in page) == (kind == "trends") and "<td>w0</td>" not in page  # only d varies


def test_analyze_study_errors(tmp_path):
    with pytest.raises(ValueError, match="no records yet: run launch/sweep.py"):
        report.analyze_study("empty", {"A": {"200MF": []}, "B": {}}, "trends", str(tmp_path / "e"))
    assert not os.path.exists(tmp_path / "e")
    with pytest.raises(ValueError, match="unknown study kind 'edfs'; valid: edf, trends, hparams"):
        report.analyze_study("x", {"A": {"200MF": _records(3)}}, "edfs", str(tmp_path / "k"))
    with pytest.raises(ValueError, match="lack 'hparams'"):
        report.analyze_study("x", {"A": {"200MF": _records(3)}}, "hparams", str(tmp_path / "h"))


def test_analyze_study_draws_error_vs_resolution_for_a_population_that_samples_it(tmp_path):
    """Figure 14 (middle): models with a resolution each get the error vs resolution plot, the others do not."""
    fixed = _records(12, 0, only_d=True)
    varying = _records(12, 0, seed=2, only_d=True)
    rng = np.random.default_rng(3)
    for rec in varying:
        r = int(rng.choice([160, 192, 224, 256, 288, 320]))
        rec["hparams"] = {"resolution": r}
        rec["error"] += abs(r - 224) / 16  # best at 224, as the paper finds
    paths = report.analyze_study("fig 14", {"RegNetX": {"400MF": fixed}, "RegNetX varying r": {"400MF": varying}},
                                 "edf", str(tmp_path), **FAST)
    assert set(paths) == {"edf_400MF", "resolution_RegNetX_varying_r_400MF", "report"}
    _check_png(paths["resolution_RegNetX_varying_r_400MF"])
    assert "src='resolution_RegNetX_varying_r_400MF.png'" in open(paths["report"], encoding="utf-8").read()


def test_sweep_report_of_a_fixed_model_sweep(tmp_path):
    """launch/analyze_sweep.py on one sweep of Figure 22's kind (one EfficientNet, lr and wd per run): error vs lr
    and wd, no block-width plot (an EfficientNet has no AnyNet widths)."""
    from regnet_tf.design import sweep
    from regnet_tf.zoo import get_spec

    spec = sweep.spec_to_dict(get_spec("efficientnet_b0"))
    rng = np.random.default_rng(0)
    records = []
    for i in range(8):
        lr, wd = float(10 ** rng.uniform(-1.7, 0.3)), float(10 ** rng.uniform(-6, -4))
        records.append({"index": i, "space": "efficientnet_b0", "spec": spec, "epochs": 25.0, "hparams": {"lr": lr,
                        "wd": wd}, "error": 30 + 5 * (np.log10(lr) + 0.7) ** 2,
                        "complexity": {"flops": 3.86e8, "params": 5.29e6, "acts": 6.75e6}})
    out = tmp_path / "efficientnet_b0"
    os.makedirs(out / sweep.RECORDS)
    for r in records:
        with open(sweep.record_path(str(out), r["index"]), "w", encoding="utf-8") as f:
            json.dump(r, f)
    paths = report.analyze([str(out)], str(tmp_path / "report"))
    assert set(paths) == {"edf", "lr", "wd", "report"}
    _check_png(paths["lr"])
