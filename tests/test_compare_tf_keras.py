"""Cross-checks against tf_keras.applications (Keras 2), from the `compare` extra. Skipped when it is absent."""

import numpy as np
import pytest

from regnet_tf import complexity

tf_keras = pytest.importorskip("tf_keras")


def _random_weights(layer, rng):
    """Random values for a layer's weights; BN scales and variances kept in [0.5, 1.5]."""
    return [(rng.uniform(0.5, 1.5, w.shape) if ("variance" in w.name or "gamma" in w.name)
             else rng.normal(0, 0.1, w.shape)).astype("float32") for w in layer.weights]


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("factory,name", [("RegNetX002", "regnetx_002"), ("RegNetY002", "regnety_002"),
                                          ("RegNetX080", "regnetx_080"), ("RegNetY016", "regnety_016")])
def test_trainable_params_equal_tf_keras(factory, name):
    # Same architecture (up to padding details, which hold no weights): the same trainable parameter count.
    # RegNetX080 also checks the stage-1 group-width clamp (tf_keras gets groups=0 -> 1 by accident).
    theirs = getattr(tf_keras.applications, factory)(weights=None, input_shape=(224, 224, 3))
    assert _trainable(theirs) == complexity(name)["params"]
    tf_keras.backend.clear_session()


def test_stage_widths_equal_tf_keras_tables():
    # tf_keras hard-codes the stage tables; ours are generated from (d, w0, wa, wm, g). Compare widths.
    from regnet_tf import to_anynet

    theirs = tf_keras.applications.RegNetY040(weights=None, input_shape=(224, 224, 3))
    widths = [layer.filters for layer in theirs.layers if layer.name.endswith("_conv_1x1_2") and "Block_0" in layer.name]
    assert tuple(widths) == to_anynet("regnety_040").ws
    tf_keras.backend.clear_session()


_TF_KERAS_SUFFIX = {"a": "conv_1x1_1", "a_bn": "conv_1x1_1_bn", "b": "conv_3x3", "b_bn": "conv_3x3_bn",
                    "se_reduce": "squeeze_and_excite_squeeze", "se_expand": "squeeze_and_excite_excite",
                    "c": "conv_1x1_2", "c_bn": "conv_1x1_2_bn", "proj": "skip_1x1", "proj_bn": "skip_bn"}


def _tf_keras_name(ours, prefix, block_letter):
    if ours in ("stem_conv", "stem_conv_bn"):
        return f"{prefix}_stem_{'conv' if ours == 'stem_conv' else 'bn'}"
    stage, block, part = ours.split("_", 2)
    return f"{prefix}_Stage_{int(stage[1:]) - 1}_{block_letter}Block_{int(block[1:]) - 1}_{_TF_KERAS_SUFFIX[part]}"


@pytest.mark.parametrize("factory,name", [("RegNetX002", "regnetx_002"), ("RegNetY002", "regnety_002")])
def test_numerically_equal_to_tf_keras_with_the_same_weights(factory, name):
    # tf_keras pads strided convs "same"; on odd sizes (225 -> 113 -> 57 -> 29 -> 15) that is symmetric, so with
    # the same weights both implementations must compute the same function. An independent oracle for the X and
    # Y blocks, the stem, SE and the shortcut wiring.
    from regnet_tf.applications import build_model

    ours = build_model(name, input_shape=(225, 225, 3), classifier_activation=None)
    theirs = getattr(tf_keras.applications, factory)(weights=None, input_shape=(225, 225, 3),
                                                     include_preprocessing=False)
    prefix, letter = factory.lower(), factory[6]
    by_name = {layer.name: layer for layer in theirs.layers}
    head = [layer for layer in theirs.layers if layer.name.endswith("head_dense")][0]
    rng = np.random.default_rng(0)
    n = 0
    for layer in ours.layers:
        if not layer.weights:
            continue
        values = _random_weights(layer, rng)
        layer.set_weights(values)
        other = head if layer.name == "predictions" else by_name[_tf_keras_name(layer.name, prefix, letter)]
        other.set_weights(values)
        n += 1
    assert n == len([layer for layer in theirs.layers if layer.weights])
    x = rng.normal(0, 1, (2, 225, 225, 3)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-3, atol=1e-3)
    tf_keras.backend.clear_session()


@pytest.fixture(scope="module")
def resnet_rs_50_of_tf_keras():
    """tf_keras's ResNetRS50 at 160 px: (its trainable parameters, those of one non-first block of each stage)."""
    theirs = tf_keras.applications.ResNetRS50(weights=None, input_shape=(160, 160, 3))
    per_block = {}  # (block group, block) -> trainable parameters
    for layer in theirs.layers:
        group, _, rest = layer.name.partition("__block_")
        if group.startswith("BlockGroup") and rest:
            key = (int(group[len("BlockGroup"):]), int(rest.split("_")[0]))
            per_block[key] = per_block.get(key, 0) + _trainable(layer)
    groups = sorted({g for g, _ in per_block})
    repeated = {}
    for g in groups:  # a group's blocks after its first (which projects) are all alike: one block's count
        counts = {n for (gg, b), n in per_block.items() if gg == g and b > 0}
        assert len(counts) == 1, (g, counts)
        repeated[g] = counts.pop()
    yield _trainable(theirs), [repeated[g] for g in groups]
    tf_keras.backend.clear_session()


@pytest.mark.parametrize("depth", [50, 101, 152, 200])
def test_resnet_rs_trainable_params_equal_tf_keras(depth, resnet_rs_50_of_tf_keras):
    # tf_keras's ResNetRS{depth} is ResNetRS50 with the block repeats of its BLOCK_ARGS[depth] (ResNetRS(depth)
    # reads nothing else of the depth that holds weights): its count is ResNetRS50's plus the extra blocks', without
    # building the 100-200-layer-deep models (~45 s of the suite)
    from tf_keras.src.applications import resnet_rs

    params_50, per_block = resnet_rs_50_of_tf_keras
    theirs, base = resnet_rs.BLOCK_ARGS[depth], resnet_rs.BLOCK_ARGS[50]
    assert [a["input_filters"] for a in theirs] == [a["input_filters"] for a in base]
    assert len(per_block) == len(base)
    expected = params_50 + sum((a["num_repeats"] - b["num_repeats"]) * n for a, b, n in zip(theirs, base, per_block))
    assert expected == complexity(f"resnet_rs_{depth}")["params"]


_RS_SUFFIX = {"__conv_1": "a", "_batch_norm_1": "a_bn", "__conv_2": "b", "__batch_norm_2": "b_bn", "__conv_3": "c",
              "__batch_norm_3": "c_bn", "__se_se_reduce": "se_reduce", "__se_se_expand": "se_expand",
              "__projection_conv": "proj", "__projection_batch_norm": "proj_bn"}
_RS_STEM = {"conv_1": "stem_conv1", "batch_norm_1": "stem_conv1_bn", "conv_2": "stem_conv2",
            "batch_norm_2": "stem_conv2_bn", "conv_3": "stem_conv3", "batch_norm_3": "stem_conv3_bn",
            "conv_4": "stem_pool_conv", "batch_norm_4": "stem_pool_conv_bn"}


def _rs_name(theirs):
    """tf_keras ResNet-RS layer name -> ours (BlockGroup{i+1}__block_{j-1}... -> s{i}_b{j}_...)."""
    import re

    if theirs == "predictions":
        return theirs
    m = re.fullmatch(r"stem_\d+_stem_(.*)", theirs)
    if m:
        return _RS_STEM[m.group(1)]
    m = re.fullmatch(r"BlockGroup(\d)__block_(\d+)_(.*)", theirs)
    return f"s{int(m.group(1)) - 1}_b{int(m.group(2)) + 1}_{_RS_SUFFIX['_' + m.group(3)]}"


def test_resnet_rs_numerically_equal_to_tf_keras_with_the_same_weights():
    # Both pad symmetrically (fixed padding) and average-pool "same" on the ResNet-D shortcut, so any input size
    # works: an independent oracle for the deep stem, the bottleneck, SE on the output, ResNet-D shortcuts.
    from regnet_tf.applications import build_model

    ours = build_model("resnet_rs_50", input_shape=(97, 97, 3), classifier_activation=None)
    theirs = tf_keras.applications.ResNetRS50(weights=None, input_shape=(97, 97, 3), include_preprocessing=False,
                                              classifier_activation=None)
    rng = np.random.default_rng(1)
    pairs = 0
    for layer in theirs.layers:
        if not layer.weights:
            continue
        mine = ours.get_layer(_rs_name(layer.name))
        values = _random_weights(mine, rng)
        mine.set_weights(values)
        layer.set_weights(values)
        pairs += 1
    assert pairs == len([layer for layer in ours.layers if layer.weights])
    x = rng.normal(0, 1, (2, 97, 97, 3)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=2e-3, atol=2e-3)
    tf_keras.backend.clear_session()
