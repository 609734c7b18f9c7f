"""The speed study (regnet_tf.studies.speed, speed_plots, launch/speed_study.py): the papers' numbers against their
text, the model sets, the statistics on known data, the CSV round trip, the report and the command at tiny size.
Speed itself is measured by the command, never asserted here."""

import glob
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import regnet_tf
from regnet_tf.studies import paper, speed, speed_analysis, speed_plots
from regnet_tf.train import recipe

from conftest import REPO, run_command

PAPERS_DIR = os.path.join(os.path.dirname(REPO), "shared", "papers")


def _paper_text(prefix):
    files = glob.glob(os.path.join(PAPERS_DIR, prefix + "*.txt"))
    if not files:
        pytest.skip(f"the papers' text is not here ({PAPERS_DIR})")
    with open(files[0], encoding="utf-8") as f:
        return " ".join(f.read().split())


def _numbers(text):
    return {float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)}


# ---- the papers' numbers


@pytest.mark.parametrize("table, prefix", [("TABLE4", "000_"), ("TABLE7", "004_"), ("FIGURE2_R", "002_")])
def test_every_paper_row_is_quoted_from_its_paper(table, prefix):
    text = _paper_text(prefix)
    rows = [r for pair in paper.TABLE4 for r in pair] if table == "TABLE4" else getattr(paper, table)
    for row in rows:
        assert row.quote in text, f"{row.source}: {row.quote!r} not in the paper"


def test_every_number_of_a_row_is_in_its_quote():
    for en, rg in paper.TABLE4:
        for r in (en, rg):
            for v in (r.gmacs, r.params_m, r.acts_m, r.batch, r.infer_ms, r.train_hours, r.error):
                assert float(v) in _numbers(r.quote), (r.model, v)
    for r in paper.TABLE7:
        for v in (r.resolution, r.params_m, r.gflops, r.v100_s, r.tpu_ms, r.top1):
            assert float(v) in _numbers(r.quote), (r.model, v)
    for c in paper.FIGURE2_R:
        assert c.r in _numbers(c.quote) and f"r {c.bound} {c.r:.2f}" in c.quote


def test_table7_rows_are_our_recipes_and_registered_resolutions():
    for row in paper.TABLE7:
        if row.recipe:
            r = recipe.load(row.recipe)
            assert (r.model.name, r.data.image_size, r.paper_top1) == (row.model, row.resolution, row.top1)
        else:
            assert regnet_tf.get_entry(row.model).resolution == row.resolution
    speedups = {row.recipe: row for row in paper.TABLE7 if row.vs}
    # the printed speedups: 2.1x V100 / 1.8x TPU for ResNet-RS-101 at 160 against EfficientNet-B2
    b2 = next(r for r in paper.TABLE7 if r.model == "efficientnet_b2")
    assert round(b2.v100_s / speedups["resnet_rs_101_160"].v100_s, 1) == 2.1
    assert round(b2.tpu_ms / speedups["resnet_rs_101_160"].tpu_ms, 1) == 1.8


# ---- model sets


def test_scaled_models_hold_the_base_once_and_scale_flops():
    models = speed.scaled_models(["regnetx_002"], ["w", "r"], [1, 2, 4], resolution=64)
    assert [m.name for m in models] == ["regnetx_002", "regnetx_002 w x2", "regnetx_002 w x4", "regnetx_002 r x2",
                                        "regnetx_002 r x4"]
    base = regnet_tf.complexity("regnetx_002", 64)["flops"]
    for m in models:
        assert m.family == "RegNetX" and m.base == "regnetx_002"
        ratio = regnet_tf.complexity(m.spec, m.resolution)["flops"] / base
        assert abs(math.log(ratio / m.factor)) < math.log(1.35), (m.name, ratio)  # pycls's rounding
    assert [m.resolution for m in models if m.strategy == "w"] == [64, 64]
    assert [m.resolution for m in models if m.strategy == "r"] == [92, 128]  # 64 x 2 ** 0.5 -> 92
    with pytest.raises(ValueError, match="unknown scaling strategy 'q'; valid: d, w, r"):
        speed.scaled_models(["regnetx_002"], ["q"], [2])
    with pytest.raises(ValueError, match="Unknown model 'nope'. Valid names: efficientnet_b0"):
        speed.scaled_models(["nope"], ["w"], [2])


def test_named_models_read_registry_names_and_recipes():
    m, r = speed.named_models(["regnety_016", "resnet_rs_50_160"])
    assert (m.resolution, m.family, m.top1) == (224, "RegNetY", None)
    assert (r.resolution, r.family, r.top1, r.base) == (160, "ResNet-RS", 78.8, "resnet_rs_50")
    assert [x.resolution for x in speed.named_models(["regnety_016", "resnet_rs_50_160"], resolution_scale=0.5)] == \
        [112, 80]
    assert [x.resolution for x in speed.named_models(["regnety_016"], resolution=96)] == [96]
    with pytest.raises(ValueError, match="Unknown model or recipe 'regnety_999'. Valid models: regnetx_002"):
        speed.named_models(["regnety_999"])


def test_paper_sets():
    t4 = speed.set_models("table4")
    assert [m.name for m in t4][:4] == ["efficientnet_b0", "regnety_004", "efficientnet_b1", "regnety_006"]
    assert t4[1].top1 == 74.1 and t4[0].resolution == 224 and t4[-2].resolution == 456
    t7 = speed.set_models("table7", resolution_scale=0.5)
    assert len(t7) == 19 and t7[0].resolution == 112 and t7[2].name == "resnet_rs_50_160" and t7[2].top1 == 78.8
    p = speed.set_models("pareto_regnet")
    assert all(m.top1 is not None for m in p) and p[-1].strategy == "dWr" and p[-1].factor == 32
    fig2 = speed.set_models("figure2")
    assert len(fig2) == 1 + 4 * 4 and {m.strategy for m in fig2} == {"", "dwr", "dw", "dWr", "w"}
    assert len(speed.sampled_models("regnetx", 3, "400MF", seed=1, resolution=64)) == 3
    with pytest.raises(ValueError, match="unknown model set 'fig9'; valid: figure2, figure2_models, table4"):
        speed.set_models("fig9")


# ---- statistics on known data


def test_pearson_on_known_data():
    x = np.arange(10.0)
    assert speed_analysis.pearson(x, 3 * x + 2) == pytest.approx(1.0)
    assert speed_analysis.pearson(x, -x) == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    assert speed_analysis.pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert speed_analysis.pearson([1, 2], [3, 4]) is None and speed_analysis.pearson([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError, match="one length"):
        speed_analysis.pearson([1, 2, 3], [1, 2])
    b_, a_ = speed_analysis.fit_power([1, 4, 9, 16], [2, 4, 6, 8])  # y = 2 sqrt(x)
    assert b_ == pytest.approx(0.5) and math.exp(a_) == pytest.approx(2.0)


def _row(name, base, strategy, factor, flops, params, acts, t, family="EfficientNet", top1=None):
    return {"name": name, "family": family, "base": base, "strategy": strategy, "factor": factor, "resolution": 64,
            "flops": flops, "params": params, "acts": acts, "train_ms_per_image": t, "infer_ms_per_image": t / 3,
            "train_ms": 4 * t, "train_ms_min": 4 * t, "train_ms_max": 4 * t, "train_batch": 4, "top1": top1,
            "device": "CPU test"}


def _scaled_rows():
    """EfficientNet-B0 scaled by w and d: time = acts exactly; flops the same along both lines."""
    rows = [_row("efficientnet_b0", "efficientnet_b0", "", 1, 100, 10, 50, 50.0)]
    for f in (2, 4):
        rows.append(_row(f"efficientnet_b0 w x{f}", "efficientnet_b0", "w", f, 100 * f, 10 * f * f, 50 + 10 * f,
                         50.0 + 10 * f))
        rows.append(_row(f"efficientnet_b0 d x{f}", "efficientnet_b0", "d", f, 100 * f, 10 * f, 50 * f, 50.0 * f))
    return rows


def test_correlations_group_and_label_as_the_paper():
    rows = _scaled_rows()
    corr = {(c["scope"], c["group"], c["metric"]): c for c in speed_analysis.correlations(rows)}
    line = corr["one strategy", "efficientnet_b0 w", "acts"]
    assert line["n"] == 3 and line["r"] == pytest.approx(1.0)  # the base is on each strategy's line
    pooled = corr["across strategies", "efficientnet_b0", "acts"]
    assert pooled["n"] == 5 and pooled["r"] == pytest.approx(1.0) and pooled["paper"] == "=0.99"
    flops = corr["across strategies", "efficientnet_b0", "flops"]
    t, f = [r["train_ms_per_image"] for r in rows], [r["flops"] for r in rows]
    assert flops["r"] == pytest.approx(np.corrcoef(f, t)[0, 1]) and flops["r"] < 0.99 and flops["paper"] == "=0.81"
    assert corr["across strategies", "efficientnet_b0", "params"]["paper"] == "=0.56"
    assert corr["one strategy", "efficientnet_b0 d", "flops"]["paper"] == "=0.99"
    # another base: the paper gives only acts (r > 0.99); two bases pool "across models" (r = 0.95)
    other = [dict(r, base="regnetz_005", name=r["name"].replace("efficientnet_b0", "regnetz_005")) for r in rows]
    corr2 = {(c["scope"], c["group"], c["metric"]): c for c in speed_analysis.correlations(rows + other, "infer")}
    assert corr2["across strategies", "regnetz_005", "acts"]["paper"] == ">0.99"
    assert corr2["across strategies", "regnetz_005", "flops"]["paper"] == ""
    assert corr2["across models", "all bases", "acts"]["n"] == 10
    assert corr2["across models", "all bases", "acts"]["paper"] == "=0.95"
    text = speed_analysis.format_correlations(speed_analysis.correlations(rows))
    assert "1.000 [=0.99]" in text and "efficientnet_b0 w" in text


def test_table4_and_table7_ratios():
    rows = [_row("efficientnet_b0", "efficientnet_b0", "", 1, 386e6, 5e6, 6.7e6, 30.0),
            _row("regnety_004", "regnety_004", "", 1, 402e6, 4e6, 3.9e6, 10.0, "RegNetY")]
    (t,) = speed_analysis.table4(rows)
    assert t["train_ratio"] == pytest.approx(3.0) and t["infer_ratio"] == pytest.approx(3.0)
    assert t["en_infer_ms"] == pytest.approx(64 * 10.0)  # ms for 64 images
    assert t["paper_infer_ratio"] == pytest.approx(34 / 19) and t["paper_train_ratio"] == pytest.approx(11.7 / 5.1)
    assert "1.79x" in speed_analysis.format_table4([t])
    rows7 = [_row("resnet_rs_270_256", "resnet_rs_270", "", 1, 1, 1, 1, 20.0, "ResNet-RS", 83.8),
             _row("efficientnet_b5", "efficientnet_b5", "", 1, 1, 1, 1, 50.0, "EfficientNet", 83.7)]
    (s,) = speed_analysis.table7_speedups(rows7)
    assert s["ours"] == pytest.approx(2.5) and s["paper_v100"] == pytest.approx(8.16 / 3.76)
    assert s["paper_tpu"] == pytest.approx(1510 / 780)
    assert speed_analysis.pareto(rows7) == {"ResNet-RS": [(20.0, 83.8, "resnet_rs_270_256")],
                                   "EfficientNet": [(50.0, 83.7, "efficientnet_b5")]}


def test_activation_exponents_square_root_for_regnet_steeper_for_efficientnet():
    e = speed_analysis.activation_exponents()
    assert 0.45 < e["RegNetY"]["b"] < 0.6 and 0.45 < e["RegNetX"]["b"] < 0.6
    assert e["EfficientNet"]["b"] > e["RegNetY"]["b"] + 0.2
    assert len(e["EfficientNet"]["points"]) == 8


# ---- files


def test_csv_round_trip_and_bad_files(tmp_path):
    rows = [dict(_scaled_rows()[0], tensorflow="2.21", keras="3", threads=2, precision="float32", xla=False,
                 infer_ms=None, rounds=3, steps=1, warmup=1, date="d", top1_source="", sequential=False,
                 load=1.5)]
    path = speed.write_csv(rows, tmp_path / "models.csv")
    (back,) = speed.read_csv(path)
    for k in speed.COLUMNS:
        assert back.get(k) == rows[0].get(k), k
    with pytest.raises(FileNotFoundError, match="no speed-study CSV at"):
        speed.read_csv(tmp_path / "none.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a speed-study CSV"):
        speed.read_csv(tmp_path / "other.csv")


def _not_blank(path):
    from PIL import Image

    a = np.asarray(Image.open(path).convert("L"))
    return a.std() > 5


def test_report_writes_every_file_and_non_blank_plots(tmp_path):
    rows = _scaled_rows() + [_row("resnet_rs_270_256", "resnet_rs_270", "", 1, 1e9, 1e8, 2e7, 20.0, "ResNet-RS", 83.8),
                             _row("efficientnet_b5", "efficientnet_b5", "", 1, 1e10, 3e7, 1e8, 50.0, "EfficientNet",
                                  83.7)]
    paths = speed_plots.report(rows, tmp_path)
    for name in ("models", "correlations", "table7", "exponents", "runtime_train", "runtime_infer", "pareto_train",
                 "acts_vs_flops", "report"):
        assert os.path.getsize(paths[name]) > 0, name
    for name in ("runtime_train", "pareto_train", "acts_vs_flops"):
        assert _not_blank(paths[name]), name
    html = open(paths["report"], encoding="utf-8").read()
    assert "Revisiting ResNets, Table 7" in html and "pareto_train.png" in html and "=0.81" in html
    with pytest.raises(ValueError, match="no model with both a time and a paper top-1"):
        speed_plots.plot_pareto(_scaled_rows(), tmp_path / "p.png")


def test_no_tensorflow_at_import():
    code = ("import sys; import regnet_tf.studies.speed, regnet_tf.studies.speed_plots, regnet_tf.cli.speed_study; "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- timing and the command, tiny


def test_time_models_rows_and_rounds():
    from regnet_tf.models.anynet import AnyNetSpec

    tiny = [speed.StudyModel(f"tiny {w}", AnyNetSpec(ds=(1, 1), ws=(w, 2 * w), gs=(8, 8), stem_w=8), 32, "AnyNet",
                             base="tiny", strategy="w" if w > 8 else "", factor=w / 8) for w in (8, 16)]
    rows, rounds = speed.time_models(tiny, batch=3, train_batch=2, rounds=2, warmup=0)
    assert [r["name"] for r in rows] == ["tiny 8", "tiny 16"]
    for r, m in zip(rows, tiny):
        assert r["train_batch"] == 2 and r["infer_batch"] == 3 and r["rounds"] == 2
        assert r["train_ms_min"] <= r["train_ms"] <= r["train_ms_max"]
        assert r["infer_ms_per_image"] == pytest.approx(r["infer_ms"] / 3)
        assert r["flops"] == regnet_tf.complexity(m.spec, 32)["flops"]
        assert r["device"] and r["tensorflow"] and r["precision"] == "float32" and r["xla"] is False
    assert len(rounds) == 2 * 2 * 2 and {x["mode"] for x in rounds} == {"train", "infer"}
    assert [r["sequential"] for r in rows] == [False, False]  # tiny: they alternate
    one_by_one, _ = speed.time_models(tiny, batch=2, modes=("infer",), rounds=1, warmup=0, sequential=True)
    assert [r["infer_ms"] > 0 and r["train_ms"] is None and r["sequential"] for r in one_by_one] == [True, True]
    with pytest.raises(ValueError, match="precision must be one of float32"):
        speed.time_models(tiny, precision="float64")
    with pytest.raises(ValueError, match="need modes in"):
        speed.time_models(tiny, modes=("predict",))


def test_memory_estimate_picks_sequential_for_the_table7_set():
    t7 = speed.set_models("table7", resolution_scale=0.5)
    params = sum(regnet_tf.complexity(m.spec, m.resolution)["params"] for m in t7)
    alternating = speed.memory_estimate(t7, 4, sequential=False)
    assert 16 * params < alternating < 16 * params + 4 * 2**30 and alternating > 20 * 2**30  # not on 24 GB
    assert speed.memory_estimate(t7, 4, sequential=True) < alternating / 3
    assert speed.physical_memory() > 0


def test_command_times_a_model_then_replots_the_csv(tmp_path):
    from regnet_tf.cli import speed_study

    out = run_command(speed_study, "--models", "regnetx_002", "--modes", "infer", "--resolution", "32", "--batch", "2",
                      "--rounds", "1", "--warmup", "0", "--out", str(tmp_path / "a"))
    assert "regnetx_002" in out and "wrote models.csv" in out
    (row,) = speed.read_csv(tmp_path / "a" / "models.csv")
    assert row["infer_ms"] > 0 and row["train_ms"] is None and row["resolution"] == 32
    assert row["flops"] == regnet_tf.complexity("regnetx_002", 32)["flops"]
    # another machine's CSV (here: synthetic) is analysed and plotted without timing
    speed.write_csv(_scaled_rows(), tmp_path / "gpu.csv")
    again = run_command(speed_study, "--from_csv", str(tmp_path / "gpu.csv"), "--out", str(tmp_path / "b"))
    assert "efficientnet_b0 w x4" in again and "[=0.81]" in again and _not_blank(tmp_path / "b" / "runtime_train.png")
    with pytest.raises(ValueError, match="no models: give --set"):
        run_command(speed_study, "--out", str(tmp_path / "c"))
    with pytest.raises(ValueError, match="models asked for twice: regnetx_002"):
        run_command(speed_study, "--base", "regnetx_002", "--models", "regnetx_002", "--out", str(tmp_path / "c"))
    listing = run_command(speed_study, "--list_sets")
    assert all(name in listing for name in speed.SETS)
