"""Where and how a run computes: the tf.distribute strategy, logical CPUs, the precision policy, XLA, the chief.

    strategy = make_strategy("auto")        # default (CPU / one GPU), Mirrored, MultiWorkerMirrored or TPU
    policy = precision_policy("auto", strategy)

The choices (`recipe.DISTRIBUTION_STRATEGIES`, `recipe.PRECISIONS` with their `recipe.PRECISION_POLICIES`,
`recipe.XLA_MODES`) live in the TensorFlow-free recipe module, so that the command line reads them before
TensorFlow loads.
"""

from __future__ import annotations

import os

import tensorflow as tf

from regnet_tf.train import TrainingError
from regnet_tf.train.recipe import DISTRIBUTION_STRATEGIES, PRECISION_POLICIES, PRECISIONS


def use_logical_cpus(n):
    """Splits the CPU into `n` logical devices (to test Mirrored on one machine); before TensorFlow runs anything."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as e:
        raise TrainingError(f"--num_cpu_devices must be set before TensorFlow initializes its devices ({e})") from e


def make_strategy(name="auto", tpu=None):
    """A tf.distribute strategy by name: auto | cpu | mirrored | multi_worker | tpu (see the README)."""
    if name not in DISTRIBUTION_STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(DISTRIBUTION_STRATEGIES)}")
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        name = "tpu" if tpu else "mirrored" if len(gpus) > 1 else "gpu" if gpus else "cpu"
        if name == "gpu":
            return tf.distribute.OneDeviceStrategy("/gpu:0")
    if name == "cpu":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if not devices:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainingError("--strategy multi_worker reads the cluster from the TF_CONFIG environment variable "
                                "(see the README: {\"cluster\": {\"worker\": [\"host1:port\", ...]}, \"task\": "
                                "{\"type\": \"worker\", \"index\": i}}); TF_CONFIG is not set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(tpu)


def _tpu_strategy(tpu):
    if tpu is None:
        raise TrainingError("--strategy tpu needs --tpu: a TPU name, grpc://address:8470, or 'local' on a TPU VM")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu not in ("", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except Exception as e:  # noqa: BLE001 - every failure here means the same thing to the user
        raise TrainingError(f"no TPU reachable at --tpu={tpu!r}: {type(e).__name__}: {str(e).splitlines()[0][:300]}. "
                            "On a Cloud TPU VM use --tpu=local; for a TPU node give its name or grpc://IP:8470. "
                            "Without a TPU use --strategy auto (CPU/GPUs).") from e


def strategy_name(strategy):
    """The strategy as the run's summary names it."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "default strategy (one device)"
    return type(strategy).__name__


def is_tpu(strategy):
    return isinstance(strategy, tf.distribute.TPUStrategy)


def is_chief(strategy):
    """True on the worker that writes logs, the recipe, the kept checkpoints and the export."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and
                                            "chief" not in resolver.cluster_spec().as_dict())


def precision_policy(mixed_precision, strategy):
    """The Keras dtype policy for runtime.mixed_precision: auto = bfloat16 on TPU, float16 on GPU, float32 on CPU."""
    if mixed_precision == "auto":
        if is_tpu(strategy):
            return "mixed_bfloat16"
        return "mixed_float16" if tf.config.list_logical_devices("GPU") else "float32"
    if mixed_precision not in PRECISION_POLICIES:
        raise ValueError(f"unknown mixed precision {mixed_precision!r}; valid: {', '.join(PRECISIONS)}")
    return PRECISION_POLICIES[mixed_precision]


def use_xla(xla, strategy):
    """XLA for the training step: auto = on for GPUs (TPUs always compile), off on CPUs (slow grouped convs)."""
    if xla == "auto":
        return bool(tf.config.list_logical_devices("GPU")) and not is_tpu(strategy)
    return xla == "on"
