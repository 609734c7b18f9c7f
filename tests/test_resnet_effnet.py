"""ResNet / ResNet-D / ResNet-RS and EfficientNet / EfficientNet-RS: specs, complexity oracles, Keras models."""

import numpy as np
import pytest

from regnet_tf import complexity, get_entry, get_spec, list_models
from regnet_tf.models.efficientnet import EffNetSpec, randaugment_magnitude, round_filters, rs_resolution
from regnet_tf.models.resnet import BLOCK_ALLOCATIONS, ResNetSpec


def test_block_allocations_match_the_paper():
    # Revisiting ResNets Table 11 and appendix E (300, 400); 26 as Model Garden's bottleneck ResNet-26
    assert BLOCK_ALLOCATIONS[50] == (3, 4, 6, 3) and BLOCK_ALLOCATIONS[200] == (3, 24, 36, 3)
    assert BLOCK_ALLOCATIONS[270] == (4, 29, 53, 4) and BLOCK_ALLOCATIONS[350] == (4, 36, 72, 4)
    assert BLOCK_ALLOCATIONS[420] == (4, 44, 87, 4)
    assert BLOCK_ALLOCATIONS[300] == (4, 36, 54, 4) and BLOCK_ALLOCATIONS[400] == (6, 48, 72, 6)
    # 3 layers per bottleneck + stem conv + classifier: the paper's names round it for 270, 300, 400 and 420
    layers = {depth: 3 * sum(ds) + 2 for depth, ds in BLOCK_ALLOCATIONS.items()}
    assert layers == {26: 26, 50: 50, 101: 101, 152: 152, 200: 200, 270: 272, 300: 296, 350: 350, 400: 398,
                      420: 419}
    with pytest.raises(ValueError, match="valid depths: \\[26, 50"):
        ResNetSpec.from_depth(77)


def test_width_multiplier_and_variants():
    s = ResNetSpec.from_depth(101, width=0.25, variant="plain")
    assert s.ws == (16, 32, 64, 128) and s.stem_w == 16 and s.stem == "v0" and not s.se_ratio
    rs = ResNetSpec.from_depth(50, width=1.5)
    assert rs.ws == (96, 192, 384, 768) and rs.stem_widths() == (48, 48, 96)
    assert rs.replace_stem_pool and rs.resnetd_shortcut and rs.se_ratio == 0.25
    # wider is ~quadratically more expensive
    assert 2.0 < complexity(rs, 224)["flops"] / complexity(ResNetSpec.from_depth(50), 224)["flops"] < 2.3


def test_stochastic_depth_rates_grow_linearly_per_stage():
    assert np.allclose(ResNetSpec.from_depth(200, drop_path_rate=0.1).drop_path_rates(), (0.04, 0.06, 0.08, 0.10))
    rates = [dp for *_, dp in ResNetSpec.from_depth(50, drop_path_rate=0.1).blocks()]
    assert np.allclose(rates, [0.04] * 3 + [0.06] * 4 + [0.08] * 6 + [0.1] * 3)


def test_resnet_complexity_oracles():
    # tf_keras.applications.ResNetRS* trainable parameters (keras_timm.md 1.7), identical architecture
    tf_keras_params = {50: 35691912, 101: 63618696, 152: 86621576, 200: 93209992, 270: 129861448,
                       350: 163956168, 420: 191891656}
    for depth, params in tf_keras_params.items():
        assert complexity(f"resnet_rs_{depth}")["params"] == params
    # Paper Table 7 "FLOPs (B)" are 2 x multiply-adds: within 3% of 2 x ours (most to the printed digit)
    table7 = [(50, 160, 4.6), (101, 160, 8.4), (101, 192, 12), (152, 192, 18), (152, 224, 24), (152, 256, 31),
              (200, 256, 40), (270, 256, 54), (350, 256, 69), (350, 320, 107), (420, 320, 128)]
    for depth, res, gflops in table7:
        ours = 2 * complexity(f"resnet_rs_{depth}", res)["flops"] / 1e9
        assert abs(ours - gflops) / gflops < 0.03, (depth, res, ours, gflops)
    # plain ResNet-50 = torchvision / pycls ResNet-50
    assert complexity("resnet_50") == {"flops": 4089185256, "params": 25557032, "acts": 11315688}


def test_efficientnet_configs_and_complexity():
    # pycls EN-B1..B5 configs (pycls.md 1.5) come out of the compound-scaling rule
    b3 = get_spec("efficientnet_b3")
    assert b3.stem_w == 40 and b3.ds == (2, 3, 3, 5, 5, 6, 2) and b3.ws == (24, 32, 48, 96, 136, 232, 384)
    assert b3.head_w == 1536 and get_spec("efficientnet_b5").ws == (24, 40, 64, 128, 176, 304, 512)
    assert round_filters(112, 1.1) == 120 and round_filters(32, 1.1) == 32
    # pycls MODEL_ZOO EfficientNet B0-B5: GF / M params / M acts (at 224, 240, 260, 300, 380, 456)
    pycls = {"b0": (0.4, 5.3, 6.7), "b1": (0.7, 7.8, 10.9), "b2": (1.0, 9.1, 13.8), "b3": (1.8, 12.2, 23.8),
             "b4": (4.4, 19.3, 49.5), "b5": (10.3, 30.4, 98.9)}
    for b, (gf, mp, ma) in pycls.items():
        cx = complexity(f"efficientnet_{b}")
        assert (round(cx["flops"] / 1e9, 1), round(cx["params"] / 1e6, 1), round(cx["acts"] / 1e6, 1)) == (gf, mp, ma)
    with pytest.raises(ValueError, match="odd"):
        EffNetSpec(ds=(1,), ws=(8,), exp_rs=(1,), ks=(4,), ss=(1,))


def test_efficientnet_rs_slow_resolution_scaling():
    res = {b: get_spec(f"efficientnet_{b}") for b in ("b0", "b7")}
    assert get_spec("efficientnet_rs_b7") == res["b7"]  # same widths and depths
    rs = [get_entry(f"efficientnet_rs_b{i}").resolution for i in range(8)]
    orig = [get_entry(f"efficientnet_b{i}").resolution for i in range(8)]
    assert rs == [224, 232, 240, 256, 288, 320, 344, 368] and orig == [224, 240, 260, 300, 380, 456, 528, 600]
    assert all(r % 8 == 0 and r <= o for r, o in zip(rs, orig)) and rs_resolution(600) == 368
    # the log-resolution growth is halved
    assert np.isclose(np.log(rs[7] / 224), 0.5 * np.log(600 / 224), atol=0.01)
    assert [randaugment_magnitude(r) for r in (160, 224, 232, 320, 321)] == [10, 10, 15, 15, 20]


def test_zoo_names():
    names = list_models()
    for n in ["resnet_50", "resnet_200", "resnet_d_101", "resnet_rs_50", "resnet_rs_420", "efficientnet_b7",
              "efficientnet_rs_b0"]:
        assert n in names


# ---- Keras models ---- #


@pytest.fixture(scope="module")
def keras_mod():
    import keras

    return keras


@pytest.mark.parametrize("name", ["resnet_50", "resnet_d_50", "resnet_rs_50", "efficientnet_b0"])
def test_models_run_at_small_resolution(name, keras_mod):
    from regnet_tf.applications import build_model, preprocess_input

    model = build_model(name, input_shape=(64, 64, 3), classes=10)
    x = preprocess_input(np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)))
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 10) and np.allclose(y.sum(-1), 1, atol=1e-5)
    feats = build_model(name, include_top=False, input_shape=(None, None, 3))
    assert feats.predict(x, verbose=0).shape[1:3] == (2, 2)


TINY_RS = ResNetSpec.from_depth(26, width=0.25, drop_path_rate=0.5, dropout=0.0, zero_init_last_bn=False)
TINY_EN = EffNetSpec(ds=(1, 2), ws=(16, 24), exp_rs=(1, 6), ks=(3, 5), ss=(1, 2), stem_w=16, head_w=64,
                     drop_path_rate=0.5, dropout=0.0)


# stochastic depth rates: ResNet-RS per stage 0.5 x (i + 1) / 5, two blocks each; EfficientNet per block
# 0.5 x b / B, and only blocks with an identity shortcut have one (here the third of three blocks: 0.5 x 2 / 3)
DROP_RATES = {"resnet_rs": [0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5], "efficientnet": [1 / 3]}


@pytest.mark.parametrize("spec,kind", [(TINY_RS, "resnet_rs"), (TINY_EN, "efficientnet")],
                         ids=["resnet_rs", "efficientnet"])
def test_stochastic_depth_only_in_training_and_round_trip(spec, kind, tmp_path, keras_mod):
    from regnet_tf.applications import build_model

    keras_mod.utils.set_random_seed(0)
    model = build_model(spec, input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == complexity(spec, 32, classes=5)["params"]
    drops = [layer for layer in model.layers if layer.name.endswith("_drop_path")]
    np.testing.assert_allclose([d.rate for d in drops], DROP_RATES[kind])
    ones = np.ones((256, 2, 2, 4), "float32")
    for d in drops:
        # on the residual branch, right before the add
        add = model.get_layer(d.name.replace("_drop_path", "_add"))
        assert d.name in {t._keras_history[0].name for t in add.input}
        # per sample: the whole branch kept (scaled by 1 / (1 - rate)) or dropped; only in training
        assert d.noise_shape == (None, 1, 1, 1)
        y = np.asarray(d(ones, training=True)).reshape(256, -1)
        assert (y == y[:, :1]).all()
        np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - d.rate)], rtol=1e-6)  # both occur (seeded)
        np.testing.assert_array_equal(d(ones, training=False), ones)
    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))  # inference: deterministic
    same = build_model(spec.replace(drop_path_rate=0.0), input_shape=(32, 32, 3), classes=5)
    assert not any(layer.name.endswith("_drop_path") for layer in same.layers)
    path = str(tmp_path / "m.keras")
    model(x, training=True)  # updates the BN statistics: the saved model must carry them
    model.save(path)
    np.testing.assert_array_equal(keras_mod.models.load_model(path)(x, training=False), model(x, training=False))


def test_resnet_block_structure(keras_mod):
    from regnet_tf.applications import build_model

    rs = build_model("resnet_rs_50", input_shape=(64, 64, 3))
    names = {layer.name for layer in rs.layers}
    assert {"stem_conv1", "stem_conv2", "stem_conv3", "stem_pool_conv", "s2_b1_proj_pool", "s1_b1_proj"} <= names
    assert "s1_b1_proj_pool" not in names  # ResNet-D average pool only on strided blocks (TF1)
    assert rs.get_layer("s2_b1_b").strides == (2, 2) and rs.get_layer("s2_b1_a").strides == (1, 1)
    assert rs.get_layer("s1_b1_se_reduce").filters == 64  # SE on the 256-wide output, ratio 0.25
    assert rs.get_layer("s1_b1_se_act").activation.__name__ == "relu"
    assert not rs.get_layer("s1_b1_c_bn").gamma.numpy().any()  # zero-init of the last BN (TF1)
    assert rs.get_layer("top_dropout").rate == 0.25
    plain = build_model("resnet_50", input_shape=(64, 64, 3))
    pnames = {layer.name for layer in plain.layers}
    assert {"stem_conv", "stem_pool"} <= pnames and not any("_se_" in n for n in pnames)
    swish = build_model(ResNetSpec.from_depth(26, width=0.25, activation="silu"), input_shape=(32, 32, 3))
    assert swish.get_layer("s1_b1_a_act").activation.__name__ == "silu"
    assert swish.get_layer("s1_b1_se_act").activation.__name__ == "relu"  # SE keeps ReLU (TF references)


def test_resnet_rs_model_garden_published_totals(keras_mod):
    # Model Garden's published "Params (M)" count every weight, BN moving statistics included.
    from regnet_tf.applications import build_model

    for depth, total in [(50, 35.7), (101, 63.7)]:
        with keras_mod.StatelessScope(initialize_variables=False):  # no initial values: only shapes are counted
            model = build_model(f"resnet_rs_{depth}", input_shape=(64, 64, 3))
        assert round(model.count_params() / 1e6, 1) == total
        keras_mod.backend.clear_session()


@pytest.mark.parametrize("b", range(8))
def test_efficientnet_params_equal_keras_applications(b, keras_mod):
    from regnet_tf.applications import build_model

    with keras_mod.StatelessScope(initialize_variables=False):  # no initial values: only shapes are counted
        theirs = getattr(keras_mod.applications, f"EfficientNetB{b}")(weights=None)
    n = sum(int(np.prod(w.shape)) for w in theirs.trainable_weights)
    assert n == complexity(f"efficientnet_b{b}")["params"]
    if b == 0:
        with keras_mod.StatelessScope(initialize_variables=False):
            ours = build_model("efficientnet_b0")
        assert sum(int(np.prod(w.shape)) for w in ours.trainable_weights) == n
