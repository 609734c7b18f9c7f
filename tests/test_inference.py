"""regnet_tf.inference: BN folded into convolutions and grouped convolutions split, on tiny models of each family
(RegNetY: groups > 1 + SE; EfficientNet: depthwise + SE; ResNet-RS: deep stem, pool conv, avg-pool shortcut) with
random BN statistics, hand-made graphs for the cases that must not fold, nested and subclassed models."""

import functools

import numpy as np
import pytest
import tensorflow as tf

import keras
from regnet_tf import AnyNetSpec, EffNetSpec, ResNetSpec, layers
from regnet_tf.applications import build_model
from regnet_tf.inference import fold_batch_norm, freeze, split_grouped_convs

SPECS = {
    "regnety": AnyNetSpec(ds=(1, 1), ws=(8, 16), gs=(4, 4), block="Y", se_ratio=0.25, stem_w=8),
    "efficientnet": EffNetSpec(ds=(1, 2), ws=(8, 16), exp_rs=(1, 2), ks=(3, 5), ss=(1, 2), stem_w=8, head_w=32),
    "resnet_rs": ResNetSpec.from_depth(26, width=0.125, variant="rs").replace(ds=(1, 1), ws=(8, 16), ss=(1, 2)),
}
CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def all_layers(model):
    """The layers of `model` and of the models nested in it."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def randomize_bn(model, seed=0):
    """Non-trivial BN gamma, beta, moving mean and variance, so that a wrong fold shows."""
    rng = np.random.default_rng(seed)
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.normal(0, 0.5, n),
                      "moving_mean": rng.normal(0, 0.5, n), "moving_variance": rng.uniform(0.5, 2.0, n)}
            for name, value in values.items():
                if getattr(layer, name, None) is not None:
                    getattr(layer, name).assign(value.astype("float32"))
    return model


def build(family, **kwargs):
    keras.utils.set_random_seed(0)
    kwargs = {"classes": 5, "classifier_activation": None, **kwargs}
    return randomize_bn(build_model(SPECS[family], input_shape=(32, 32, 3), **kwargs))


@functools.lru_cache(maxsize=None)
def tiny(family):
    """`build(family)`, once per module (no test changes the model: the first checks it)."""
    return build(family)


def images(seed=1, shape=(2, 32, 32, 3)):
    return np.random.default_rng(seed).normal(0, 1, shape).astype("float32")


def assert_close(model, reference, x, rtol=1e-5):
    out, ref = np.asarray(model(x)), np.asarray(reference(x))
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() / np.abs(ref).max() <= rtol


def bn_after_conv(model):
    """Names of the BNs of `model` (and nested models) whose input a convolution computes."""
    return [layer.name for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
            and isinstance(layer.input._keras_history.operation, CONVS)]


def count(model, kind):
    return sum(isinstance(layer, kind) for layer in all_layers(model))


def grouped_conv_ops(model):
    """The Conv2D ops of `model`'s graph whose filter has fewer input channels than their input (grouped)."""
    fn = tf.function(lambda x: model(x), autograph=False)
    graph = fn.get_concrete_function(tf.TensorSpec((2, 32, 32, 3))).graph
    return [op.name for op in graph.get_operations()
            if op.type == "Conv2D" and op.inputs[0].shape[-1] != op.inputs[1].shape[-2]]


def saved_and_loaded(model, tmp_path):
    path = str(tmp_path / "m.keras")
    model.save(path)
    return keras.models.load_model(path)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_fold_batch_norm_of_each_family(family):
    model = tiny(family)
    weights = model.get_weights()
    folded = fold_batch_norm(model)
    assert_close(folded, model, images())
    assert bn_after_conv(model) and not bn_after_conv(folded)
    assert count(folded, CONVS) == count(model, CONVS)
    assert count(folded, keras.layers.DepthwiseConv2D) == count(model, keras.layers.DepthwiseConv2D)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights, strict=True))  # unchanged
    assert not {id(v) for v in model.variables} & {id(v) for v in folded.variables}
    assert folded.name == model.name and folded.output_names == model.output_names
    assert [layer.name for layer in folded.layers[:1]] == ["input_layer"]  # Keras's clone_model would rename it
    assert [x.shape for x in folded.outputs] == [x.shape for x in model.outputs]
    conv = folded.get_layer("stem_conv" if family != "resnet_rs" else "stem_conv1")
    assert conv.use_bias and type(conv) is layers.Conv2D


def test_folded_and_split_models_round_trip_through_keras_files(tmp_path):
    model = tiny("regnety")
    x = images()
    folded = fold_batch_norm(model)
    np.testing.assert_array_equal(saved_and_loaded(folded, tmp_path)(x), folded(x))
    split = split_grouped_convs(folded)
    np.testing.assert_array_equal(saved_and_loaded(split, tmp_path)(x), split(x))
    assert_close(split, model, x)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_freeze_predicts_as_the_model_with_constant_weights(family):
    """freeze: a function of the folded model, every weight a graph constant, any batch; a snapshot of the weights;
    a wrong input size or an open one is one clear error."""
    folded = fold_batch_norm(tiny(family))
    predict = freeze(folded)
    for n in (1, 3):
        x = images(shape=(n, 32, 32, 3))
        np.testing.assert_allclose(predict(x).numpy(), folded(x), rtol=1e-5, atol=1e-6)
    before = predict(x).numpy()
    folded.set_weights([np.zeros_like(w) for w in folded.get_weights()])  # (the folded copy: its own variables)
    np.testing.assert_array_equal(predict(x).numpy(), before)  # a snapshot
    ops = {op.type for op in predict.function.graph.get_operations()}  # no variable: nothing is read per call
    assert "ReadVariableOp" not in ops and "VarHandleOp" not in ops and not predict.function.variables
    # each Swish (EfficientNet's) is x * sigmoid(x) on the conv's output, without tf.nn.silu's IdentityN and beta
    sigmoids = [op for op in predict.function.graph.get_operations() if op.type == "Sigmoid"]
    assert "IdentityN" not in ops and sigmoids and all(op.inputs[0].op.type == "BiasAdd" for op in sigmoids)
    with pytest.raises(ValueError, match=r"frozen for inputs of shape \(None, 32, 32, 3\); got \(1, 40, 40, 3\): resize"):
        predict(images(shape=(1, 40, 40, 3)))
    if family == "regnety":
        open_size = build_model(SPECS[family], input_shape=(None, None, 3), weights=None)
        with pytest.raises(ValueError, match=r"freeze needs the input size: .* build the model with input_shape"):
            freeze(open_size)


def test_plain_swish_rewrites_only_silu_with_beta_1():
    from regnet_tf.inference import _function_of, _plain_swish

    x = tf.constant(np.linspace(-6, 6, 24, dtype=np.float32).reshape(2, 12))
    f = tf.function(lambda x: tf.nn.silu(x) + tf.nn.silu(x, beta=2.0), autograph=False).get_concrete_function(x)
    graph_def = f.graph.as_graph_def()
    assert _plain_swish(graph_def) == 1
    assert [n.op for n in graph_def.node].count("IdentityN") == 1  # beta = 2: kept as it was
    op_of = {n.name: n.op for n in graph_def.node}
    assert [op_of[n.input[0]] for n in graph_def.node if n.op == "Sigmoid"] == ["Placeholder", "Mul"]  # x; 2 * x
    g = _function_of(graph_def, f.inputs, f.outputs)
    np.testing.assert_allclose(g(x)[0], x * tf.sigmoid(x) + x * tf.sigmoid(2 * x), rtol=1e-6)


def test_split_grouped_convs():
    model = tiny("regnety")
    split = split_grouped_convs(model)
    assert_close(split, model, images())
    grouped = [layer for layer in all_layers(split) if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    assert len(grouped) == 2 and all(layer.split_groups for layer in grouped)
    assert not any(layer.split_groups for layer in all_layers(model) if isinstance(layer, layers.Conv2D))
    assert len(grouped_conv_ops(model)) == 2 and grouped_conv_ops(split) == []
    for a, b in zip(split.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not {id(v) for v in model.variables} & {id(v) for v in split.variables}


def test_only_a_bn_whose_conv_output_is_its_alone_folds():
    """Keras Conv2D with a bias -> BN(center=False); depthwise (multiplier 2) -> BN(scale=False); a conv whose
    output also feeds an Add -> BN (kept); a BN after a pooling (kept); a BN that is a model output (kept)."""
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((8, 8, 4), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", use_bias=True, bias_initializer="random_normal", name="k")(x)
    x = keras.layers.BatchNormalization(center=False, name="k_bn")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = layers.BatchNormalization(scale=False, name="dw_bn")(x)
    c = layers.Conv2D(12, 1, groups=3, name="shared")(x)
    x = keras.layers.Add(name="add")([c, layers.BatchNormalization(name="shared_bn")(c)])
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    out = layers.BatchNormalization(name="pool_bn")(x)
    last = layers.BatchNormalization(name="last_bn")(layers.Conv2D(3, 1, name="last")(out))
    model = randomize_bn(keras.Model(inputs, [out, last], name="handmade"))
    folded = fold_batch_norm(model)
    kept = sorted(layer.name for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert kept == ["last_bn", "pool_bn", "shared_bn"]
    assert folded.output_names == model.output_names == ["pool_bn", "last_bn"]
    x = images(shape=(2, 8, 8, 4))
    for a, b in zip(folded(x), model(x)):
        assert np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max() <= 1e-5


def test_nested_models_fold():
    backbone = build("regnety", include_top=False)
    model = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)], name="clf")
    folded = fold_batch_norm(model)
    assert isinstance(folded, keras.Sequential) and folded.name == "clf"
    assert bn_after_conv(model) and not bn_after_conv(folded)
    assert_close(folded, model, images())
    inputs = keras.Input((32, 32, 3), name="image")  # a Functional model calling the Sequential one
    outer = keras.Model(inputs, keras.layers.Activation("softmax", name="probs")(model(inputs)), name="outer")
    folded = fold_batch_norm(outer)
    assert not bn_after_conv(folded) and folded.output_names == ["probs"]
    assert_close(folded, outer, images())


def test_mixed_precision_models_keep_their_policies():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build("regnety")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    folded = fold_batch_norm(model)
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert all(policies[layer.name] == layer.dtype_policy.name for layer in folded.layers[1:])  # not InputLayer
    assert policies["stem_conv"] == "mixed_float16" and policies["predictions"] == "float32"
    assert folded.get_layer("stem_conv").kernel.dtype == "float32"
    assert_close(folded, model, images(), rtol=1e-2)


def test_subclassed_models_are_refused():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    for fn in (fold_batch_norm, split_grouped_convs):
        with pytest.raises(ValueError, match=f"^{fn.__name__} needs a Functional or Sequential Keras model; "
                                             "got Subclassed$"):
            fn(Subclassed())
