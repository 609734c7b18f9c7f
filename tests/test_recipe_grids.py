"""Recipe grids (`*.grid.yaml`), `model.scale`, and the studies they encode: the Revisiting ResNets scaling study,
the fast-scaling paper's scaled models, and the RegNet paper's baselines (Tables 3-4) and section 4 setting.
Pure Python: recipe parsing imports no TensorFlow."""


import pytest
import yaml

import regnet_tf
from regnet_tf.models.resnet import BLOCK_ALLOCATIONS
from regnet_tf.train import recipe
from regnet_tf.train import recipe_files
from test_recipes import _write  # tests/ is on sys.path

SCALING_AXES = {"depth": [26, 50, 101, 200, 300, 350, 400], "width": [0.25, 0.5, 1.0, 1.5, 2.0],
                "res": [128, 160, 224, 320, 448], "epochs": [10, 100, 350]}
TABLE12_DROPOUT = {0.25: 0.0, 0.5: 0.1, 1.0: 0.25, 1.5: 0.6, 2.0: 0.75}


def grid(pattern):
    return next(g for g in recipe.list_grids() if g.pattern == pattern)


# ------------------------------------------------------------------------------------------ the mechanism

@pytest.fixture
def tmp_grid(tmp_path, monkeypatch):
    monkeypatch.setenv("REGNET_TF_RECIPES", str(tmp_path))
    _write(tmp_path, "_base.yaml", "model: {name: regnetx_002}\ntrain: {epochs: 5, global_batch_size: 64}\n")
    _write(tmp_path, "g/toy.grid.yaml", """base: _base
description: a toy grid
regularization: {label_smoothing: 0.1}
grid:
  name: toy_e{epochs}_b{batch}
  axes:
    epochs: {2: {train: {epochs: 2}}, 4: {train: {epochs: 4}}}
    batch: {32: {train: {global_batch_size: 32}}, 64: {}}
  rules:
    - when: {epochs: [4]}
      set: {regularization: {label_smoothing: 0.2}}
    - when: {epochs: [4], batch: [32]}
      set: {regularization: {label_smoothing: 0.3}}
  points:
    toy_e2_b64: {paper_top1: 70.5, paper_ref: somewhere}
""")
    return tmp_path


def test_grid_points_resolve_in_order(tmp_grid):
    assert recipe.list_recipes() == []  # grid points are not files
    assert recipe.list_recipes(grids=True) == ["toy_e2_b32", "toy_e2_b64", "toy_e4_b32", "toy_e4_b64"]
    got = {n: recipe.load(n) for n in recipe.list_recipes(grids=True)}
    assert {n: (r.train.epochs, r.train.global_batch_size, r.regularization.label_smoothing)
            for n, r in got.items()} == {"toy_e2_b32": (2, 32, 0.1), "toy_e2_b64": (2, 64, 0.1),
                                         "toy_e4_b32": (4, 32, 0.3), "toy_e4_b64": (4, 64, 0.2)}
    assert got["toy_e2_b64"].paper_top1 == 70.5 and got["toy_e4_b64"].paper_top1 is None
    assert all(r.name == n and r.model.name == "regnetx_002" for n, r in got.items())  # the base is inherited
    assert recipe.load("toy_e4_b32", ["train.epochs=7"]).train.epochs == 7  # overrides apply last


def test_off_grid_names_say_what_is_valid(tmp_grid):
    with pytest.raises(ValueError, match=r"off the grid toy_e\{epochs\}_b\{batch\}: epochs='3' \(valid: 2, 4\)"):
        recipe.load("toy_e3_b32")
    with pytest.raises(ValueError, match=r"batch='16' \(valid: 32, 64\)"):
        recipe.load("toy_e2_b16")
    with pytest.raises(ValueError, match=r"Unknown recipe 'nothing'.*recipe grids: toy_e\{epochs\}_b\{batch\} "
                                         r"\(epochs in \{2, 4\}, batch in \{32, 64\}\)"):
        recipe.load("nothing")


def test_malformed_grids_are_errors(tmp_grid):
    _write(tmp_grid, "bad.grid.yaml", "grid: {name: \"bad_{a}_{b}\", axes: {a: {1: {}}}}\n")
    with pytest.raises(ValueError, match="must use each axis once"):
        recipe.list_grids()
    _write(tmp_grid, "bad.grid.yaml", "grid: {name: \"bad_{a}\", axes: {a: {1: {}}}, rules: [{when: {z: [1]}, set: {}}]}\n")
    with pytest.raises(ValueError, match="a rule is"):
        recipe.list_grids()
    _write(tmp_grid, "bad.grid.yaml", "grid: {name: \"bad_{a}\", axes: {a: {1: {}}}, points: {bad_2: {}}}\n")
    with pytest.raises(ValueError, match=r"points` \['bad_2'\] are not names"):
        recipe.list_grids()


# ----------------------------------------------------------------------------- model.scale in a recipe

def test_model_scale_is_regnet_tf_scale_and_is_recorded():
    r = recipe.from_dict({"model": {"scale": {"base": "regnety_040", "factor": 4}}, "data": {"image_size": "model"}},
                         "x")
    spec, res = regnet_tf.scale("regnety_040", 4, "dWr", 0.8)
    assert r.spec() == spec and r.data.image_size == res == 240
    assert r.model.kind == "anynet" and r.model.scale == {"base": "regnety_040", "factor": 4.0, "strategy": "dWr",
                                                          "alpha": 0.8, "resolution": 240}
    again = recipe.from_dict(yaml.safe_load(r.to_yaml()))  # a model_dir's recipe.yaml: resolved, not rescaled
    assert again.spec() == spec and recipe.diff(r, again) == {}
    # model.spec changes fields of the scaled spec; data.image_size given explicitly wins
    r = recipe.from_dict({"model": {"scale": {"base": "efficientnet_b0", "factor": 2, "strategy": "w"},
                                    "spec": {"dropout": 0.0}}, "data": {"image_size": 200}}, "y")
    assert r.spec().dropout == 0.0 and r.data.image_size == 200
    assert r.spec().replace(dropout=0.2) == regnet_tf.scale("efficientnet_b0", 2, "w")[0]


@pytest.mark.parametrize("scale, message", [
    ({"base": "regnety_040"}, "base: <registered model>, factor"),
    ({"base": "regnety_040", "factor": 2, "stratgy": "d"}, r"unknown key\(s\) \['stratgy'\]"),
    ({"base": "regnety_04", "factor": 2}, "regnety_040"),
    ({"base": "regnety_040", "factor": 2, "strategy": "dwx"}, "unknown scaling strategy"),
])
def test_model_scale_errors(scale, message):
    with pytest.raises(ValueError, match=message):
        recipe.from_dict({"model": {"scale": scale}}, "x")
    with pytest.raises(ValueError, match="remove model.name"):
        recipe.from_dict({"model": {"name": "regnetx_002", "scale": {"base": "regnety_040", "factor": 2}}}, "x")


# ------------------------------------------------------------------- Revisiting ResNets scaling study

def test_scaling_study_grid_covers_section_6():
    g = grid("rs_scaling_d{depth}_w{width}_r{res}_e{epochs}")
    assert {a: [float(v) if a == "width" else int(v) for v in vs] for a, vs in g.axes.items()} == SCALING_AXES
    assert len(g.names()) == 7 * 5 * 5 * 3
    assert "rs_scaling_d101_w1.5_r224_e350" in g.names()


def test_every_scaling_point_follows_appendix_e():
    for name in grid("rs_scaling_d{depth}_w{width}_r{res}_e{epochs}").names():
        r = recipe.load(name)
        d, w, res, e = name.split("_")[2:]
        depth, width, res, epochs = int(d[1:]), float(w[1:]), int(res[1:]), int(e[1:])
        spec = r.spec()
        assert spec.ds == BLOCK_ALLOCATIONS[depth] and spec.ws == tuple(int(x * width) for x in (64, 128, 256, 512))
        assert spec.stem_w == int(64 * width) and (spec.se_ratio, spec.stem, spec.resnetd_shortcut) == (0.25, "v1", True)
        assert r.data.image_size == res and r.train.epochs == epochs
        assert r.data.minival_shards == 20 and r.optimizer.weight_decay == 4e-5  # minival numbers; wd 4e-5 always
        if epochs == 350:
            magnitude = 10 if width <= 0.5 or res <= 160 else 15 if res <= 320 else 20
            assert (r.data.randaug_layers, r.data.randaug_magnitude) == (2, magnitude), name
            assert spec.dropout == TABLE12_DROPOUT[width], name
            assert spec.drop_path_rate == (0.2 if res >= 224 and width != 0.25 else 0.0), name
            assert r.regularization.label_smoothing == 0.1
        else:  # "We did not use RandAugment, Dropout, Stochastic Depth or Label Smoothing"
            assert r.data.randaug_layers == 0 and spec.dropout == 0 and spec.drop_path_rate == 0
            assert r.regularization.label_smoothing == 0
        assert r.ema.decay == 0.9999 and spec.bn_momentum == 0  # the ResNet-RS training recipe


def test_scaling_study_width_1_is_resnet_rs():
    r, rs = recipe.load("rs_scaling_d350_w1.0_r224_e350"), regnet_tf.get_spec("resnet_rs_350")
    assert r.spec().replace(dropout=0.0, drop_path_rate=0.0, bn_momentum=0.9) == rs.replace(dropout=0.0,
                                                                                            drop_path_rate=0.0)


# ------------------------------------------------------------------------- fast scaling: scaled models

def test_fast_scaled_grid():
    g = grid("fast_scaled_{base}_{strategy}_x{factor}_{schedule}")
    assert set(g.axes["strategy"]) == set(regnet_tf.scaling.SCALING_STRATEGIES)
    assert len(g.names()) == 4 * 8 * 5 * 3
    for name in g.names():
        r = recipe.load(name)
        s = r.model.scale
        spec, res = regnet_tf.scale(s["base"], s["factor"], s["strategy"], s["alpha"])
        assert r.data.image_size == res and r.swa.enabled and r.ema.decay == 0
        cx = regnet_tf.complexity(r.spec(), res)
        large = cx["flops"] >= 10e9  # "for large models we reduce the batch size and learning rate proportionally"
        assert r.train.global_batch_size == (512 if large else 1024), (name, cx["flops"])
        assert r.peak_lr() == pytest.approx(2.0 * r.train.global_batch_size / 1024)
        assert r.optimizer.weight_decay == (1e-5 if s["base"].startswith("efficientnet") else 2e-5)


@pytest.mark.parametrize("name, paper_cx, top1", [
    ("fast_scaled_regnetz_005_dWr_x8_{}", (4.0, 41.1, 19.4), (82.3, 82.8, 83.0)),  # RegNetZ-500MF -> 4GF
    ("fast_scaled_regnetz_005_dWr_x32_{}", (16.2, 134.8, 42.6), (83.4, 83.9, 83.9)),  # RegNetZ-500MF -> 16GF
])
def test_fast_scaled_paper_rows(name, paper_cx, top1):
    for sched, t in zip(("1x", "2x", "4x"), top1):
        r = recipe.load(name.format(sched))
        assert r.paper_top1 == t and "Table" in r.paper_ref
    cx = regnet_tf.complexity(r.spec(), r.data.image_size)
    got = (cx["flops"] / 1e9, cx["params"] / 1e6, cx["acts"] / 1e6)
    assert got == pytest.approx(paper_cx, rel=0.03)  # our rounding of the scaled widths, within 3% of Table 8


# -------------------------------------------------------------------------- RegNet paper: Tables 3 and 4

@pytest.mark.parametrize("name, cx", [  # pycls MODEL_ZOO complexity (flops B, params M, acts M)
    ("resnet_50_dds", (4.1, 25.6, 11.3)), ("resnet_101_dds", (7.8, 44.5, 16.4)), ("resnet_152_dds", (11.5, 60.2, 22.8)),
    ("resnext_50_dds", (4.2, 25.0, 14.6)), ("resnext_101_dds", (8.0, 44.2, 21.4)),
    ("resnext_152_dds", (11.7, 60.0, 29.9)),
])
def test_table3_baselines(name, cx):
    r = recipe.load(name)
    c = regnet_tf.complexity(r.spec(), 224)
    assert (round(c["flops"] / 1e9, 1), round(c["params"] / 1e6, 1), round(c["acts"] / 1e6, 1)) == cx
    assert (r.train.epochs, r.train.global_batch_size, r.peak_lr(), r.optimizer.weight_decay) == (100, 256, 0.2, 5e-5)
    assert r.schedule.warmup_epochs == 5 and r.schedule.name == "cosine" and r.optimizer.nesterov
    assert r.data.eval_short_side == 256 and r.regularization.label_smoothing == 0 and "Table 3" in r.paper_ref


def test_table4_efficientnets_with_the_regnet_setup():
    for b, (batch, top1) in enumerate([(256, 75.1), (256, 75.9), (256, 76.6), (256, 77.5), (128, 78.8), (64, 78.5)]):
        r = recipe.load(f"efficientnet_b{b}_dds")
        assert r.train.global_batch_size == batch and r.peak_lr() == pytest.approx(0.2 * batch / 128)
        assert r.paper_top1 == top1 and "Table 4" in r.paper_ref and r.zoo_top1 is not None
        assert r.data.image_size == regnet_tf.get_entry(f"efficientnet_b{b}").resolution
        assert r.spec().dropout == 0 and r.spec().drop_path_rate == 0 and r.optimizer.weight_decay == 1e-5
        assert r.schedule.warmup_epochs == (5 if batch > 128 else 0)  # appendix C: warmup when the batch is scaled


def test_regnet_section4_setting():
    r, ds = recipe.load("regnet_design_space_e25"), recipe.load("regnet_design_space")
    assert (r.train.epochs, r.peak_lr(), r.train.global_batch_size) == (25, 0.1, 128)
    assert set(recipe.diff(ds, r)) == {"train.epochs", "schedule.base_lr"}


def test_regnet_zoo_carries_paper_and_zoo_numbers():
    x4 = recipe.load("regnetx_004_zoo")
    assert (x4.paper_top1, x4.zoo_top1) == (72.7, 72.6) and "Figure 15" in x4.paper_ref and "MODEL_ZOO" in x4.zoo_ref
    y16 = recipe.load("regnety_160_zoo")
    assert y16.train.global_batch_size == 256  # pycls's (released weights); the paper's 512 is one flag away
    assert recipe.load("regnety_160_zoo", ["train.global_batch_size=512"]).peak_lr() == pytest.approx(0.4)
    differ = [n for n in recipe.list_recipes("_zoo") if recipe.load(n).paper_top1 not in (None,
                                                                                           recipe.load(n).zoo_top1)]
    assert sorted(differ) == ["regnetx_004_zoo", "regnety_002_zoo", "regnety_016_zoo", "regnety_032_zoo",
                              "regnety_320_zoo"]


def test_list_recipes_shows_the_grids():
    names = recipe_files.list_recipes(grids=True)
    assert "rs_scaling_d101_w1.5_r224_e350" in names and "fast_scaled_efficientnet_b0_dWr_x32_2x" in names
    assert len(names) == len(recipe.list_recipes()) + 525 + 480 + 21  # + rs_finetune_cifar100_*
