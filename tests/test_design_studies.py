"""The RegNet paper's studies (regnet_tf.design.studies, launch/sweep.py --study, launch/analyze_sweep.py --study):
each population's seeded samples hold the paper's constraints, the plans carry epochs and sampled lr / wd, and every
study runs end to end at tiny scale on the demo data (one model each)."""

import json
import os

import pytest

import regnet_tf
from regnet_tf.design import spaces, studies, sweep

import conftest
from conftest import run_command

SAMPLES = 2


def _specs(plan):
    return [sweep.spec_from_dict(s) for s in plan["specs"]]


def _population_checks(p, regime, plan):
    """What the population's name promises, on its sampled specs."""
    if p.models:  # a fixed model: every run is the registered model, at its resolution, with its own recipe
        assert regime in p.models and plan["regime"] is None and plan["resolution"] == regnet_tf.zoo.default_resolution(
            regime)
        assert _specs(plan) == [regnet_tf.zoo.get_spec(regime)] * len(plan["specs"])
        assert sweep.model_recipe(plan, 0).spec() == regnet_tf.zoo.get_spec(regime).replace(dropout=0.0,
                                                                                             drop_path_rate=0.0)
        return
    lo, hi = spaces.parse_regime(regime)
    changes = dict(p.changes)
    for k, spec in enumerate(_specs(plan)):
        net = spec.resolved()
        r = sweep.model_resolution(plan, k)  # its flops are at its own resolution (Figure 14's varying r)
        assert r in (p.resolutions or (224,)), (p.label, r)
        assert lo <= regnet_tf.complexity(net, r)["flops"] <= hi, (p.label, regime)
        stages = changes.get("stages", 4)
        assert len(net.ds) == stages, (p.label, net.ds)
        if spec.kind != "regnet":
            continue
        if "wm_range" in changes:
            assert spec.wm == changes["wm_range"][0]
        if changes.get("w0_equals_wa"):
            assert spec.wa == spec.w0
        if "d_range" in changes:
            assert changes["d_range"][0] <= spec.d <= changes["d_range"][1]
        if "b_ratios" in changes:
            assert round(1 / spec.b, 6) in changes["b_ratios"]  # spec b: the multiplier 1 / (the paper's b)
        if changes.get("g_widths") == (1,):
            assert spec.g == 1 and set(net.gs) == {1}
        elif lo >= 3.2e9 * 0.9 and p.space.startswith("regnet"):
            assert spec.g in studies.HIGH_G  # appendix D: 16 <= g <= 64 from 3.2GF on
        assert spec.block == changes.get("block", "Y" if p.space == "regnety" else "X")
        assert net.activation == changes.get("activation", "relu")


@pytest.mark.parametrize("name", list(studies.STUDIES))
def test_every_population_holds_its_constraints(name):
    study = studies.get_study(name)
    plans = studies.plans(study, samples=SAMPLES, seed=1)
    assert [n for n, _ in plans] == [n for n, _, _ in study.sweeps()] and len(set(n for n, _ in plans)) == len(plans)
    for (sweep_name, plan), (_, p, regime) in zip(plans, study.sweeps()):
        assert plan["study"] == name and plan["population"] == p.label and len(plan["specs"]) == SAMPLES
        r = sweep.model_recipe(plan, 0)
        assert r.train.epochs == p.epochs
        if p.hparams:
            ranges = {n: (lo, hi) for n, lo, hi in p.hparams}
            for h in plan["hparams"]:
                assert all(ranges[n][0] <= h[n] <= ranges[n][1] for n in ("lr", "wd")), h
            first = plan["hparams"][0]
            assert r.schedule.base_lr == first["lr"] and r.optimizer.weight_decay == first["wd"]
        elif not p.resolutions:
            assert "hparams" not in plan
        _population_checks(p, regime, plan)
    assert study.models() == sum(p.samples * len(p.models or p.regimes) for p in study.populations)


def test_every_quote_is_the_papers():
    """Each quoted phrase of a study's source (split at "..."; "[...]" is ours) occurs in the paper's text."""
    import glob
    import re

    files = glob.glob(os.path.join(os.path.dirname(conftest.REPO), "shared", "papers", "000_*.txt"))
    if not files:
        pytest.skip("the RegNet paper's text is not here")
    text = " ".join(open(files[0], encoding="utf-8").read().split())
    for study in studies.STUDIES.values():
        quotes = re.findall(r'"([^"]+)"', study.source)
        assert quotes, study.name
        for quote in quotes:
            for part in re.split(r"\.\.\.|\[[^\]]*\]", quote):
                assert not part.strip() or part.strip() in text, (study.name, part)


def test_paper_counts_names_and_listing():
    assert {p.samples for p in studies.get_study("figure_5").populations} == {500}  # "n = 500"
    assert {(p.samples, p.epochs) for p in studies.get_study("figure_14").populations} == {(100, 25)}  # section 4
    assert studies.get_study("figure_11").populations[0].regimes == studies.REGIMES
    assert studies.get_study("fig14") is studies.get_study("14") is studies.get_study("Figure-14")
    with pytest.raises(ValueError, match="unknown study 'figure_99'; valid: figure_5, figure_7"):
        studies.get_study("figure_99")
    text = studies.describe(studies.get_study("figure_21"))
    assert "lr and wd sampled per model" in text and "model-epochs" in text
    # a sampled lr / wd list is a function of the seed
    assert studies.sample_hparams(studies.LR_WD, 3, 7) == studies.sample_hparams(studies.LR_WD, 3, 7)
    assert studies.sample_hparams(studies.LR_WD, 3, 7) != studies.sample_hparams(studies.LR_WD, 3, 8)


TINY = ["--set", "train.steps=1", "--set", "data.image_size=32", "--set", "train.global_batch_size=8",
        "--set", "train.eval_steps=1", "--set", "train.eval_every_epochs=0"]


def test_a_study_runs_end_to_end_and_is_analyzed(tmp_path, demo_cache, monkeypatch):
    """figure_21 (lr and wd sampled per model), its 400MF population through the commands: one model, 1 step on the
    demo data; the records carry their lr and wd; it resumes; analyze_sweep --study draws the figure's plots, the
    other populations listed as not started; the commands' errors."""
    from regnet_tf.cli import analyze_sweep
    from regnet_tf.cli import sweep as sweep_cli

    monkeypatch.setenv("REGNET_TF_DATA", demo_cache)
    out = tmp_path / "fig21"
    # seed 1 samples a 9-block model (seed 0: 38 blocks, ~3x the time)
    args = ["--study", "figure_21", "--populations", "regnetx_lr_wd", "--samples", "1", "--seed", "1", "--data", "demo",
            "--out", str(out), *TINY]
    text = run_command(sweep_cli, *args)
    assert "analyze: python launch/analyze_sweep.py" in text
    records = sweep.load_records(str(out / "regnetx_lr_wd_400MF"))
    plan = json.load(open(out / "regnetx_lr_wd_400MF" / "plan.json", encoding="utf-8"))
    assert [r["hparams"] for r in records] == plan["hparams"] and len(records) == 1
    assert all(0 <= r["error"] <= 100 for r in records)
    assert sorted(os.listdir(out)) == ["regnetx_lr_wd_400MF"]  # the population asked for only
    again = run_command(sweep_cli, *args)
    assert "1 of 1 models finished" in again  # resumed: nothing trained again
    report = run_command(analyze_sweep, "--study", "figure_21", positional=[str(out)])
    page = open(out / "analysis" / "report.html", encoding="utf-8").read()
    assert "hparams_" in report and "no records yet" in page
    with pytest.raises(ValueError, match="figure_21 has no population 'nope'; its populations: 'RegNetX lr wd'"):
        run_command(sweep_cli, "--study", "figure_21", "--populations", "nope", "--out", str(out))
    with pytest.raises(ValueError, match="give --space or --study, not both"):
        run_command(sweep_cli, "--study", "figure_21", "--space", "regnetx", "--out", str(out))
    listing = run_command(sweep_cli, "--list_studies")
    assert all(name in listing for name in studies.STUDIES)
    with pytest.raises(ValueError, match="--populations and --regimes choose among a study's sweeps: give --study"):
        run_command(sweep_cli, "--space", "regnetx", "--regimes", "400MF", "--out", str(out))


# Every other study, one trained model each through the commands: a population that shows what the study changes, at
# its lowest regime (Figure 22: its smallest model), with a seed that samples a shallow model (blocks in the comment)
STUDY_RUNS = [
    ("figure_5", "AnyNetXA", "400MF", 10),  # 4 blocks
    ("figure_7", "AnyNetXE", "400MF", 10),  # 6
    ("figure_9", "RegNetX w0=wa", "400MF", 0),  # 5
    ("figure_10", "RegNetVR", "400MF", 2),  # 7
    ("figure_11", "RegNetX", "200MF", 6),  # 8
    ("figure_13", "RegNetX C", "400MF", 0),  # 9
    ("figure_14", "RegNetX varying r", "400MF", 0),  # 7, at 256 px (the sweep's 224 px is 32 px here: 37 px)
    ("figure_19", "RegNetX d=20", "400MF", 10),  # 20: its depth is the point
    ("figure_20", "RegNetY Swish", "400MF", 5),  # 5
    ("figure_22", "EfficientNet lr wd", "efficientnet_b0", 0),
]


def test_study_runs_cover_every_study():
    assert sorted({run[0] for run in STUDY_RUNS} | {"figure_21"}) == sorted(studies.STUDIES)


@pytest.mark.parametrize("name,label,regime,seed", STUDY_RUNS, ids=[run[0] for run in STUDY_RUNS])
def test_every_study_trains_and_is_analyzed(name, label, regime, seed, tmp_path, demo_cache, monkeypatch):
    """launch/sweep.py --study trains the population's model (1 step at 32 px on the demo data): its record has the
    plan's spec, its sampled lr / wd / resolution, its complexity at its own resolution; then analyze_sweep --study
    draws the figure's kind of plot from it."""
    from regnet_tf.cli import analyze_sweep
    from regnet_tf.cli import sweep as sweep_cli

    monkeypatch.setenv("REGNET_TF_DATA", demo_cache)
    study, out = studies.get_study(name), tmp_path / name
    p = next(p for p in study.populations if p.label == label)
    run_command(sweep_cli, "--study", name, "--populations", label, "--regimes", regime, "--samples", "1", "--seed",
                str(seed), "--data", "demo", "--out", str(out), *TINY)
    (sweep_name,) = os.listdir(out)
    plan = json.load(open(out / sweep_name / "plan.json", encoding="utf-8"))
    (record,) = sweep.load_records(str(out / sweep_name))
    assert 0 <= record["error"] <= 100 and record["spec"] == plan["specs"][0]
    spec, r = sweep.spec_from_dict(record["spec"]), sweep.model_resolution(plan, 0)
    assert record["complexity"] == regnet_tf.complexity(spec, r)
    assert (r != plan["resolution"]) == bool(p.resolutions)  # Figure 14's model has its own (seeded: 256 px)
    _population_checks(p, regime, plan)  # a fixed model: the registered one, with its recipe
    run_yaml = open(out / sweep_name / "runs" / "000000" / "recipe.yaml", encoding="utf-8").read()
    assert f"image_size: {round(32 * r / plan['resolution'])}" in run_yaml  # at its own resolution, scaled to 32 px
    sampled = {h[0] for h in p.hparams} | ({"resolution"} if p.resolutions else set())
    assert set(record.get("hparams") or ()) == sampled  # recorded, and the run trained with them
    if sampled:
        assert record["hparams"] == plan["hparams"][0]
    if "lr" in sampled:
        assert f"base_lr: {record['hparams']['lr']}" in run_yaml
    report = run_command(analyze_sweep, "--study", name, positional=[str(out)])
    drawn = dict(line.split(": ", 1) for line in report.splitlines())
    kinds = {"edf": ("edf_",), "trends": ("edf_", "trends_"), "hparams": ("edf_", "hparams_")}[study.plot]
    assert all(any(n.startswith(k) for n in drawn) for k in kinds), report
    assert all(os.path.getsize(path) > 0 for path in drawn.values())


def test_varying_resolution_and_fixed_model_plans(tmp_path):
    """Figure 14's varying-r population: each model's resolution is drawn from the study's set, its flops are in the
    regime at that resolution, and it trains at it (relative to the sweep's: a trial's smaller images scale alike).
    Figure 22's fixed model: every run is the registered EfficientNet with its own lr and wd and its *_dds recipe."""
    fig14 = studies.get_study("figure_14")
    (name, plan), = studies.plans(fig14, samples=6, populations=["RegNetX varying r"], regimes=["400MF"])
    assert name == "regnetx_varying_r_400MF"
    own = [h["resolution"] for h in plan["hparams"]]
    assert set(own) <= set(studies.VARYING_R) and len(set(own)) > 1, own  # seed 0 draws several
    assert plan == studies.plans(fig14, samples=6, populations=["regnetx_varying_r"], regimes=["400MF"])[0][1]
    for k, r in enumerate(own):
        assert sweep.model_resolution(plan, k) == r
        assert 360e6 <= regnet_tf.complexity(sweep.spec_from_dict(plan["specs"][k]), r)["flops"] <= 400e6
        assert sweep.model_recipe(plan, k).data.image_size == r  # the recipe's 224 at the sweep's 224
    k = own.index(max(own))
    (_, trial), = studies.plans(fig14, samples=6, populations=["RegNetX varying r"], regimes=["400MF"],
                                overrides=["data.image_size=32", "data.eval_short_side=40"])
    tiny = sweep.model_recipe(trial, k)
    assert (tiny.data.image_size, tiny.data.eval_short_side) == (round(32 * max(own) / 224), round(40 * max(own) / 224))
    assert [s for n, _, s in studies.select(fig14, regimes=["3.2GF"])] == ["3.2GF", "3.2GF"]
    with pytest.raises(ValueError, match=r"figure_14 has no regime '1GF' \(in the populations chosen\); its regimes: "
                                         "400MF, 3.2GF"):
        studies.select(fig14, regimes=["1GF"])
    with pytest.raises(ValueError, match="unknown sampled hyper-parameter 'momentum'; valid: lr, wd, resolution"):
        sweep.make_plan("regnetx", "400MF", 1, hparams=[{"momentum": 0.9}])

    fig22 = studies.get_study("figure_22")
    plans = studies.plans(fig22, samples=2)
    assert [n for n, _ in plans] == [f"efficientnet_lr_wd_efficientnet_b{b}" for b in (0, 2, 4)]
    name, plan = plans[1]
    r = sweep.model_recipe(plan, 1)
    assert r.name == "efficientnet_b2_000001" and r.data.image_size == 260 and r.train.epochs == 25
    assert (r.schedule.base_lr, r.optimizer.weight_decay) == (plan["hparams"][1]["lr"], plan["hparams"][1]["wd"])
    from regnet_tf.train import recipe as recipe_lib

    assert r.data.eval_short_side == recipe_lib.load("efficientnet_b2_dds").data.eval_short_side
    out = str(tmp_path / name)
    assert sweep.open_sweep(out, plan) == sweep.open_sweep(out, plan)  # resumes: the same sweep (no regime)
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.open_sweep(out, studies.plans(fig22, samples=3)[1][1])
    assert "fixed models efficientnet_b0/efficientnet_b2/efficientnet_b4" in studies.describe(fig22)
    assert "resolution per model from 160/192/224/256/288/320" in studies.describe(fig14)


# one sampled model of each kind of change a study makes to a space: block types, stage counts, Swish, g = 1, b < 1
CHANGED = [("figure_10", "RegNetR"), ("figure_10", "RegNetV"), ("figure_10", "RegNetVR"),
           ("figure_10", "RegNetX 5 stages"), ("figure_10", "AnyNetXA 5 stages"), ("figure_19", "RegNetX 3 stages"),
           ("figure_20", "RegNetY Swish"), ("figure_14", "RegNetX g=1"), ("figure_14", "RegNetX 1/8<=b<=1")]


def test_changed_populations_build_and_count_exactly():
    """The Keras model of a sampled spec of each changed space has exactly the counter's flops, params and acts (the
    zoo's drift check, tests/test_models.py), at an odd size."""
    import keras

    from regnet_tf.applications import build_model
    from test_models import keras_complexity

    for study, label in CHANGED:
        (_, plan), *_ = studies.plans(studies.get_study(study), samples=1, populations=[label])
        spec = _specs(plan)[0]
        with keras.StatelessScope(initialize_variables=False):  # shapes only: no initial values drawn
            model = build_model(spec, input_shape=(65, 65, 3))
        assert keras_complexity(model) == regnet_tf.complexity(spec, 65), (study, label)
