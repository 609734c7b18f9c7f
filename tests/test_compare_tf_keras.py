"""Cross-checks against tf_keras.applications (Keras 2), from the `compare` extra. Skipped when it is absent."""

import numpy as np
import pytest

from regnet_tf import complexity

tf_keras = pytest.importorskip("tf_keras")


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
        values = []
        for w in layer.weights:
            v = rng.normal(0, 0.1, w.shape).astype("float32")
            if "variance" in w.path or "gamma" in w.path:
                v = rng.uniform(0.5, 1.5, w.shape).astype("float32")
            values.append(v)
        layer.set_weights(values)
        other = head if layer.name == "predictions" else by_name[_tf_keras_name(layer.name, prefix, letter)]
        other.set_weights(values)
        n += 1
    assert n == len([layer for layer in theirs.layers if layer.weights])
    x = rng.normal(0, 1, (2, 225, 225, 3)).astype("float32")
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-3, atol=1e-3)
    tf_keras.backend.clear_session()
