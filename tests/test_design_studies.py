"""The RegNet paper's studies (regnet_tf.design.studies, launch/sweep.py --study, launch/analyze_sweep.py --study):
each population's seeded samples hold the paper's constraints, the plans carry epochs and sampled lr / wd, and one
study runs end to end at tiny scale on the demo data."""

import json
import os

import pytest

import regnet_tf
from regnet_tf.design import spaces, studies, sweep

import conftest
from conftest import run_command

SAMPLES = 3


def _specs(plan):
    return [sweep.spec_from_dict(s) for s in plan["specs"]]


def _population_checks(p, regime, plan):
    """What the population's name promises, on its sampled specs."""
    lo, hi = spaces.parse_regime(regime)
    changes = dict(p.changes)
    for spec in _specs(plan):
        net = spec.resolved()
        assert lo <= regnet_tf.complexity(net, 224)["flops"] <= hi, (p.label, regime)
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
            for h in plan["hparams"]:
                assert 0.01 <= h["lr"] <= 1.0 and 1e-5 <= h["wd"] <= 1e-3
            first = plan["hparams"][0]
            assert r.schedule.base_lr == first["lr"] and r.optimizer.weight_decay == first["wd"]
        else:
            assert "hparams" not in plan
        _population_checks(p, regime, plan)
    assert study.models() == sum(p.samples * len(p.regimes) for p in study.populations)


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


def test_a_study_runs_end_to_end_and_is_analyzed(tmp_path, demo_cache, monkeypatch):
    """figure_21 (lr and wd sampled per model), its 400MF population: one model, 1 step on the demo data;
    the records carry their lr and wd; analyze_sweep --study draws the figure's plots, the other populations listed
    as not started."""
    from regnet_tf.cli import analyze_sweep
    from regnet_tf.cli import sweep as sweep_cli

    monkeypatch.setenv("REGNET_TF_DATA", demo_cache)
    out = tmp_path / "fig21"
    tiny = ["--set", "train.steps=1", "--set", "data.image_size=32", "--set", "train.global_batch_size=8",
            "--set", "train.eval_steps=1", "--set", "train.eval_every_epochs=0"]
    args = ["--study", "figure_21", "--populations", "regnetx_lr_wd", "--samples", "1", "--data", "demo", "--out",
            str(out), *tiny]
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
