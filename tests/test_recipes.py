"""The recipe files under recipes/: every one loads and builds, and each study reproduces its paper's table.

Fast: no model is built and nothing trains (specs and analytic complexity only).
"""

import functools
import importlib.util
import os

import pytest

import regnet_tf
from regnet_tf.models.efficientnet import randaugment_magnitude
from regnet_tf.models.resnet import BLOCK_ALLOCATIONS
from regnet_tf.train import recipe, recipe_files
from regnet_tf.zoo import resolve


@functools.lru_cache(maxsize=None)
def load(name):
    return recipe.load(name)


def study(prefix):
    return {n: load(n) for n in recipe.list_recipes() if n.startswith(prefix)}


# ------------------------------------------------------------------------------------------- every recipe

def test_every_recipe_loads_and_builds():
    names = recipe.list_recipes()
    assert len(names) >= 91
    for name in names:
        r = load(name)
        assert r.name == name
        assert r.description.strip(), f"{name} has no description"
        spec = r.spec()
        cx = regnet_tf.complexity(spec, r.data.image_size, r.data.num_classes)
        assert cx["flops"] > 0 and cx["params"] > 0, name
        if r.paper_top1 is not None:
            assert 50 < r.paper_top1 < 100 and r.paper_ref, name


def test_bases_are_not_listed_and_names_are_unique():
    index = recipe_files.recipe_index()  # raises on two files with the same name anywhere under recipes/
    names = recipe.list_recipes()
    assert not [n for n in names if n.startswith("_")]
    assert {n for n in index if n.startswith("_")} >= {"_resnet_rs", "_rs_weight_decay", "_regnet", "_fast_scaling",
                                                       "_efficientnet_rs"}
    assert len(names) == len(set(names))


RS_TABLE8 = [  # depth, resolution, RandAugment magnitude, stochastic depth, dropout, Table 7 top-1
    (50, 160, 10, 0.0, 0.25, 78.8), (101, 160, 10, 0.0, 0.25, 80.3), (101, 192, 15, 0.0, 0.25, 81.2),
    (152, 192, 15, 0.0, 0.25, 82.0), (152, 224, 15, 0.0, 0.25, 82.8), (152, 256, 15, 0.0, 0.25, 83.0),
    (200, 256, 15, 0.1, 0.25, 83.4), (270, 256, 15, 0.1, 0.25, 83.8), (350, 256, 15, 0.1, 0.25, 84.0),
    (350, 320, 15, 0.1, 0.4, 84.2), (420, 320, 15, 0.1, 0.4, 84.4),
]
ADDITIVE = [  # name, keys that differ from the previous row, Table 1 top-1
    ("rs_additive_00_baseline", None, 79.0),
    ("rs_additive_01_cosine", {"schedule.name", "schedule.boundaries"}, 79.3),
    ("rs_additive_02_epochs", {"train.epochs"}, 78.8),
    ("rs_additive_03_ema", {"ema.decay", "model.spec.bn_momentum"}, 79.1),
    ("rs_additive_04_label_smoothing", {"regularization.label_smoothing"}, 80.4),
    ("rs_additive_05_stochastic_depth", {"regularization.drop_path_rate"}, 80.6),
    ("rs_additive_06_randaugment", {"data.randaug_layers", "data.randaug_magnitude"}, 81.0),
    ("rs_additive_07_dropout", {"regularization.dropout"}, 80.7),
    ("rs_additive_08_weight_decay", {"optimizer.weight_decay"}, 82.2),
    ("rs_additive_09_se", {"model.spec.se_ratio"}, 82.9),
    ("rs_additive_10_resnet_d", {"model.spec.stem", "model.spec.replace_stem_pool", "model.spec.resnetd_shortcut"}, 83.4),
]
WEIGHT_DECAY = {  # (depth, regularization): (top-1 at wd 1e-4, at 4e-5), Table 2 (minival)
    (50, "none"): (79.7, 78.7), (50, "ra_ls"): (82.4, 82.3), (50, "ra_ls_do"): (82.2, 82.7),
    (200, "none"): (82.5, 81.7), (200, "ra_ls"): (85.2, 84.9), (200, "ra_ls_sd_do"): (85.3, 85.5),
}
ZOO = {  # pycls MODEL_ZOO: batch size, top-1 error
    "regnetx_002": (1024, 31.1), "regnetx_004": (1024, 27.4), "regnetx_006": (1024, 25.9),
    "regnetx_008": (1024, 24.8), "regnetx_016": (1024, 23.0), "regnetx_032": (512, 21.7),
    "regnetx_040": (512, 21.4), "regnetx_064": (512, 20.8), "regnetx_080": (512, 20.7),
    "regnetx_120": (512, 20.3), "regnetx_160": (512, 20.0), "regnetx_320": (256, 19.5),
    "regnety_002": (1024, 29.7), "regnety_004": (1024, 25.9), "regnety_006": (1024, 24.5),
    "regnety_008": (1024, 23.7), "regnety_016": (1024, 22.1), "regnety_032": (512, 21.1),
    "regnety_040": (512, 20.6), "regnety_064": (512, 20.1), "regnety_080": (512, 20.1),
    "regnety_120": (512, 19.7), "regnety_160": (256, 19.6), "regnety_320": (256, 19.1),
}
FAST = {  # model: (image size, top-1 errors 1x / 2x / 4x, Table 5/6 flops (B), params (M), acts (M) or None)
    "regnety_040": (224, (19.4, 18.4, 18.1), (4.0, 20.6, 12.3)),
    "regnetz_005": (224, (22.2, 21.3, 21.0), (0.5, 7.1, 5.9)),
    "regnetz_040": (256, (17.5, 17.0, 16.9), None),  # the paper's exact RegNetZ-4GF is unpublished
    "efficientnet_b0": (224, (23.6, 22.7, 22.3), (0.4, 5.3, 6.7)),
    "efficientnet_b1": (240, (21.7, 20.8, 20.5), (0.7, 7.8, 10.9)),
    "efficientnet_b2": (260, (20.7, 20.0, 19.6), (1.0, 9.1, 13.8)),
    "efficientnet_b3": (300, (19.4, 18.8, 18.3), (1.8, 12.2, 23.8)),
    "efficientnet_b4": (380, (18.0, 17.4, 17.3), (4.4, 19.3, 49.5)),
    "efficientnet_b5": (456, (17.1, 16.7, None), (10.3, 30.4, 98.9)),  # no 4x number in Table 5
}
SCHEDULES = {"1x": 100, "2x": 200, "4x": 400}
EFFNET_RS = {0: (224, 10), 1: (232, 15), 2: (240, 15), 3: (256, 15), 4: (288, 15), 5: (320, 15), 6: (344, 20),
             7: (368, 20)}

REQUIRED = (
    {f"resnet_rs_{d}_{r}" for d, r, *_ in RS_TABLE8}
    | {name for name, *_ in ADDITIVE}
    | {f"rs_weight_decay_{d}_{reg}_wd{wd}" for d, reg in WEIGHT_DECAY for wd in ("1e-4", "4e-5")}
    | {f"{m}_zoo" for m in ZOO} | {"regnet_design_space"}
    | {f"fast_scaling_{m}_{s}" for m in FAST for s in SCHEDULES}
    | {f"efficientnet_rs_b{b}" for b in EFFNET_RS}
    | {"regnet_design_space_e25", "fast_scaling_search"} | {f"fast_scaling_regnetz_040_224_{s}" for s in SCHEDULES}
    | {f"{m}_{d}_dds" for m in ("resnet", "resnext") for d in (50, 101, 152)}
    | {f"efficientnet_b{b}_dds" for b in range(6)}
)


def test_required_names():
    names = set(recipe.list_recipes())
    assert REQUIRED <= names, sorted(REQUIRED - names)
    for prefix in ("resnet_rs_", "rs_additive_", "rs_weight_decay_", "fast_scaling_", "efficientnet_", "resne"):
        assert {n for n in names if n.startswith(prefix)} == {n for n in REQUIRED if n.startswith(prefix)}, prefix
    assert {n for n in names if n.startswith("regnet")} == {n for n in REQUIRED if n.startswith("regnet")}
    assert len(REQUIRED) == 11 + 11 + 12 + 26 + 27 + 4 + 8 + 12


def test_docs_list_every_recipe():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "RECIPES.md"), encoding="utf-8") as f:
        doc = f.read()
    spec = importlib.util.spec_from_file_location("make_recipes_doc", os.path.join(root, "tools", "make_recipes_doc.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.render(doc) == doc, "docs/RECIPES.md's recipe tables are stale: run python tools/make_recipes_doc.py"
    missing = sorted(n for n in REQUIRED if f"`{n}`" not in doc)
    assert not missing, f"docs/RECIPES.md does not list {missing}"


# -------------------------------------------------------------------------------------- ResNet-RS, Table 8

def _is_rs_training(r):
    """The ResNet-RS training recipe: Table 8 caption + TF2 configs."""
    assert r.train.epochs == 350 and r.train.global_batch_size == 4096
    assert r.optimizer.name == "sgd" and r.optimizer.momentum == 0.9 and not r.optimizer.nesterov
    assert r.optimizer.weight_decay == 4e-5 and r.optimizer.weight_decay_mode == "l2" and not r.optimizer.decay_all
    s = r.schedule
    assert (s.name, s.base_lr, s.base_batch_size, s.warmup_epochs, s.warmup_start, s.min_lr) == ("cosine", 0.1, 256, 5,
                                                                                               0, 0)
    assert r.peak_lr() == pytest.approx(1.6)
    assert r.regularization.label_smoothing == 0.1
    assert r.ema.decay == 0.9999 and r.ema.dynamic
    assert r.spec().bn_momentum == 0.0
    assert r.data.randaug_layers == 2 and not r.data.autoaugment and r.data.mixup_alpha == 0
    assert r.data.eval_mode == "crop_fraction" and r.data.eval_crop_fraction == 0.875
    assert r.runtime.mixed_precision == "auto"


@pytest.mark.parametrize("depth,res,magnitude,sd,dropout,top1", RS_TABLE8)
def test_resnet_rs_table8(depth, res, magnitude, sd, dropout, top1):
    r = load(f"resnet_rs_{depth}_{res}")
    _is_rs_training(r)
    spec = r.spec()
    assert r.model.name == f"resnet_rs_{depth}" and spec.ds == BLOCK_ALLOCATIONS[depth]
    assert (spec.se_ratio, spec.stem, spec.replace_stem_pool, spec.resnetd_shortcut) == (0.25, "v1", True, True)
    assert r.data.image_size == res and r.data.randaug_magnitude == magnitude
    assert spec.drop_path_rate == sd and spec.dropout == dropout
    assert r.paper_top1 == top1 and "Table 8" in r.paper_ref and "Table 7" in r.paper_ref
    if res == 320:  # the two early-stopped models (appendix B): minival held out, the best minival checkpoint kept
        assert r.data.minival_shards == 20 and r.train.keep_best and r.train.eval_every_epochs > 0
        assert r.total_steps() == 350 * ((1_281_167 - 25_023) // 4096)  # 306 steps per epoch on 1004 shards
    else:
        assert r.data.minival_shards == 0 and not r.train.keep_best
        assert r.total_steps() == 350 * 312  # 109,200 steps as the TF2 configs


# ----------------------------------------------------------------------------------- additive study, Table 1

def test_additive_study_rows():
    rows = [load(name) for name, *_ in ADDITIVE]
    assert len(study("rs_additive_")) == len(ADDITIVE)
    for (name, keys, top1), prev, r in zip(ADDITIVE, [None] + rows[:-1], rows):
        assert r.paper_top1 == top1 and "Table 1" in r.paper_ref, name
        if prev is not None:
            assert set(recipe.diff(prev, r)) == keys, name


def test_additive_study_baseline_and_values():
    base = load("rs_additive_00_baseline")
    spec = base.spec()
    assert base.model.name == "resnet_200" and base.data.image_size == 256
    assert (spec.stem, spec.se_ratio, spec.replace_stem_pool, spec.resnetd_shortcut) == ("v0", 0.0, False, False)
    assert spec.bn_momentum == 0.9 and spec.dropout == 0 and spec.drop_path_rate == 0
    assert base.train.epochs == 90 and base.train.global_batch_size == 4096 and base.peak_lr() == pytest.approx(1.6)
    s = base.schedule
    assert (s.name, tuple(s.boundaries), s.decay_rate, s.warmup_epochs, s.warmup_start) == ("step", (30, 60, 80), 0.1,
                                                                                            5, 0)
    assert base.optimizer.weight_decay == 1e-4 and not base.optimizer.nesterov
    assert base.ema.decay == 0 and base.regularization.label_smoothing == 0 and base.data.randaug_layers == 0
    # the regularization strengths are Table 8's ResNet-RS-200 at 256
    last = load("rs_additive_10_resnet_d")
    assert last.data.randaug_magnitude == 15 and last.optimizer.weight_decay == 4e-5
    assert (last.spec().drop_path_rate, last.spec().dropout) == (0.1, 0.25)


def test_additive_study_ends_at_resnet_rs_200():
    last, rs = load("rs_additive_10_resnet_d"), load("resnet_rs_200_256")
    assert last.spec() == rs.spec()
    assert {k.split(".")[0] + "." + k.split(".")[1] for k in recipe.diff(last, rs)} == {"model.name", "model.spec"}


# ---------------------------------------------------------------------------------- weight decay, Table 2

def test_weight_decay_grid():
    recipes = study("rs_weight_decay_")
    assert len(recipes) == 12
    for (depth, reg), (top1_hi, top1_lo) in WEIGHT_DECAY.items():
        hi, lo = (load(f"rs_weight_decay_{depth}_{reg}_wd{wd}") for wd in ("1e-4", "4e-5"))
        assert (hi.optimizer.weight_decay, lo.optimizer.weight_decay) == (1e-4, 4e-5)
        assert (hi.paper_top1, lo.paper_top1) == (top1_hi, top1_lo)
        assert set(recipe.diff(hi, lo)) == {"optimizer.weight_decay"}
        for r in (hi, lo):
            spec = r.spec()
            assert r.model.name == f"resnet_{depth}" and r.data.image_size == {50: 224, 200: 256}[depth]
            assert spec.se_ratio == 0 and spec.stem == "v0"  # the paper's "ResNet": no SE, no ResNet-D
            assert "Table 2" in r.paper_ref and "minival" in r.paper_ref
            assert r.data.minival_shards == 20 and r.data.num_minival_examples == 25_023  # 20 / 1024 of the set
            # the training methods of Table 1 (rows 1-3)
            assert r.train.epochs == 350 and r.schedule.name == "cosine" and r.ema.decay == 0.9999
            assert spec.bn_momentum == 0
            parts = set(reg.split("_")) - {"none"}
            assert (r.data.randaug_layers, r.data.randaug_magnitude) == ((2, 15) if "ra" in parts else (0, 10))
            assert r.regularization.label_smoothing == (0.1 if "ls" in parts else 0.0)
            assert spec.dropout == (0.25 if "do" in parts else 0.0)
            assert spec.drop_path_rate == (0.1 if "sd" in parts else 0.0)


def test_weight_decay_resnet_200_full_regularization_is_the_additive_study():
    minival = {"data.minival_shards": (20, 0), "data.num_minival_examples": (25_023, 0)}  # Table 2 is on minival
    assert recipe.diff(load("rs_weight_decay_200_ra_ls_sd_do_wd1e-4"), load("rs_additive_07_dropout")) == minival
    assert recipe.diff(load("rs_weight_decay_200_ra_ls_sd_do_wd4e-5"), load("rs_additive_08_weight_decay")) == minival


# ----------------------------------------------------------------------------------------------- RegNet

def test_regnet_zoo_recipes():
    recipes = {n: r for n, r in study("regnet").items() if n.endswith("_zoo")}
    assert len(recipes) == 24
    for model, (batch, err) in ZOO.items():
        r = recipes[f"{model}_zoo"]
        assert r.model.name == model and r.train.global_batch_size == batch
        assert r.peak_lr() == pytest.approx(0.1 * batch / 128)  # 0.8 / 0.4 / 0.2
        assert r.zoo_top1 == pytest.approx(100 - err) and "MODEL_ZOO" in r.zoo_ref
        o, s = r.optimizer, r.schedule
        assert o.nesterov and o.decay_all and o.momentum == 0.9 and o.weight_decay == 5e-5
        assert (s.name, s.base_batch_size, s.warmup_epochs, s.warmup_start, s.min_lr) == ("cosine", 128, 5, 0.1, 0)
        assert r.train.epochs == 100 and r.data.image_size == 224
        assert r.data.eval_mode == "resize_short" and r.data.eval_short_side == 256
        assert r.regularization.label_smoothing == 0 and r.ema.decay == 0
        assert r.data.randaug_layers == 0 and not r.data.autoaugment and r.data.mixup_alpha == 0
        assert r.spec().dropout == 0 and resolve(r.spec()).bn_momentum == 0.9


def test_regnet_design_space():
    r = load("regnet_design_space")
    assert r.model.name == "regnetx_004" and r.train.epochs == 10 and r.train.global_batch_size == 128
    assert r.peak_lr() == pytest.approx(0.05) and r.schedule.name == "cosine" and r.schedule.warmup_epochs == 0
    assert r.optimizer.weight_decay == 5e-5 and r.optimizer.momentum == 0.9 and r.paper_top1 is None


# -------------------------------------------------------------------------------------- fast scaling, 6.1

@pytest.mark.parametrize("model", sorted(FAST))
def test_fast_scaling(model):
    size, errors, paper_cx = FAST[model]
    one = load(f"fast_scaling_{model}_1x")
    for (sched, epochs), err in zip(SCHEDULES.items(), errors):
        r = load(f"fast_scaling_{model}_{sched}")
        assert r.model.name == model and r.data.image_size == size
        large = model == "efficientnet_b5"  # "for large models we reduce the batch size and learning rate"
        assert r.train.epochs == epochs and r.train.global_batch_size == (512 if large else 1024)
        s = r.schedule
        assert (s.name, s.base_lr, s.base_batch_size, s.final_lr, s.warmup_epochs) == ("exponential", 2.0, 1024,
                                                                                        0.02, 5)
        assert r.peak_lr() == pytest.approx(1.0 if large else 2.0)
        assert r.optimizer.weight_decay == (1e-5 if model.startswith("efficientnet") else 2e-5)
        assert not r.optimizer.decay_all and r.optimizer.momentum == 0.9
        assert r.data.mixup_alpha == 0.2 and r.data.autoaugment == "v0" and r.data.randaug_layers == 0
        assert r.regularization.label_smoothing == 0.1
        assert r.data.eval_mode == "resize_short"
        assert r.spec().dropout == 0 and getattr(r.spec(), "drop_path_rate", 0) == 0  # as pycls; none in the paper
        assert r.ema.decay == 0 and r.swa.enabled and (r.swa.start, r.swa.every_epochs) == (0.75, 1.0)
        assert r.data.contrast_mode == "pil"  # AutoAugment as pycls (PIL)
        if err is None:
            assert r.paper_top1 is None
        else:
            assert r.paper_top1 == pytest.approx(100 - err) and "Table" in r.paper_ref
        if sched != "1x":
            assert set(recipe.diff(one, r)) == {"train.epochs"}
    if paper_cx:
        cx = regnet_tf.complexity(one.spec(), size, 1000)
        got = (round(cx["flops"] / 1e9, 1), round(cx["params"] / 1e6, 1), round(cx["acts"] / 1e6, 1))
        assert got == paper_cx


# ---------------------------------------------------------------------------------------- EfficientNet-RS

def test_efficientnet_rs():
    """The recipes derive image size and magnitude from the model (`model`); they resolve to the numbers the
    recipes hard-coded before (EFFNET_RS: `git show 7b46672:recipes/efficientnet_rs/...`)."""
    assert len(study("efficientnet_rs_")) == 8
    base = recipe.read_raw("_efficientnet_rs")["data"]
    assert base["image_size"] == base["randaug_magnitude"] == recipe.DERIVED
    for b, (res, magnitude) in EFFNET_RS.items():
        name = f"efficientnet_rs_b{b}"
        assert recipe.read_raw(name)["data"]["image_size"] == recipe.DERIVED  # from the base, not the file
        r = load(name)
        entry = regnet_tf.get_entry(name)
        assert r.model.name == name and r.data.image_size == res == entry.resolution
        assert r.data.randaug_magnitude == magnitude == randaugment_magnitude(res)
        assert f"image_size: {res}" in r.to_yaml() and f"randaug_magnitude: {magnitude}.0" in r.to_yaml()
        _is_efficientnet_training(r)
        assert r.spec().dropout == entry.spec.dropout and r.spec().drop_path_rate == entry.spec.drop_path_rate
        assert r.paper_top1 is None
    # the magnitude follows an overridden image size; a family without a rule is an error naming the fix
    small = recipe.load("efficientnet_rs_b6", ["data.image_size=200"])
    assert (small.data.image_size, small.data.randaug_magnitude) == (200, 10)
    with pytest.raises(ValueError, match=r"resnet_rs family \(resnet_rs_50\) has no RandAugment magnitude rule"):
        recipe.load("resnet_rs_50_160", ["data.randaug_magnitude=model"])
    assert recipe.load("resnet_rs_50_160", ["data.image_size=model"]).data.image_size == \
        regnet_tf.get_entry("resnet_rs_50").resolution


# The original EfficientNet training setup (section 7.2: "All other hyperparameters are kept the same as per the
# original EfficientNets"): value, source. TPU = tensorflow/tpu models/official/efficientnet reference code; RR =
# Revisiting ResNets Table 10; RN = RegNet paper Table 7; EN = EfficientNet paper section 5.2.
EFFNET_ORIGINAL = {
    "optimizer.name": ("rmsprop", "TPU utils.build_optimizer; RR Table 10; RN Table 7"),
    "optimizer.rho": (0.9, "TPU RMSPropOptimizer decay=0.9; EN"),
    "optimizer.momentum": (0.9, "TPU momentum=0.9; EN"),
    "optimizer.epsilon": (1e-3, "TPU epsilon=0.001"),
    "optimizer.nesterov": (False, "TF1 RMSProp has plain momentum"),
    "optimizer.weight_decay": (1e-5, "TPU --weight_decay=1e-5; EN"),
    "optimizer.weight_decay_mode": ("l2", "TPU wd x l2_loss added to the loss"),
    "schedule.name": ("staircase", "TPU exponential_decay(staircase=True); RR Table 10"),
    "schedule.base_lr": (0.016, "TPU --base_learning_rate=0.016 per 256"),
    "schedule.base_batch_size": (256, "TPU scaled_lr = base x batch / 256"),
    "schedule.decay_rate": (0.97, "TPU --lr_decay_factor; EN"),
    "schedule.decay_epochs": (2.4, "TPU --lr_decay_epoch; EN"),
    "schedule.warmup_epochs": (5.0, "TPU --lr_warmup_epochs"),
    "schedule.warmup_start": (0.0, "TPU warmup from 0"),
    "regularization.label_smoothing": (0.1, "TPU --label_smoothing"),
    "ema.decay": (0.9999, "TPU --moving_average_decay"),
    "ema.dynamic": (True, "TPU ExponentialMovingAverage(num_updates=global_step)"),
    "train.epochs": (350.0, "TPU 218949 steps at 2048; RR Table 10; RN Table 7"),
    "train.global_batch_size": (4096, "EN initial lr 0.256 = 0.016 x 4096 / 256"),
    "data.resize_method": ("bicubic", "TPU preprocessing.py default"),
    "data.eval_mode": ("crop_fraction", "TPU preprocessing.py center crop"),
    "data.eval_crop_fraction": (0.875, "TPU preprocessing.py CROP_FRACTION"),
    "data.contrast_mode": ("tf1", "TPU autoaugment.py"),
    "data.randaug_layers": (2, "Revisiting ResNets 7.2 / Table 8 (RandAugment in place of AutoAugment)"),
}
EFFNET_DROPOUT = {0: 0.2, 1: 0.2, 2: 0.3, 3: 0.3, 4: 0.4, 5: 0.4, 6: 0.5, 7: 0.5}  # TPU efficientnet_params


def _is_efficientnet_training(r):
    """The original EfficientNet training (EFFNET_ORIGINAL), BN 0.99 / 1e-3, dropout by model, drop connect 0.2."""
    for key, (value, source) in EFFNET_ORIGINAL.items():
        section, field = key.split(".")
        assert getattr(getattr(r, section), field) == value, f"{r.name}: {key} should be {value!r} ({source})"
    assert r.peak_lr() == pytest.approx(0.256)  # EfficientNet paper: "initial learning rate 0.256"
    spec = r.spec()
    assert (spec.bn_momentum, spec.bn_eps, spec.drop_path_rate) == (0.99, 1e-3, 0.2)
    assert spec.dropout == EFFNET_DROPOUT[int(r.model.name[-1])]
    assert not r.data.autoaugment and r.data.mixup_alpha == 0 and r.data.cutmix_alpha == 0
    assert not r.swa.enabled and r.runtime.mixed_precision == "auto"


def test_efficientnet_rs_is_efficientnet_training_with_only_resolution_and_randaugment_changed():
    """Section 7.2: the same recipe with the original model, resolution and AutoAugment differs from EfficientNet-RS
    in exactly those (and the RandAugment it replaces): nothing else was changed."""
    for b, (res, magnitude) in EFFNET_RS.items():
        rs = load(f"efficientnet_rs_b{b}")
        original = recipe.load(f"efficientnet_rs_b{b}", [f"model.name=efficientnet_b{b}", "data.image_size=model",
                                                         "data.randaug_layers=0", "data.autoaugment=v0",
                                                         f"data.randaug_magnitude={magnitude}"])  # unused: AA
        changed = recipe.diff(original, rs)
        assert set(changed) <= {"model.name", "data.image_size", "data.randaug_layers", "data.autoaugment"}, changed
        assert original.data.image_size == regnet_tf.get_entry(f"efficientnet_b{b}").resolution
        assert original.data.image_size > res if b else original.data.image_size == res == 224
        # the networks are the same (widths, depths, dropout, drop connect, BN): only the name differs
        assert original.spec() == rs.spec()
    # its own setup, not inherited from ResNet-RS's
    with open(recipe.recipe_path("_efficientnet_rs"), encoding="utf-8") as f:
        assert "\nbase:" not in f.read()


def test_model_kind_and_name():
    r = load("demo")
    assert (r.model.name, r.model.kind) == ("", "anynet") and r.spec().kind == "anynet"
    assert r.data.source == "demo" and (r.data.num_classes, r.data.num_train_examples) == (10, 5000)
    regnet = recipe.load("demo", ["model.kind=regnet", "model.spec={d: 13, w0: 24, wa: 36.44, wm: 2.49, g: 8}"])
    assert regnet.spec().kind == "anynet" and regnet.spec().ds  # a RegNetSpec resolves to its AnyNetSpec
    with pytest.raises(ValueError, match="model.kind='anynets' is not a spec kind; valid: .*anynet"):
        recipe.load("demo", ["model.kind=anynets"])
    with pytest.raises(ValueError, match="set one"):
        recipe.load("demo", ["model.name=regnetx_002"])
    with pytest.raises(ValueError, match="AnyNetSpec of model.kind 'anynet' has no field"):
        recipe.load("demo", ["model.spec.depth=3"])
    # a spec kind in model.name: an error naming the fix, not a silent reinterpretation
    with pytest.raises(ValueError, match="model.name='anynet' is a spec kind.*write `model: {kind: anynet, spec"):
        recipe.load("demo", ["model.kind=", "model.name=anynet"])
    assert "kind: anynet" in r.to_yaml()


# ------------------------------------------------------------------------------------------ schema errors

def _write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def tmp_recipes(tmp_path, monkeypatch):
    monkeypatch.setenv("REGNET_TF_RECIPES", str(tmp_path))
    _write(tmp_path, "_tiny.yaml", "model: {name: regnetx_002}\ntrain: {epochs: 5, global_batch_size: 64}\n")
    _write(tmp_path, "group/tiny_alpha.yaml", "base: _tiny\ndescription: ok\n")
    return tmp_path


def test_tmp_recipes_inherit_and_list(tmp_recipes):
    assert recipe.list_recipes() == ["tiny_alpha"]
    r = recipe.load("tiny_alpha")
    assert (r.model.name, r.train.epochs, r.train.global_batch_size, r.description) == ("regnetx_002", 5.0, 64, "ok")


def test_unknown_key_lists_valid_keys(tmp_recipes):
    _write(tmp_recipes, "bad_key.yaml", "base: _tiny\ntrain: {epoch: 2}\n")
    with pytest.raises(ValueError, match="epoch") as e:
        recipe.load("bad_key")
    assert "Valid keys" in str(e.value) and "global_batch_size" in str(e.value) and "did you mean 'epochs'" in str(e.value)
    _write(tmp_recipes, "bad_section.yaml", "base: _tiny\ntraining: {epochs: 2}\n")
    with pytest.raises(ValueError, match="optimizer"):
        recipe.load("bad_section")


def test_bad_type(tmp_recipes):
    _write(tmp_recipes, "bad_type.yaml", "base: _tiny\ntrain: {epochs: ten}\n")
    with pytest.raises(ValueError, match="train.epochs: expected float"):
        recipe.load("bad_type")
    _write(tmp_recipes, "bad_choice.yaml", "base: _tiny\nschedule: {name: linear}\n")
    with pytest.raises(ValueError, match="cosine"):
        recipe.load("bad_choice")
    _write(tmp_recipes, "bad_model.yaml", "base: _tiny\nmodel: {name: regnetx_02}\n")
    with pytest.raises(ValueError, match="regnetx_002"):
        recipe.load("bad_model")
    _write(tmp_recipes, "bad_bn.yaml", "base: _tiny\nmodel: {spec: {bn_momentum: 0.0}}\n")
    with pytest.raises(ValueError, match="ema.decay"):
        recipe.load("bad_bn")


def test_unknown_recipe_lists_close_matches(tmp_recipes):
    with pytest.raises(ValueError, match="Did you mean: tiny_alpha") as e:
        recipe.load("tiny_alpah")
    assert "Valid recipes (1)" in str(e.value)


def test_overrides(tmp_recipes):
    r = recipe.load("tiny_alpha", overrides=["train.epochs=2", "data.image_size=128", "schedule.boundaries=[1, 2]",
                                             "optimizer.nesterov=true", "model.spec.dropout=0.5"])
    assert r.train.epochs == 2.0 and isinstance(r.train.epochs, float)
    assert r.data.image_size == 128 and r.schedule.boundaries == (1, 2) and r.optimizer.nesterov
    assert r.spec().dropout == 0.5
    assert r.train.global_batch_size == 64  # untouched keys keep the file's value
    with pytest.raises(ValueError, match="section.key=value"):
        recipe.load("tiny_alpha", overrides=["train.epochs"])
    with pytest.raises(ValueError, match="Valid keys"):
        recipe.load("tiny_alpha", overrides=["train.epoch=2"])


def test_inheritance_cycle(tmp_recipes):
    _write(tmp_recipes, "cyc_a.yaml", "base: cyc_b\n")
    _write(tmp_recipes, "cyc_b.yaml", "base: cyc_a\n")
    with pytest.raises(ValueError, match="cycle"):
        recipe.load("cyc_a")


def test_duplicate_names(tmp_recipes):
    _write(tmp_recipes, "other/tiny_alpha.yaml", "base: _tiny\n")
    with pytest.raises(ValueError, match="two recipes are named 'tiny_alpha'"):
        recipe.list_recipes()
