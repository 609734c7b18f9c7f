"""RMSProp as TF1's `tf.compat.v1.train.RMSPropOptimizer` runs it: the optimizer of the original EfficientNets.

Per variable w with gradient g (TF1's ApplyRMSProp kernel, `centered=False`):

    ms  <- ms + (g^2 - ms) (1 - rho)              # = rho ms + (1 - rho) g^2; ms starts at ONE
    mom <- momentum mom + lr g / sqrt(ms + epsilon)
    w   <- w - mom

`keras.optimizers.RMSprop` has the same update (epsilon inside the square root, momentum on the scaled step) but
starts the mean square at zero: its first steps are about lr x sign(g) / sqrt(1 - rho) (3.2 lr at rho 0.9)
whatever the gradient's size, where TF1's ms = 1 keeps them near lr x g for gradients well below 1; the gap fades
as rho^t. The EfficientNet reference code runs rho 0.9, momentum 0.9, epsilon 1e-3 (tensorflow/tpu
models/official/efficientnet/utils.py `build_optimizer`).

Its state (the mean squares, momenta and the iteration count) is Keras optimizer variables: a
`tf.train.Checkpoint(optimizer=...)` saves and restores it. Decoupled weight decay (`weight_decay`,
`exclude_from_weight_decay`) is the Keras base optimizer's: w -= lr x wd x w before the update.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="regnet_tf")
class TF1RMSprop(keras.optimizers.Optimizer):
    """RMSProp with TF1 semantics (mean square initialised to 1). Arguments as `keras.optimizers.RMSprop`'s;
    `rho` is TF1's `decay`."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.9, epsilon=1e-3, name="tf1_rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 < rho < 1 or momentum < 0 or epsilon <= 0:
            raise ValueError(f"TF1RMSprop needs 0 < rho < 1, momentum >= 0 and epsilon > 0; got rho={rho}, "
                             f"momentum={momentum}, epsilon={epsilon}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._mean_squares = self.add_optimizer_variables(var_list, "mean_square", initializer="ones")
        self._momentums = self.add_optimizer_variables(var_list, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        i = self._get_variable_index(variable)
        ms, mom = self._mean_squares[i], self._momentums[i]
        self.assign(ms, ops.add(ms, ops.multiply(ops.subtract(ops.square(g), ms), 1.0 - self.rho)))
        step = ops.divide(ops.multiply(lr, g), ops.sqrt(ops.add(ms, self.epsilon)))
        self.assign(mom, ops.add(ops.multiply(self.momentum, mom), step))
        self.assign_sub(variable, mom)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon)
        return config
