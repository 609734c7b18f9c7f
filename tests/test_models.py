"""Keras models: builder = counter for every model, shapes, the applications API, serialization, the grouped conv."""

import os

import numpy as np
import pytest
import tensorflow as tf

import keras
from regnet_tf import AnyNetSpec, RegNetSpec, complexity, feature_info, list_models
from regnet_tf import applications as apps
from regnet_tf.applications import build_model, preprocess_input
from regnet_tf.layers import Conv2D, DepthwiseConv2D, MaxPool2D

# Tiny specs that cover every block type, both stems, SE, the head conv, Z's missing shortcuts, dropout, 5 stages
# and Swish.
TINY = {
    "X": AnyNetSpec(ds=(1, 2), ws=(16, 32), gs=(8, 8), stem_w=8),
    "Y": AnyNetSpec(ds=(1, 2), ws=(16, 32), gs=(8, 8), block="Y", se_ratio=0.25, stem_w=8),
    "Z": AnyNetSpec(ds=(2, 2), ws=(8, 16), bs=(4.0, 4.0), gs=(8, 8), block="Z", se_ratio=0.25,
                    activation="silu", head_w=64, stem_w=8),
    "R": AnyNetSpec(ds=(1, 1), ws=(16, 32), bs=(0.5, 0.5), block="R", stem="res", stem_w=8),
    "V": AnyNetSpec(ds=(1, 1), ws=(8, 16), block="V", stem_w=8),
    "VR": AnyNetSpec(ds=(1, 2), ws=(8, 16), block="VR", stem_w=8, dropout=0.2),
    # five stages and Swish in an X block (the RegNet paper's Figures 10 and 20)
    "X5": AnyNetSpec(ds=(1, 1, 1, 1, 1), ws=(8, 16, 16, 32, 32), gs=(8, 8, 8, 8, 8), activation="silu", stem_w=8),
}


def n_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


_FREE = (keras.layers.InputLayer, keras.layers.Activation, keras.layers.Add, keras.layers.Multiply,
         keras.layers.Dropout, keras.layers.GlobalAveragePooling2D, keras.layers.Normalization)


def keras_complexity(model):
    """flops, params and acts read off the built model's layers (kernel shapes, biases, output shapes), by the
    counter's conventions: an independent check of `regnet_tf.complexity`. Fails on a layer type it does not know."""
    flops = params = acts = 0
    for layer in model.layers:
        out = tuple(layer.output.shape[1:])
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            kernel = int(np.prod(layer.kernel.shape))  # grouped: (k, k, C_in / groups, C_out); depthwise: (k, k, C, 1)
            bias = out[-1] if layer.use_bias else 0
            positions = int(np.prod(out[:-1]))  # h x w (1 for the dense layer)
            flops += kernel * positions + bias * positions
            params += kernel + bias
            acts += int(np.prod(out))
        elif isinstance(layer, keras.layers.BatchNormalization):
            params += 2 * out[-1]
        elif isinstance(layer, (MaxPool2D, keras.layers.AveragePooling2D)):
            acts += int(np.prod(out))
        else:
            assert isinstance(layer, _FREE), f"the walker does not know {type(layer).__name__} ({layer.name})"
            assert not layer.trainable_weights, layer.name
    assert params == n_trainable(model)
    return {"flops": flops, "params": params, "acts": acts}


def images(n=2, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _by_architecture():
    """{first registered name: [names]}: the zoo grouped by spec with the stage depths left out (ResNet-RS 50-152, 200
    and 270, 350 and 420; EfficientNet-B and -RS of one width; ...). A model whose spec differs from another's only in
    its depths builds the same blocks from the same code, one more or fewer per stage."""
    import dataclasses

    from regnet_tf.zoo import get_spec

    groups = {}
    for name in list_models():
        spec = get_spec(name)
        depths = {"ds": tuple(1 for _ in spec.ds)} if hasattr(spec, "ds") else {}  # a RegNet's d is its own
        key = repr(dataclasses.replace(spec, **depths))
        groups.setdefault(key, []).append(name)
    return {names[0]: names for names in groups.values()}


ARCHITECTURES = _by_architecture()


def test_every_zoo_model_has_an_architecture_that_is_built_and_counted():
    assert sorted(n for names in ARCHITECTURES.values() for n in names) == sorted(list_models())
    assert {"resnet_rs_50", "resnet_rs_350", "efficientnet_b7", "regnety_320"} <= set(ARCHITECTURES)
    assert "resnet_rs_420" in ARCHITECTURES["resnet_rs_350"] and len(ARCHITECTURES) < len(list_models())


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_built_model_equals_counter_for_every_zoo_model(name):
    # flops, params and acts of the Keras layers = the analytic count, for one model of each architecture
    # (ARCHITECTURES); at 65 px (odd sizes check the strides' (h - 1) // s + 1 and the ResNet-D average pool's "same"
    # padding). Built in a StatelessScope that leaves the
    # variables uninitialized (no initial values drawn): the count reads shapes only, and builds ~5x faster.
    with keras.StatelessScope(initialize_variables=False):
        model = build_model(name, input_shape=(65, 65, 3))
    assert keras_complexity(model) == complexity(name, 65)
    assert model.name == name and model.output_shape == (None, 1000)
    # the feature pyramid (build_backbone's outputs): each level's layer has feature_info's shape at 65 px, the
    # strides strictly increase, and the last level is the map the classifier pools
    infos = feature_info(name, 65)
    for info in infos:
        assert model.get_layer(info.layer).output.shape == (None, *info.shape), info
        assert info.stride == 2 ** info.level and info.name == f"P{info.level}"
    strides = [info.stride for info in infos]
    assert strides == sorted(set(strides)) and len(strides) >= 4, strides
    assert model.get_layer("avg_pool").input.shape[1:3] == infos[-1].shape[:2]


@pytest.mark.parametrize("block", sorted(TINY))
def test_tiny_specs_shapes_params_and_save_load(block, tmp_path):
    spec = TINY[block]
    model = build_model(spec, input_shape=(64, 64, 3), classes=10)
    assert keras_complexity(model) == complexity(spec, 64, classes=10)
    x = preprocess_input(images())
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 10) and np.allclose(y.sum(-1), 1, atol=1e-5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), y)
    assert [w.name for w in loaded.weights] == [w.name for w in model.weights]


@pytest.mark.parametrize("name", ["regnetx_002", "regnety_002", "regnetz_005"])
def test_zoo_models_run_at_64px_and_round_trip(name, tmp_path):
    model = build_model(name, input_shape=(64, 64, 3))
    x = preprocess_input(images())
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 1000)
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    np.testing.assert_array_equal(keras.models.load_model(path).predict(x, verbose=0), y)


def test_block_structure():
    model = build_model("regnety_002", input_shape=(64, 64, 3))
    names = {layer.name for layer in model.layers}
    # Y block: SE after the 3x3 of width round(0.25 * block input) (stem 32 -> 8), projection on stride 2
    assert {"s1_b1_a", "s1_b1_b", "s1_b1_se_reduce", "s1_b1_c", "s1_b1_proj", "s1_b1_add", "s1_b1_out"} <= names
    assert model.get_layer("s1_b1_se_reduce").filters == 8
    assert model.get_layer("s1_b1_b").groups == 3  # 24 / 8
    assert model.get_layer("s1_b1_b").strides == (2, 2) and model.get_layer("s1_b1_a").strides == (1, 1)
    assert "s4_b2_proj" not in names and "s4_b2_add" in names  # identity shortcut inside a stage
    # no activation after the last BN: the block's add takes c_bn directly
    add = model.get_layer("s1_b1_add")
    assert {t._keras_history[0].name for t in add.input} == {"s1_b1_proj_bn", "s1_b1_c_bn"}
    z = build_model("regnetz_005", input_shape=(64, 64, 3))
    znames = {layer.name for layer in z.layers}
    assert not any(n.endswith("_proj") for n in znames)  # Z: no projection shortcuts
    assert "s1_b1_add" not in znames and "s2_b2_add" in znames and "s2_b2_out" not in znames  # linear output
    assert z.get_layer("s2_b2_a").filters == 160  # inverted bottleneck: 4 x 40
    assert z.get_layer("s2_b2_a_act").activation.__name__ == "silu"
    assert "head_conv" in znames and z.get_layer("head_conv").filters == 1024


def test_symmetric_padding_matches_explicit_zero_padding():
    x = tf.random.normal((2, 8, 8, 4), seed=1)
    conv = Conv2D(6, 3, strides=2)
    y = conv(x)
    assert y.shape == (2, 4, 4, 6)
    ref = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), conv.kernel, 2, "VALID")
    np.testing.assert_allclose(y, ref, atol=1e-6)
    same = tf.nn.conv2d(x, conv.kernel, 2, "SAME")  # Keras/TF "same" pads (0, 1): different values
    assert not np.allclose(y, same, atol=1e-3)
    assert Conv2D(6, 3, strides=2).compute_output_shape((None, 7, 9, 4)) == (None, 4, 5, 6)
    assert Conv2D(6, 1, strides=2)(tf.zeros((1, 7, 7, 4))).shape == (1, 4, 4, 6)


@pytest.mark.parametrize("k,stride,dilation", [(3, 1, 1), (5, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 1)])
def test_depthwise_padding_is_symmetric_and_stride_1_needs_no_pad_op(k, stride, dilation):
    """Symmetric padding (k - 1) // 2 * d on both sides; at stride 1 (odd k) inside the conv ("SAME"), no Pad op."""
    x = tf.random.normal((2, 9, 9, 4), seed=3)
    dw = DepthwiseConv2D(k, strides=stride, dilation_rate=dilation)
    y = dw(x)
    p = (k - 1) // 2 * dilation
    ref = tf.nn.depthwise_conv2d(tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]), dw.kernel, (1, stride, stride, 1),
                                 "VALID", dilations=(dilation, dilation))
    np.testing.assert_allclose(y, ref, atol=1e-5)
    assert dw.compute_output_shape(x.shape) == y.shape
    ops = {op.type for op in tf.function(dw).get_concrete_function(x).graph.get_operations()}
    assert ("Pad" in ops or "PadV2" in ops) == (stride > 1)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("groups", [1, 3, 12])
def test_grouped_conv_equals_split_reference_forward_and_gradients(stride, groups):
    x = tf.random.normal((2, 10, 10, 12), seed=2)
    conv = Conv2D(24, 3, strides=stride, groups=groups)
    conv.build(x.shape)

    def reference(x, kernel):  # one ordinary conv per group, concatenated
        xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        xs, ks = tf.split(xp, groups, axis=-1), tf.split(kernel, groups, axis=-1)
        return tf.concat([tf.nn.conv2d(a, k, stride, "VALID") for a, k in zip(xs, ks)], axis=-1)

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn()
            loss = tf.reduce_sum(y * tf.cos(y))
        return (y, *tape.gradient(loss, [x, conv.kernel.value]))

    ours = grads(lambda: conv(x))
    ref = grads(lambda: reference(x, conv.kernel.value))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # and the same numbers as Keras 3's own (XLA-compiled) grouped conv with the same kernel
    if stride == 1:
        keras_conv = keras.layers.Conv2D(24, 3, padding="same", groups=groups, use_bias=False)
        keras_conv.build(x.shape)
        keras_conv.kernel.assign(conv.kernel)
        np.testing.assert_allclose(keras_conv(x), ours[0], rtol=1e-4, atol=1e-4)


def test_grouped_conv_trains_in_a_compiled_step():
    model = build_model(TINY["X"], input_shape=(32, 32, 3), classes=4)
    model.compile("sgd", "sparse_categorical_crossentropy", jit_compile=False)
    x, y = preprocess_input(images(4, 32)), np.arange(4)
    before = model.get_layer("s1_b1_b").kernel.numpy().copy()
    model.train_on_batch(x, y)
    assert not np.allclose(model.get_layer("s1_b1_b").kernel.numpy(), before)


def test_initialization_follows_pycls():
    spec = AnyNetSpec(ds=(1,), ws=(256,), gs=(256,), zero_init_last_bn=True, stem_w=64)
    model = build_model(spec, input_shape=(32, 32, 3))
    k = model.get_layer("s1_b1_b").kernel.numpy()  # 3x3, 256 -> 256: std sqrt(2 / (9 * 256))
    assert abs(k.std() / np.sqrt(2 / (9 * 256)) - 1) < 0.02 and abs(k.mean()) < 1e-3
    d = model.get_layer("predictions")
    assert abs(d.kernel.numpy().std() / 0.01 - 1) < 0.02 and not d.bias.numpy().any()
    assert not model.get_layer("s1_b1_c_bn").gamma.numpy().any()  # zero-init of the last BN gamma
    assert (model.get_layer("s1_b1_a_bn").gamma.numpy() == 1).all()
    bn = model.get_layer("stem_conv_bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9


# ---- keras.applications API ---- #


def test_factories_exist_for_every_model():
    for name in list_models():
        factory = getattr(apps, apps.get_entry(name).factory)
        assert factory.__name__ in apps.__all__ and name in factory.__doc__
    from regnet_tf.applications import RegNetX002, RegNetY320, RegNetZ005, RegNetZ040  # noqa: F401


def test_classifier_activation_is_applied():
    x = preprocess_input(images())
    soft = apps.RegNetX002(input_shape=(64, 64, 3), classes=5)
    assert np.allclose(soft.predict(x, verbose=0).sum(-1), 1, atol=1e-5)
    logits = apps.RegNetX002(input_shape=(64, 64, 3), classes=5, classifier_activation=None)
    logits.set_weights(soft.get_weights())
    z = logits.predict(x, verbose=0)
    np.testing.assert_allclose(tf.nn.softmax(z), soft.predict(x, verbose=0), atol=1e-5)
    sig = apps.RegNetX002(input_shape=(64, 64, 3), classes=5, classifier_activation="sigmoid")
    sig.set_weights(soft.get_weights())
    np.testing.assert_allclose(sig.predict(x, verbose=0), tf.sigmoid(z), atol=1e-5)


def test_include_top_false_pooling_and_variable_size():
    fmap = apps.RegNetY002(include_top=False)
    assert fmap.input_shape == (None, None, None, 3) and fmap.output_shape == (None, None, None, 368)
    for size in (64, 96):
        assert fmap.predict(images(1, size), verbose=0).shape == (1, size // 32, size // 32, 368)
    avg = apps.RegNetY002(include_top=False, pooling="avg")
    mx = apps.RegNetY002(include_top=False, pooling="max")
    assert avg.output_shape == mx.output_shape == (None, 368)
    avg.set_weights(fmap.get_weights())
    mx.set_weights(fmap.get_weights())
    f = fmap.predict(images(1, 64), verbose=0)
    np.testing.assert_allclose(avg.predict(images(1, 64), verbose=0), f.mean((1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mx.predict(images(1, 64), verbose=0), f.max((1, 2)), rtol=1e-5, atol=1e-5)
    # with the top: GAP makes any size >= 32 work too
    top = apps.RegNetY002(input_shape=(None, None, 3), classes=3)
    assert top.predict(images(1, 96), verbose=0).shape == (1, 3)
    z = apps.RegNetZ005(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert z.output_shape == (None, 1024)  # the head conv belongs to the features


def test_default_input_shape_is_the_registered_resolution():
    assert apps.RegNetZ040().input_shape == (None, 256, 256, 3)
    assert apps.RegNetX002().input_shape == (None, 224, 224, 3)


def test_input_tensor_with_preceding_layers():
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(2.0)(inp)
    model = apps.RegNetX002(input_tensor=x, include_top=False, pooling="avg")
    assert model.inputs[0] is inp  # the source input, not the intermediate tensor
    plain = apps.RegNetX002(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    plain.set_weights(model.get_weights())
    a = images(1)
    np.testing.assert_allclose(model.predict(a, verbose=0), plain.predict(2 * a, verbose=0), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="must be a Keras tensor"):
        apps.RegNetX002(input_tensor=tf.zeros((1, 64, 64, 3)))


def test_custom_name_and_two_models_in_one_graph():
    a = apps.RegNetX002(include_top=False, pooling="avg", input_shape=(64, 64, 3), name="enc_a")
    b = apps.RegNetX002(include_top=False, pooling="avg", input_shape=(64, 64, 3), name="enc_b")
    assert a.name == "enc_a" and b.name == "enc_b"
    inp = keras.Input((64, 64, 3))
    both = keras.Model(inp, keras.layers.Concatenate()([a(inp), b(inp)]))
    assert both.output_shape == (None, 736)


def test_weights_from_a_local_file(tmp_path):
    model = apps.RegNetX002(input_shape=(64, 64, 3))
    path = str(tmp_path / "x002.weights.h5")
    model.save_weights(path)
    again = apps.RegNetX002(input_shape=(64, 64, 3), weights=path)
    x = preprocess_input(images())
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="classes` should be 1000"):
        apps.RegNetX002(weights=path, classes=10)
    apps.RegNetX002(weights=path, include_top=False, input_shape=(64, 64, 3))  # features only: any classes
    with pytest.raises(ValueError, match="no such weights file: .*missing.h5"):
        apps.RegNetX002(weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="path to a local weights file"):
        apps.RegNetX002(weights=3)


def test_input_shape_and_argument_errors():
    with pytest.raises(ValueError, match="tuple of three integers"):
        apps.RegNetX002(input_shape=(64, 64))
    with pytest.raises(ValueError, match="at least 32x32"):
        apps.RegNetX002(input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="`pooling` must be"):
        apps.RegNetX002(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="Unknown model 'regnetx_00'"):
        build_model("regnetx_00")
    gray = apps.RegNetX002(include_top=False, input_shape=(64, 64, 1))  # other channel counts without weights
    assert gray.predict(np.zeros((1, 64, 64, 1)), verbose=0).shape == (1, 2, 2, 368)


def test_preprocess_input():
    x = images()
    orig = x.copy()
    y = preprocess_input(x)
    np.testing.assert_array_equal(x, orig)  # not modified in place
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(y, (x / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(preprocess_input(tf.constant(x)), y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(preprocess_input(x.astype("uint8")), preprocess_input(x.astype("uint8").astype("float32")))
    with pytest.raises(ValueError, match="3 channels"):
        preprocess_input(np.zeros((1, 4, 4, 4)))
    inside = apps.RegNetX002(input_shape=(64, 64, 3), include_preprocessing=True)
    outside = apps.RegNetX002(input_shape=(64, 64, 3))
    outside.set_weights(inside.get_weights())
    assert n_trainable(inside) == n_trainable(outside)
    np.testing.assert_allclose(inside.predict(x, verbose=0), outside.predict(y, verbose=0), rtol=1e-4, atol=1e-6)


def test_regnet_spec_builds_directly():
    spec = RegNetSpec(d=6, w0=16, wa=12.0, wm=2.0, g=8, block="Y", se_ratio=0.25, num_stages=3)
    model = build_model(spec, input_shape=(32, 32, 3), classes=7)
    assert n_trainable(model) == complexity(spec, 32, classes=7)["params"]


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model(TINY["Y"].replace(stem="res"), input_shape=(32, 32, 3), classes=4)
        assert model.get_layer("s1_b1_b").compute_dtype == policy.split("_")[1]
        assert model.get_layer("s1_b1_b").kernel.dtype == "float32"  # float32 master weights
        model.compile("sgd", "sparse_categorical_crossentropy", jit_compile=False)
        loss = model.train_on_batch(preprocess_input(images(4, 32)), np.arange(4))
        assert np.isfinite(loss)
        assert model.predict(preprocess_input(images(2, 32)), verbose=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("stride", [1, 2])
def test_grouped_conv_fallback_gradients_equal_split_reference(stride):
    """The per-group gradient path used where TensorFlow has no grouped-conv gradient (CPU without oneDNN)."""
    from regnet_tf.layers import grouped_conv2d

    x = tf.random.normal((2, 9, 9, 12), seed=3)
    kernel = tf.random.normal((3, 3, 4, 24), seed=4)  # 3 groups
    padding = "SAME" if stride == 1 else "VALID"

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = fn()
            loss = tf.reduce_sum(y * tf.cos(y))
        return (y, *tape.gradient(loss, [x, kernel]))

    def reference():
        xs, ks = tf.split(x, 3, axis=-1), tf.split(kernel, 3, axis=-1)
        return tf.concat([tf.nn.conv2d(a, k, stride, padding) for a, k in zip(xs, ks)], axis=-1)

    ours = grads(lambda: grouped_conv2d(x, kernel, (1, stride, stride, 1), padding, (1, 1, 1, 1), 3))
    for a, b in zip(ours, grads(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_grouped_convs_train_and_predict_without_onednn():
    """TensorFlow without oneDNN (TF_ENABLE_ONEDNN_OPTS=0, the default on CPUs without AVX-512) has no grouped-conv
    gradient and no fused grouped conv: training uses the per-group gradient, warning once per process (naming the
    switch), and inference still runs. Importing regnet_tf leaves the switch alone."""
    import subprocess
    import sys

    code = (
        "import os, warnings\n"
        "import regnet_tf\n"
        "assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '0'\n"
        "import numpy as np, tensorflow as tf, keras\n"
        "from tensorflow.python.util import _pywrap_util_port\n"
        "assert not _pywrap_util_port.IsMklEnabled()\n"
        "from regnet_tf.applications import build_model\n"
        "from regnet_tf.layers import native_grouped_conv_gradients\n"
        "assert not native_grouped_conv_gradients()\n"
        "m = build_model('regnetx_002', classes=3, input_shape=(32, 32, 3), classifier_activation=None)\n"
        "m.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
        "x = np.random.RandomState(0).normal(size=(4, 32, 32, 3)).astype('float32')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    m.fit(x, np.arange(4) % 3, epochs=1, verbose=0)\n"
        "    with tf.GradientTape() as tape:\n"  # a second gradient, built outside fit: no second warning
        "        loss = tf.reduce_sum(m(x, training=True))\n"
        "    assert all(g is not None for g in tape.gradient(loss, m.trainable_weights))\n"
        "msgs = [str(w.message) for w in caught if 'oneDNN' in str(w.message)]\n"
        "print(len(msgs), msgs[0] if msgs else '')\n"
        "print(m.predict(x, verbose=0).shape)\n"
    )
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "(4, 3)" in out.stdout
    count, message = out.stdout.splitlines()[0].split(" ", 1)
    assert count == "1" and "TF_ENABLE_ONEDNN_OPTS=1" in message and "slower" in message
