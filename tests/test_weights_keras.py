"""tf_keras (Keras 2) and Keras 3 applications -> ours (`regnet_tf.weights.keras_applications`): the converted model
computes the source's logits. Sources are random-initialised (weights=None) with seeded random BN statistics, BN
scales, biases and EfficientNet input normalization; each gets the same [0, 255] image through its own
preprocessing layers, ours the ImageNet-normalized image. Small members at small even sizes (64; 72, not a multiple
of 32), where TensorFlow's "SAME" and symmetric padding differ."""

import h5py
import keras
import numpy as np
import pytest

from regnet_tf import weights
from regnet_tf.data.format import MEAN_RGB, STD_RGB
from regnet_tf.weights import ConversionError
from regnet_tf.weights.keras_applications import application_name, normalize_names, prefixes
from regnet_tf.zoo import get_spec

tf_keras = pytest.importorskip("tf_keras")


@pytest.fixture
def float64():
    before = tf_keras.backend.floatx(), keras.config.floatx()
    tf_keras.backend.set_floatx("float64")
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        tf_keras.backend.set_floatx(before[0])
        keras.config.set_floatx(before[1])


def _var(w):
    return w.name.split("/")[-1].split(":")[0]


def _source(library, factory, size, rng, exact_constants=False, **kwargs):
    """The source application (weights=None, logits out; ``factory``: its name, or a function that builds it) with
    random BN scales, biases, input normalization and BN moving statistics: the statistics of a random batch (set by
    one training-mode pass with momentum 0, so that every layer's output depends on the input), then randomly
    perturbed. ``exact_constants``: Keras casts a Python-float Rescaling constant (1/255) through float32; a float64
    comparison gives the source that constant in float64."""
    apps = tf_keras.applications if library == "tf_keras" else keras.applications
    build = getattr(apps, factory) if isinstance(factory, str) else factory
    extra = {} if build.__name__.startswith("RegNet") else {"classifier_activation": None}  # tf_keras RegNet: logits
    model = build(weights=None, input_shape=(size, size, 3), **extra, **kwargs)
    draw = {"gamma": lambda s: rng.uniform(0.5, 1.5, s), "beta": lambda s: rng.normal(0, 0.2, s),
            "bias": lambda s: rng.normal(0, 0.2, s), "mean": lambda s: rng.uniform(0.3, 0.6, s),  # Normalization
            "variance": lambda s: rng.uniform(0.03, 0.09, s)}
    model.set_weights([draw[_var(w)](v.shape) if _var(w) in draw else v
                       for w, v in zip(model.weights, model.get_weights())])
    bns = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    for layer in model.layers:
        if type(layer).__name__ == "Normalization":
            layer.finalize_state()
        if type(layer).__name__ == "Rescaling" and exact_constants:
            layer.scale, layer.offset = np.float64(layer.scale), np.float64(layer.offset)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    model(rng.uniform(0, 255, (4, size, size, 3)).astype(keras.config.floatx()), training=True)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    values = dict(zip([id(w) for w in model.weights], model.get_weights()))
    for bn in bns:
        mean, var = id(bn.moving_mean), id(bn.moving_variance)
        values[mean] = values[mean] + rng.normal(0, 0.1, values[mean].shape) * np.sqrt(values[var])
        values[var] = values[var] * rng.uniform(0.8, 1.25, values[var].shape)
    model.set_weights([values[id(w)] for w in model.weights])
    return model


# ResNet-RS at these blocks per stage, not ResNetRS50's (3, 4, 6, 3): ~5 s less to build twice, and still every
# kind of block (a projecting stride-1 block, an identity block after it, ResNet-D stride-2 blocks; SE in each).
RS_DS = (2, 1, 1, 1)


def _tf_keras_resnet_rs_50(ds):
    """tf_keras's ResNetRS50 with ``ds`` blocks per stage. tf_keras builds its every ResNetRS{depth} as
    `ResNetRS(depth, ...)` with that depth's `BLOCK_ARGS` (filters 64-512, repeats); ResNetRS50 passes these
    arguments, and `test_resnet_rs_50_is_tf_keras_resnet_rs_50` holds that ours is its BLOCK_ARGS."""
    from tf_keras.src.applications import resnet_rs

    def build(**kwargs):
        block_args = [dict(args, num_repeats=d) for args, d in zip(resnet_rs.BLOCK_ARGS[50], ds)]
        return resnet_rs.ResNetRS(depth=50, block_args=block_args, drop_connect_rate=0.0, dropout_rate=0.25,
                                  model_name="resnet-rs-50", **kwargs)

    build.__name__ = "ResNetRS50_ds" + "".join(map(str, ds))
    return build


def _normalization(model):
    return next(layer for layer in model.layers if type(layer).__name__ == "Normalization")


def _compare(source_model, ours, rng, size, dtype, source_image=None):
    """max |ours - source| / max(1, max |source|) on a random [0, 255] image (``source_image``: what the source gets
    instead, when it needs another image for the same computation)."""
    image = rng.uniform(0, 255, (2, size, size, 3))
    theirs = np.asarray(source_model(source_image(image) if source_image else image.astype(dtype), training=False),
                        "float64")
    x = (image / 255 - np.asarray(MEAN_RGB)) / np.asarray(STD_RGB)
    mine = np.asarray(ours(x.astype(dtype), training=False), "float64")
    assert mine.shape == theirs.shape
    return np.abs(mine - theirs).max() / max(1.0, np.abs(theirs).max())


@pytest.fixture(autouse=True)
def _free_tf_keras():
    yield
    tf_keras.backend.clear_session()


def _input(source_model, how, tmp_path):
    """The source as a model object, a weights-only file (``how`` = ".h5", ".weights.h5") or a whole saved model
    ("model.h5", "model.keras")."""
    if how == "object":
        return source_model
    path = str(tmp_path / f"source{how}")
    (source_model.save if how.startswith("model") else source_model.save_weights)(path)
    return path


# (library, factory, our model: a registry name or a spec, size, how the source is given)
CASES = [("tf_keras", "RegNetX002", "regnetx_002", 64, "object"),
         ("tf_keras", "RegNetY002", "regnety_002", 72, "object"),
         ("tf_keras", _tf_keras_resnet_rs_50(RS_DS), get_spec("resnet_rs_50").replace(ds=RS_DS), 72, "object"),
         ("tf_keras", "EfficientNetB0", "efficientnet_b0", 64, ".h5"),
         ("keras", "EfficientNetB0", "efficientnet_b0", 72, ".weights.h5")]


def _name(value):
    return value if isinstance(value, str) else value.__name__


@pytest.mark.parametrize("library,factory,model,size,how", CASES,
                         ids=[f"{lib}-{_name(f)}-{s}-{how}" for lib, f, _, s, how in CASES])
def test_float64_logits_equal_the_source(float64, tmp_path, library, factory, model, size, how):
    rng = np.random.default_rng(sum(map(ord, _name(factory))) + size)
    source_model = _source(library, factory, size, rng, exact_constants=True)
    ours, config = weights.convert(library, model, _input(source_model, how, tmp_path))
    name = model if isinstance(model, str) else ""  # a spec built by hand has no registry name
    assert config.source == library and config.model == name and ours.dtype == "float64"
    if _name(factory).startswith("EfficientNet"):  # its random Normalization: the converted model has an input adapter
        mean, var = _normalization(source_model).get_weights()[:2]
        np.testing.assert_allclose(config.input_mean, mean, rtol=1e-12)
        np.testing.assert_allclose(config.input_std, np.sqrt(var), rtol=1e-12)
    assert _compare(source_model, ours, rng, size, "float64") <= 1e-8


def test_resnet_rs_50_is_tf_keras_resnet_rs_50():
    # the float64 case converts ResNetRS50 at RS_DS blocks per stage: resnet_rs_50 is it at BLOCK_ARGS[50]'s
    from tf_keras.src.applications import resnet_rs

    spec = get_spec("resnet_rs_50")
    assert [{"input_filters": w, "num_repeats": d} for w, d in zip(spec.ws, spec.ds)] == resnet_rs.BLOCK_ARGS[50]


def test_imagenet_weights_file_means_imagenet_normalization(tmp_path):
    # Keras's ImageNet EfficientNet files store the ImageNet *std* as the Normalization variance, and the
    # application built with weights="imagenet" divides by sqrt(std) once more: ImageNet mean/std overall.
    rng = np.random.default_rng(5)
    source_model = _source("tf_keras", "EfficientNetB0", 64, rng, include_top=False, pooling="avg")
    _normalization(source_model).set_weights([np.asarray(MEAN_RGB), np.asarray(STD_RGB), np.zeros((), "int64")])
    _normalization(source_model).finalize_state()
    ours, config = weights.convert("tf_keras", "efficientnet_b0", _input(source_model, ".h5", tmp_path),
                                   include_top=False)
    assert config.input_mean == tuple(MEAN_RGB) and config.input_std == tuple(STD_RGB)
    assert config.input_adapter() is None
    # The weights=None source lacks the extra 1/sqrt(std): give it the image that makes up for it.
    mean, std = np.asarray(MEAN_RGB), np.asarray(STD_RGB)
    features = keras.Model(ours.input, keras.layers.GlobalAveragePooling2D()(ours.output))
    assert _compare(source_model, features, rng, 64, "float32",
                    source_image=lambda image: 255 * (mean + (image / 255 - mean) / np.sqrt(std))) <= 1e-3


def test_full_model_file_and_refusal_of_another_architecture(tmp_path):
    rng = np.random.default_rng(6)
    source_model = _source("tf_keras", "RegNetX002", 64, rng)
    ours, config = weights.convert("tf_keras", "regnetx_002", _input(source_model, "model.h5", tmp_path))
    assert config.spec["padding"] == "tf_same" and config.input_mean == (0, 0, 0) and config.input_std == (1, 1, 1)
    assert _compare(source_model, ours, rng, 64, "float32") <= 1e-3
    with pytest.raises(ConversionError) as e:
        weights.convert("tf_keras", "regnetx_004", source_model)
    message = str(e.value)
    assert "shapes that differ" in message
    assert "s1_b1_a/kernel (1, 1, 32, 32) <- Stage_0_XBlock_0_conv_1x1_1/kernel (1, 1, 32, 24)" in message
    assert "s2_b2_a/kernel <- Stage_1_XBlock_1_conv_1x1_1/kernel" in message  # X004 has 2 blocks in stage 2
    with pytest.raises(ConversionError, match="(?s)missing in the source.*s1_b1_se_reduce/kernel <- Stage_0_YBlock_0"):
        weights.convert("tf_keras", "regnety_002", source_model)


def test_keras3_has_no_regnet_file_to_build(tmp_path):
    path = str(tmp_path / "regnetx002.h5")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"regnetx002_stem_conv"]
    with pytest.raises(ConversionError, match="keras has no RegNetX002 application.*tf_keras"):
        weights.convert("keras", "regnetx_002", path)


def test_names_do_not_depend_on_keras_name_counters():
    assert normalize_names("anynet", ["regnety016_stem_conv", "regnety016_Stage_2_YBlock_3_conv_3x3", "12head_dense"]) \
        == {"regnety016_stem_conv": "stem_conv", "regnety016_Stage_2_YBlock_3_conv_3x3": "Stage_2_YBlock_3_conv_3x3",
            "12head_dense": "head_dense"}
    assert normalize_names("resnet", ["stem_7_stem_batch_norm_4", "BlockGroup3__block_0_batch_norm_1"]) \
        == {"stem_7_stem_batch_norm_4": "stem_batch_norm_4",
            "BlockGroup3__block_0_batch_norm_1": "BlockGroup3__block_0_batch_norm_1"}
    spec = get_spec("resnet_rs_50").resolved()
    assert prefixes(spec, ["stem_pool_conv", "s2_b1_a_bn", "s2_b1_proj", "s4_b3_se_expand"]) == {
        "stem_pool_conv": "stem_conv_4", "s2_b1_a_bn": "BlockGroup3__block_0_batch_norm_1",
        "s2_b1_proj": "BlockGroup3__block_0__projection_conv", "s4_b3_se_expand": "BlockGroup5__block_2__se_se_expand"}
    assert prefixes(get_spec("efficientnet_b1").resolved(), ["s1_b2_dw", "s7_b2_project_bn", "head_conv"]) == {
        "s1_b2_dw": "block1b_dwconv", "s7_b2_project_bn": "block7b_project_bn", "head_conv": "top_conv"}
    assert [application_name(get_spec(n).resolved()) for n in ("regnetx_080", "resnet_rs_420", "efficientnet_b7")] \
        == ["RegNetX080", "ResNetRS420", "EfficientNetB7"]
