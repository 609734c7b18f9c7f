"""The optimizers and schedules of regnet_tf.train.optim: TF1 RMSProp (EfficientNet's), the staircase schedule,
weight decay with RMSProp, and the optimizer state through a checkpoint. Tiny variables, a few steps: fast."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from regnet_tf.train import optim
from regnet_tf.train.recipe import OptimizerConfig, ScheduleConfig
from regnet_tf.train.rmsprop import TF1RMSprop

LRS = [0.25, 0.5, 0.125, 0.25, 0.0625, 0.5]  # exactly representable: float32 lr == float64 lr
RHO, MOMENTUM, EPS = 0.9, 0.9, 1e-3


def numpy_tf1_rmsprop(w, grads, lrs, rho=RHO, momentum=MOMENTUM, eps=EPS):
    """TF1 RMSPropOptimizer (centered=False), written from its documented update: ms starts at 1."""
    w, ms, mom = np.array(w, np.float64), np.ones_like(w, np.float64), np.zeros_like(w, np.float64)
    for g, lr in zip(grads, lrs):
        ms = rho * ms + (1 - rho) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        w = w - mom
    return w, ms, mom


def _data(seed=0, steps=len(LRS)):
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=(3, 4))
    # gradients of mixed scales: the mean square's start matters most for the small ones
    grads = [rng.normal(size=(3, 4)) * rng.choice([1e-3, 0.1, 3.0], size=(3, 4)) for _ in range(steps)]
    return w0, grads


def _run(cls, w0, grads, lrs, **kwargs):
    """`grads` applied to a float64 variable by cls(learning_rate=a callable giving lrs[step], **kwargs): the
    trainer passes its schedule the same way."""
    var = keras.Variable(w0, dtype="float64")
    step = {"i": 0}
    opt = cls(learning_rate=lambda: lrs[step["i"]], **kwargs)
    for i, g in enumerate(grads):
        step["i"] = i
        opt.apply_gradients([(tf.constant(g), var)])
    return var.numpy(), opt


def test_tf1_rmsprop_matches_numpy_and_tf1_kernel():
    w0, grads = _data()
    expected, ms, mom = numpy_tf1_rmsprop(w0, grads, LRS)
    got, opt = _run(TF1RMSprop, w0, grads, LRS, rho=RHO, momentum=MOMENTUM, epsilon=EPS)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(opt._mean_squares[0].numpy(), ms, rtol=1e-12)
    np.testing.assert_allclose(opt._momentums[0].numpy(), mom, rtol=1e-12, atol=1e-15)
    # the TF1 optimizer itself (its C++ ApplyRMSProp kernel), eager, constant lr
    v1 = tf.Variable(w0, dtype=tf.float64)
    tf1 = tf.compat.v1.train.RMSPropOptimizer(0.25, decay=RHO, momentum=MOMENTUM, epsilon=EPS)
    for g in grads:
        tf1.apply_gradients([(tf.constant(g), v1)])
    # TF1 keeps its hyperparameters as float32 tensors (cast to the variable's float64): 0.9 -> 0.89999998
    f32 = [float(np.float32(x)) for x in (RHO, MOMENTUM, EPS)]
    mine, _ = _run(TF1RMSprop, w0, grads, [0.25] * len(grads), rho=f32[0], momentum=f32[1], epsilon=f32[2])
    np.testing.assert_allclose(mine, v1.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(numpy_tf1_rmsprop(w0, grads, [0.25] * len(grads), *f32)[0], v1.numpy(), rtol=1e-12)


def test_keras_rmsprop_differs_from_tf1():
    """Why TF1RMSprop exists: Keras starts the mean square at 0 (first step ~ lr sign(g) / sqrt(1 - rho))."""
    w0, grads = _data(steps=1)
    keras_w, _ = _run(keras.optimizers.RMSprop, w0, grads, [0.25], rho=RHO, momentum=MOMENTUM, epsilon=EPS)
    tf1_w, _, _ = numpy_tf1_rmsprop(w0, grads, [0.25])
    assert np.abs(keras_w - tf1_w).max() > 0.1


def test_serialization_and_checkpoint_resume(tmp_path):
    opt = TF1RMSprop(learning_rate=0.125, rho=0.8, momentum=0.5, epsilon=1e-4, weight_decay=1e-3)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is TF1RMSprop
    assert (again.rho, again.momentum, again.epsilon, again.weight_decay) == (0.8, 0.5, 1e-4, 1e-3)

    w0, grads = _data(seed=1, steps=4)

    def make():
        var = tf.Variable(w0, dtype=tf.float64)
        o = TF1RMSprop(learning_rate=0.25)
        o.build([var])
        return var, o

    var, opt = make()
    for g in grads[:2]:
        opt.apply_gradients([(tf.constant(g), var)])
    path = tf.train.Checkpoint(optimizer=opt, var=var).save(str(tmp_path / "ckpt"))
    for g in grads[2:]:
        opt.apply_gradients([(tf.constant(g), var)])

    var2, opt2 = make()  # fresh state: ms = 1, mom = 0, iterations = 0
    tf.train.Checkpoint(optimizer=opt2, var=var2).restore(path).assert_consumed()
    assert int(opt2.iterations.numpy()) == 2
    for g in grads[2:]:
        opt2.apply_gradients([(tf.constant(g), var2)])
    np.testing.assert_array_equal(var2.numpy(), var.numpy())
    expected, _, _ = numpy_tf1_rmsprop(w0, grads, [0.25] * 4)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12)


def _tiny_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))


@pytest.mark.parametrize("mode", ["decoupled", "l2"])
def test_make_optimizer_rmsprop_weight_decay(mode):
    model = _tiny_model()
    config = OptimizerConfig(name="rmsprop", momentum=0.9, rho=0.9, epsilon=1e-3, weight_decay=0.01,
                             weight_decay_mode=mode)
    opt = optim.make_optimizer(config, 0.5, model)
    assert isinstance(opt, TF1RMSprop) and (opt.rho, opt.momentum, opt.epsilon) == (0.9, 0.9, 1e-3)
    before = {v.path: v.numpy() for v in model.trainable_variables}
    opt.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])  # zero gradient: decay only
    for v in model.trainable_variables:
        if mode == "decoupled" and v.name in optim.KERNEL_NAMES:  # w -= lr x wd x w, kernels only
            np.testing.assert_allclose(v.numpy(), before[v.path] * (1 - 0.5 * 0.01), rtol=1e-6)
        else:  # l2: the decay is in the loss (optim.l2_loss), the optimizer leaves w alone; BN and biases never
            np.testing.assert_array_equal(v.numpy(), before[v.path])
    # l2 mode: the loss term's gradient is wd x w on the kernels
    kernels = optim.decayed_variables(model)
    with tf.GradientTape() as tape:
        loss = optim.l2_loss(kernels, 0.01)
    for g, v in zip(tape.gradient(loss, kernels), kernels):
        np.testing.assert_allclose(g.numpy(), 0.01 * v.numpy(), rtol=1e-6)
    scaled = optim.make_optimizer(config, 0.5, model, loss_scale=True)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    assert isinstance(scaled.inner_optimizer, TF1RMSprop)


def test_make_optimizer_errors():
    model = _tiny_model()
    with pytest.raises(ValueError, match="nesterov applies to sgd only"):
        optim.make_optimizer(OptimizerConfig(name="rmsprop", nesterov=True), 0.1, model)
    with pytest.raises(ValueError, match="unknown optimizer 'adam'; valid: sgd, rmsprop"):
        optim.make_optimizer(OptimizerConfig(name="adam"), 0.1, model)
    with pytest.raises(ValueError, match="0 < rho < 1"):
        TF1RMSprop(rho=1.0)


def test_staircase_schedule():
    spe, peak = 10, 2.0
    config = ScheduleConfig(name="staircase", decay_rate=0.97, decay_epochs=2.4)
    lr = optim.LearningRate(config, peak, total_steps=350 * spe, steps_per_epoch=spe)
    for step in [0, 1, 23, 24, 25, 47, 48, 100, 3499]:  # a new stair every 24 steps
        assert float(lr(step)) == pytest.approx(peak * 0.97 ** (step // 24), rel=1e-5), step  # float32 pow
    # warmup as the other schedules: linear from warmup_start x lr(end) to lr(end) over 5 epochs
    warm = optim.LearningRate(ScheduleConfig(name="staircase", decay_rate=0.97, decay_epochs=2.4, warmup_epochs=5),
                              peak, total_steps=350 * spe, steps_per_epoch=spe)
    end = peak * 0.97 ** 2  # floor(50 / 24) = 2 stairs by the end of the warmup (the stairs count from step 0)
    assert float(warm(0)) == 0.0
    assert float(warm(25)) == pytest.approx(end * 25 / 50, rel=1e-6)
    assert float(warm(50)) == pytest.approx(end, rel=1e-6)
    assert float(warm(72)) == pytest.approx(peak * 0.97 ** 3, rel=1e-6)


def test_efficientnet_rs_recipe_trains_and_resumes_its_rmsprop_state(monkeypatch, tmp_path_factory, demo_cache):
    """efficientnet_rs_b0's recipe (TF1 RMSProp, staircase, EMA, BN 0.99) for 2 steps on demo data at 32 px; a new
    trainer on the same model_dir restores the optimizer's mean squares and momenta exactly."""
    from regnet_tf.cli.shortcuts import shortcut_overrides
    from regnet_tf.train import recipe as recipe_lib
    from regnet_tf.train.trainer import Trainer

    monkeypatch.setenv("REGNET_TF_DATA", demo_cache)
    overrides = shortcut_overrides(data="demo", steps=2) + [
        "data.image_size=32", "train.global_batch_size=8", "train.eval_steps=1", "train.steps_per_loop=2",
        "schedule.base_batch_size=8", "schedule.decay_epochs=0.0016",  # a new stair every step (625 steps/epoch)
        "model.spec.ds=[1, 1, 1, 1, 1, 1, 1]", "model.spec.ws=[8, 8, 16, 16, 16, 24, 24]", "model.spec.stem_w=8",
        "model.spec.head_w=32"]  # a narrow one-block-per-stage B0: the recipe, not the network, is under test
    r = recipe_lib.load("efficientnet_rs_b0", overrides)
    model_dir = str(tmp_path_factory.mktemp("effnet_rs"))
    trainer = Trainer(r, model_dir, log=lambda s: None)
    assert isinstance(trainer.optimizer, TF1RMSprop)
    metrics = trainer.train(export=False)
    assert int(trainer.step.numpy()) == 2 and np.isfinite(metrics["loss"])
    assert not any(np.allclose(ms.numpy(), 1.0) for ms in trainer.optimizer._mean_squares)  # TF1: ms starts at 1
    # staircase after a warmup (capped at the 2-step run) that ends at the schedule's value: peak x 0.97^2
    assert r.peak_lr() == pytest.approx(0.016) and trainer.steps_per_epoch == 625
    assert float(trainer.lr(2)) == pytest.approx(0.016 * 0.97 ** 2, rel=1e-5)
    assert float(trainer.lr(1)) == pytest.approx(0.016 * 0.97 ** 2 / 2, rel=1e-5)
    state = [v.numpy() for v in trainer.optimizer.variables]
    again = Trainer(r, model_dir, log=lambda s: None)
    assert again.restore() == 2
    for a, b in zip(again.optimizer.variables, state):
        np.testing.assert_array_equal(a.numpy(), b)
