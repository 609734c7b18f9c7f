"""The RegNet paper's design-space studies as data: each figure's populations, flop regimes, sample counts and epochs.

    study = get_study("figure_14")
    for sweep_name, plan in plans(study, samples=8):          # one sweep per (population, regime)
        run_sweep(os.path.join(out, sweep_name), plan)

A `Study` (named after its figure) holds `Population`s: a design space of `regnet_tf.design.spaces` with changes
(``dataclasses.replace`` of its fields: ``wm_range=(2, 2)``, ``b_ratios`` of an inverted bottleneck, ``g_widths=(1,)``,
``block="R"``, ``stages=5``, ``activation="silu"``, ...), the flop regimes it is sampled in, the models per regime,
the epochs each trains and, for the optimization studies, the learning rate and weight decay sampled per model
(log-uniform; each model's values are in its plan and its record) or its resolution (Figure 14's middle panel). A
population of one fixed registered model (``models``: Figure 22's EfficientNets) samples only those hyper-parameters,
one sweep per model where a space has one per regime. ``plot`` says which analysis the figure is
(`regnet_tf.design.report.analyze_study`): "edf" (error EDFs of the populations side by side, per regime), "trends"
(Figure 11: the bootstrap's best range of each parameter across regimes) or "hparams" (Figures 21-22: error vs lr,
wd and lr x wd).

Values come from the paper's text where it gives them (``source`` quotes it as the paper's text file has it; a test
finds each quote there); where only the figure shows a value (regimes of Figures 10, 11, 13, 20; the lr and wd
ranges of Figure 21), the value is our reading, marked ``reading`` and listed in docs/DESIGN_SPACES.md. Pure
Python, no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, Optional, Tuple

import numpy as np

from regnet_tf.design import spaces

PLOTS = ("edf", "trends", "hparams")
INVERTED_B = (1, 0.5, 0.25, 0.125)  # Figure 14: "Inverted bottleneck (1/8 <= b <= 1)", b = w / w_b
HIGH_G = tuple(range(16, 65, 8))  # appendix D: group widths from 3.2GF on


@dataclasses.dataclass(frozen=True)
class Population:
    label: str  # the legend's name, e.g. "RegNetX wm=2"
    space: str  # a name of spaces.SPACES
    changes: Tuple[Tuple[str, object], ...] = ()  # (field, value) pairs replaced in the space
    regimes: Tuple[str, ...] = ("400MF",)
    samples: int = 100  # models per regime
    epochs: int = 10
    hparams: Tuple[Tuple[str, float, float], ...] = ()  # ("lr", lo, hi), ("wd", lo, hi): log-uniform per model
    resolutions: Tuple[int, ...] = ()  # each model's resolution, uniform over these (its flops are at it)
    models: Tuple[str, ...] = ()  # a fixed registered model per sweep instead of a space (and its regimes)
    recipe: str = ""  # the recipe its models train with ("{model}": the model's name); default the study's

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")

    @property
    def groups(self) -> Tuple[str, ...]:
        """What its sweeps are per: its fixed models, or its flop regimes."""
        return self.models or self.regimes

    def sampled(self, n: int, seed: int):
        """One dict per model of its sampled values (lr, wd log-uniform; resolution uniform over `resolutions`), or
        None when it samples none."""
        if not (self.hparams or self.resolutions):
            return None
        out = sample_hparams(self.hparams, n, seed)
        if self.resolutions:
            rng = np.random.default_rng([seed, 1])
            for d, r in zip(out, rng.choice(np.asarray(self.resolutions), size=n)):
                d["resolution"] = int(r)
        return out

    def design_space(self, regime: str = "400MF"):
        """The population's space in a regime: the named one with `changes`, named after the population. From 3.2GF
        on, a RegNet space samples group widths 16 <= g <= 64 divisible by 8 (appendix D: "instead of sampling
        g <= 32, at 3.2GF we use 16 <= g <= 64 and allow any g divisible by 8") unless `changes` sets them."""
        changes = dict(self.changes)
        base = spaces.get_space(self.space)
        lo_hi = spaces.parse_regime(regime)
        if isinstance(base, spaces.RegNetSpace) and lo_hi and lo_hi[1] >= 3.2e9 and "g_widths" not in changes:
            changes["g_widths"] = HIGH_G
        return dataclasses.replace(base, name=self.slug, **changes) if changes else base


@dataclasses.dataclass(frozen=True)
class Study:
    name: str  # "figure_14"
    figure: str  # "Figure 14"
    title: str
    plot: str
    populations: Tuple[Population, ...]
    source: str  # the paper's words for the setup
    reading: str = ""  # what the text does not say and we chose (docs/DESIGN_SPACES.md)

    def sweeps(self):
        """[(sweep name, population, regime)], one per population and regime: `<population slug>_<regime>`."""
        return [(f"{p.slug}_{r}", p, r) for p in self.populations for r in p.groups]

    def models(self) -> int:
        return sum(p.samples * len(p.groups) for p in self.populations)

    def model_epochs(self) -> int:
        """The compute a study needs, in model-epochs (sum of samples x regimes (or models) x epochs)."""
        return sum(p.samples * len(p.groups) * p.epochs for p in self.populations)


def _pop(label, space, changes=None, **kw):
    return Population(label, space, tuple((changes or {}).items()), **kw)


AX = dict(samples=500, epochs=10)  # section 3: "n = 500 models ... train each model for 10 epochs" (400MF)
S4 = dict(samples=100, epochs=25)  # section 4: "sampling fewer models (100) but training them for longer (25 epochs)"
REGIMES = ("200MF", "400MF", "800MF", "1.6GF", "3.2GF", "6.4GF")
LR_WD = (("lr", 0.01, 1.0), ("wd", 1e-5, 1e-3))  # Figure 21: around the chosen lr = 0.1, wd = 5e-5
EFFNET_LR_WD = (("lr", 0.02, 2.0), ("wd", 1e-6, 1e-4))  # Figure 22: around EfficientNet's lr = 0.2, wd = 1e-5
VARYING_R = (160, 192, 224, 256, 288, 320)  # Figure 14 (middle): "Varying resolution r"

_STUDIES = (
    Study("figure_5", "Figure 5", "AnyNetXA vs B (shared b) vs C (shared g)", "edf",
          (_pop("AnyNetXA", "anynetx_a", **AX), _pop("AnyNetXB", "anynetx_b", **AX),
           _pop("AnyNetXC", "anynetx_c", **AX)),
          "section 3.2: \"we obtain n = 500 models in our target complexity regime (360MF to 400MF), and train each "
          "model for 10 epochs\""),
    Study("figure_7", "Figure 7", "AnyNetXC vs D (increasing widths) vs E (and increasing depths)", "edf",
          (_pop("AnyNetXC", "anynetx_c", **AX), _pop("AnyNetXD", "anynetx_d", **AX),
           _pop("AnyNetXE", "anynetx_e", **AX)),
          "section 3.2, as Figure 5; Figure 7: \"having increasing wi and di is beneficial\""),
    Study("figure_9", "Figure 9", "RegNetX vs AnyNetX, and RegNetX with wm = 2 or w0 = wa", "edf",
          (_pop("AnyNetXA", "anynetx_a", **AX), _pop("AnyNetXE", "anynetx_e", **AX), _pop("RegNetX", "regnetx", **AX),
           _pop("RegNetX wm=2", "regnetx", {"wm_range": (2.0, 2.0)}, **AX),
           _pop("RegNetX w0=wa", "regnetx", {"w0_equals_wa": True}, **AX)),
          "section 3.3: \"using wm = 2 (doubling width between stages) slightly improves the EDF ... we test setting "
          "w0 = wa\"", "500 models at 10 epochs in the 400MF regime, as section 3.2 (the text does not restate them)"),
    Study("figure_10", "Figure 10", "RegNetX generalization: higher flops, more epochs, 5 stages, block types", "edf",
          tuple(_pop(f"{name} 3.2GF", space, regimes=("3.2GF",), samples=100, epochs=10)
                for name, space in (("AnyNetXA", "anynetx_a"), ("AnyNetXE", "anynetx_e"), ("RegNetX", "regnetx")))
          + tuple(_pop(f"{name} 50 epochs", space, samples=100, epochs=50)
                  for name, space in (("AnyNetXA", "anynetx_a"), ("AnyNetXE", "anynetx_e"), ("RegNetX", "regnetx")))
          + tuple(_pop(f"{name} 5 stages", space, {"stages": 5}, samples=100, epochs=10)
                  for name, space in (("AnyNetXA", "anynetx_a"), ("AnyNetXE", "anynetx_e"), ("RegNetX", "regnetx")))
          + tuple(_pop(f"RegNet{block}", "regnetx", {"block": block}, samples=100, epochs=10)
                  for block in ("R", "V", "VR")),
          "section 3.4: \"we compare the RegNetX design space to AnyNetXA and AnyNetXE at higher flops, higher epochs, "
          "with 5-stage networks, and with various block types\"",
          "the higher regime (3.2GF), the longer schedule (50 epochs) and 100 models per population"),
    Study("figure_11", "Figure 11", "RegNetX parameter trends across flop regimes", "trends",
          (_pop("RegNetX", "regnetx", regimes=REGIMES, **S4),),
          "section 4: \"fewer models (100) but training them for longer (25 epochs) with a learning rate of 0.1\"",
          "the regimes 200MF-6.4GF"),
    Study("figure_13", "Figure 13", "RegNetX refined by constraints (b = 1, d <= 40, wm >= 2, params and acts)", "edf",
          (_pop("RegNetX", "regnetx", regimes=("400MF", "1.6GF", "6.4GF"), **S4),
           _pop("RegNetX C", "regnetx_constrained", {"d_range": (1, 40)}, regimes=("400MF", "1.6GF", "6.4GF"), **S4)),
          "section 4: \"we set b = 1, d ≤ 40, and wm ≥ 2 ... Second, we limit param- eters and activations\"",
          "the regimes 400MF, 1.6GF and 6.4GF"),
    Study("figure_14", "Figure 14", "RegNetX alternatives: inverted bottleneck, depthwise conv, resolution, RegNetY",
          "edf",
          (_pop("RegNetX", "regnetx", regimes=("400MF", "3.2GF"), **S4),
           _pop("RegNetX 1/8<=b<=1", "regnetx", {"b_ratios": INVERTED_B}, **S4),
           _pop("RegNetX g=1", "regnetx", {"g_widths": (1,)}, **S4),
           _pop("RegNetX varying r", "regnetx", regimes=("400MF", "3.2GF"), resolutions=VARYING_R, **S4),
           _pop("RegNetY", "regnety", **S4)),
          "Figure 14: \"Inverted bottleneck ( 1 8 ≤ b ≤ 1) degrades results and depth- wise conv (g = 1) is even "
          "worse. Middle: Varying resolution r harms results ... RegNetY (Y=X+SE) improves the EDF\"; section 4: "
          "\"we find that for RegNetX a fixed resolution of 224×224 is best, even at higher flops\" (100 models, 25 "
          "epochs)",
          "the middle panel's resolutions (160 to 320 px in steps of 32, uniform per model; its flops at its "
          "resolution) and its regimes (400MF and 3.2GF, RegNetX at both)"),
    Study("figure_19", "Figure 19", "Fixed depth d = 20, three stages, inverted bottleneck at high flops", "edf",
          (_pop("RegNetX", "regnetx", regimes=("400MF", "1.6GF", "6.4GF"), samples=100, epochs=100),
           _pop("RegNetX d=20", "regnetx", {"d_range": (20, 20)}, regimes=("400MF", "1.6GF", "6.4GF"), samples=100,
                epochs=100),
           _pop("RegNetX 3 stages", "regnetx", {"stages": 3}, regimes=("6.4GF",), samples=100, epochs=100),
           _pop("RegNetX b<1", "regnetx", {"b_ratios": (0.5, 0.25, 0.125)}, regimes=("6.4GF",), samples=100,
                epochs=100)),
          "appendix B: \"we compare using fixed depth (d = 20) across flop regimes ... trained each model for 100 "
          "epochs\"; \"we tested 3 stage networks at 6.4GF, trained for 100 epochs each\"; \"[for b < 1] we re-test "
          "at 6.4GF and 100 epochs\"",
          "100 models per population; the fixed-depth regimes 400MF, 1.6GF and 6.4GF; b < 1 as b in {1/2, 1/4, 1/8}"),
    Study("figure_20", "Figure 20", "Swish vs ReLU in RegNetY, and with depthwise convolutions (g = 1)", "edf",
          (_pop("RegNetY ReLU", "regnety", regimes=("400MF", "6.4GF"), **S4),
           _pop("RegNetY Swish", "regnety", {"activation": "silu"}, regimes=("400MF", "6.4GF"), **S4),
           _pop("RegNetY g=1 ReLU", "regnety", {"g_widths": (1,)}, **S4),
           _pop("RegNetY g=1 Swish", "regnety", {"g_widths": (1,), "activation": "silu"}, **S4)),
          "Figure 20: \"RegNetY performs better with Swish than ReLU at 400MF but worse at 6.4GF ... If, however, g is "
          "restricted to be 1 (depthwise conv), Swish is much better\"", "100 models, 25 epochs"),
    Study("figure_21", "Figure 21", "Learning rate and weight decay sampled per RegNetX model", "hparams",
          (_pop("RegNetX lr wd", "regnetx", samples=100, epochs=10, hparams=LR_WD),
           _pop("RegNetX lr wd regimes", "regnetx", regimes=("200MF", "800MF", "3.2GF"), samples=100, epochs=10,
                hparams=LR_WD),
           _pop("RegNetX lr wd 25 epochs", "regnetx", samples=100, epochs=25, hparams=LR_WD)),
          "Figure 21: \"we generate a population of RegNetX models while also randomly varying the initial learning "
          "rate (lr) and weight decay (wd) for each model. These results use a batch size of 128 ... (at 10 epochs "
          "and 400MF) ... across various flop regimes ... various number of epochs\"",
          "lr log-uniform in [0.01, 1] at batch 128 and wd in [1e-5, 1e-3]; 100 models; regimes and epochs"),
    Study("figure_22", "Figure 22", "Learning rate and weight decay sampled per EfficientNet model", "hparams",
          (_pop("EfficientNet lr wd", "", models=("efficientnet_b0", "efficientnet_b2", "efficientnet_b4"),
                recipe="{model}_dds", samples=100, epochs=25, hparams=EFFNET_LR_WD),),
          "Figure 22: \"We repeat the sweep over lr and wd for EFFICIENT- NET training each model for 25 epochs. The "
          "lr (with reference to a batch size of 128) and wd is stable across regimes\"",
          "the models B0, B2 and B4 (recipes/regnet_baselines' *_dds: the paper's EfficientNet setup), lr "
          "log-uniform in [0.02, 2] at batch 128 and wd in [1e-6, 1e-4] (around the chosen 0.2 and 1e-5), 100 "
          "models each"),
)
STUDIES: Dict[str, Study] = {s.name: s for s in _STUDIES}


def get_study(name: str) -> Study:
    m = re.fullmatch(r"(?:fig(?:ure)?)?[_-]?(\d+)", str(name).strip().lower())
    key = f"figure_{m.group(1)}" if m else str(name)
    if key not in STUDIES:
        raise ValueError(f"unknown study {name!r}; valid: {', '.join(STUDIES)} (python launch/sweep.py "
                         "--list_studies)")
    return STUDIES[key]


def describe(study: Study) -> str:
    """A study's lines for --list_studies: figure, populations with regimes, and the compute it needs."""
    lines = [f"{study.name}: {study.figure}, {study.title} ({study.plot}); {study.models()} models, "
             f"{study.model_epochs()} model-epochs"]
    for p in study.populations:
        extra = ", lr and wd sampled per model" if p.hparams else ""
        extra += f", resolution per model from {'/'.join(map(str, p.resolutions))}" if p.resolutions else ""
        what = (f"fixed models {'/'.join(p.models)}" if p.models else
                f"{p.space}{' ' + str(dict(p.changes)) if p.changes else ''}, {'/'.join(p.regimes)}")
        lines.append(f"    {p.label}: {what}, {p.samples} models x {p.epochs} epochs{extra}")
    return "\n".join(lines)


def sample_hparams(ranges, n: int, seed: int):
    """``n`` dicts {name: value}, each value log-uniform in its (lo, hi), from numpy's default_rng(seed)."""
    rng = np.random.default_rng(seed)
    out = [{} for _ in range(n)]
    for name, lo, hi in ranges:
        if not 0 < lo <= hi:
            raise ValueError(f"a sampled {name} needs 0 < lo <= hi; got ({lo}, {hi})")
        for d, v in zip(out, np.exp(rng.uniform(math.log(lo), math.log(hi), size=n))):
            d[name] = float(f"{v:.4g}")
    return out


def select(study: Study, populations=None, regimes=None):
    """The study's (sweep name, population, regime) triples, of ``populations`` only (labels or slugs) and of
    ``regimes`` only (flop regimes, or a fixed-model population's models) if given."""
    chosen = study.sweeps()
    if populations:
        valid = {key: p for p in study.populations for key in (p.label, p.slug)}
        unknown = [x for x in populations if x not in valid]
        if unknown:
            raise ValueError(f"{study.name} has no population {', '.join(map(repr, unknown))}; its populations: "
                             + ", ".join(f"{p.label!r} ({p.slug})" for p in study.populations))
        labels = {valid[x].label for x in populations}
        chosen = [t for t in chosen if t[1].label in labels]
    if regimes:
        groups = list(dict.fromkeys(g for _, _, g in chosen))
        unknown = [x for x in regimes if x not in groups]
        if unknown:
            raise ValueError(f"{study.name} has no regime {', '.join(map(repr, unknown))} (in the populations "
                             f"chosen); its regimes: {', '.join(groups)}")
        chosen = [t for t in chosen if t[2] in regimes]
    return chosen


def plans(study: Study, samples: Optional[int] = None, seed: int = 0, resolution: int = 224,
          recipe: str = "regnet_design_space", overrides=(), populations=None, regimes=None):
    """[(sweep name, plan)] of every population and regime (`regnet_tf.design.sweep.make_plan`; a fixed-model
    population's `sweep.model_plan` per model, with its own recipe), or of ``populations`` (labels or slugs) and
    ``regimes`` only; ``samples`` replaces the study's count (trials). Each population trains its epochs
    (``train.epochs``); its sampled lr, wd and resolution are drawn from ``seed + 1``."""
    from regnet_tf.design import sweep

    out = []
    for name, p, group in select(study, populations, regimes):
        n = samples or p.samples
        extra = [f"train.epochs={p.epochs}"] + list(overrides)
        hparams = p.sampled(n, seed + 1)
        if p.models:
            plan = sweep.model_plan(group, n, p.recipe.format(model=group) if p.recipe else recipe, extra, hparams)
        else:
            plan = sweep.make_plan(p.design_space(group), group, n, seed, resolution, p.recipe or recipe, extra,
                                   hparams=hparams)
        plan.update(study=study.name, population=p.label)
        out.append((name, plan))
    return out
