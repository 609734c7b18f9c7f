"""The training loop: one code path for the default (CPU/one-GPU), Mirrored, MultiWorkerMirrored and TPU strategies.

    strategy = make_strategy("auto")
    trainer = Trainer(recipe, model_dir, strategy)
    trainer.train()            # resumes from model_dir's last checkpoint; evaluates; exports at the end

A training step (per replica, inside `strategy.run`): forward in training mode -> softmax cross-entropy (label
smoothing; soft labels from MixUp/CutMix) summed and divided by the *global* batch size, + the L2 term divided by
the number of replicas -> gradients (Keras's optimizer sums them over replicas) -> SGD -> then, in cross-replica
context, the EMA update. `steps_per_loop` steps run inside one tf.function (a tf.while_loop), the Keras progress
bar, TensorBoard and the JSON log are updated between loops.

Checkpoints (`model_dir/checkpoints/ckpt-<step>`): model, optimizer, EMA, step, every `checkpoint_every_steps` (or
every epoch). TensorFlow writes a checkpoint's files first and updates the `checkpoint` index file afterwards with
an atomic rename, so a run killed mid-save restarts from the previous checkpoint; a checkpoint that fails to load
falls back to the one before it. A NaN or infinite loss stops training naming the step, and keeps the last good
checkpoint (nothing is saved after the bad step). SIGTERM (preemption) saves a checkpoint and exits.

BN moving statistics are per replica (not synchronized across replicas, as TF Model Garden's `use_sync_bn: false`);
evaluation, the EMA, checkpoints and the export read replica 0's, and every replica gets them before evaluating.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time

import keras
import tensorflow as tf

from regnet_tf.train import optim

STRATEGIES = ("auto", "cpu", "mirrored", "multi_worker", "tpu")
PRECISIONS = {"none": "float32", "float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, a bad model_dir); the message says why and what to do."""


# ------------------------------------------------------------------------------------------------ strategies


def use_logical_cpus(n):
    """Splits the CPU into `n` logical devices (to test Mirrored on one machine); before TensorFlow runs anything."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as e:
        raise TrainingError(f"--num_cpu_devices must be set before TensorFlow initializes its devices ({e})") from e


def make_strategy(name="auto", tpu=None):
    """A tf.distribute strategy by name: auto | cpu | mirrored | multi_worker | tpu (see the README)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
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
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return "default strategy (one device)"
    return type(strategy).__name__


def is_tpu(strategy):
    return isinstance(strategy, (tf.distribute.TPUStrategy,))


def is_chief(strategy):
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
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"unknown mixed precision {mixed_precision!r}; valid: auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[mixed_precision]


def use_xla(xla, strategy):
    """XLA for the training step: auto = on for GPUs (TPUs always compile), off on CPUs (slow grouped convs)."""
    if xla == "auto":
        return bool(tf.config.list_logical_devices("GPU")) and not is_tpu(strategy)
    return xla == "on"


# ----------------------------------------------------------------------------------------------------- logs


class MetricsLog:
    """TensorBoard scalars (`model_dir/train`, `model_dir/validation`) and one JSON line per record
    (`model_dir/metrics.jsonl`); a no-op on non-chief workers."""

    def __init__(self, model_dir, enabled=True):
        self.enabled = enabled
        self.path = os.path.join(model_dir, "metrics.jsonl")
        self.writers = {}
        if enabled:
            for split in ("train", "validation"):
                self.writers[split] = tf.summary.create_file_writer(os.path.join(model_dir, split))

    def write(self, split, step, **values):
        if not self.enabled:
            return
        with self.writers[split].as_default(step=step):
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    tf.summary.scalar(k, v)
        self.writers[split].flush()
        record = {"split": split, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Builds the model, optimizer, EMA, datasets and checkpoints of a recipe under a strategy; trains, evaluates,
    exports. `log`: a function taking a string (default print to stdout)."""

    def __init__(self, recipe, model_dir, strategy=None, log=None, data_seed_offset=True):
        self.recipe, self.model_dir = recipe, model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.log = log or (lambda s: print(s, flush=True))
        self.chief = is_chief(self.strategy)
        self.policy = precision_policy(recipe.runtime.mixed_precision, self.strategy)
        self.xla = use_xla(recipe.runtime.xla, self.strategy)
        self.spec = recipe.spec()
        self.num_classes = recipe.data.num_classes
        self.steps_per_epoch = recipe.steps_per_epoch()
        self.total_steps = recipe.total_steps()
        self.data_seed_offset = data_seed_offset
        self._stop_signal = None
        self._eval_step = None
        os.makedirs(model_dir, exist_ok=True)
        self._build()

    # ---- construction
    def _build(self):
        from regnet_tf.applications import build_model

        r = self.recipe
        keras.utils.set_random_seed(r.runtime.seed)
        keras.mixed_precision.set_global_policy(self.policy)
        size = r.data.image_size
        with self.strategy.scope():
            self.model = build_model(self.spec, classes=self.num_classes, input_shape=(size, size, 3),
                                     classifier_activation=None, name=r.model.name or None)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.lr = optim.LearningRate(r.schedule, r.peak_lr(), self.total_steps, self.steps_per_epoch)
            self.optimizer = optim.make_optimizer(r.optimizer, lambda: self.lr(self.step), self.model,
                                                  loss_scale=self.policy == "mixed_float16")
            self.optimizer.build(self.model.trainable_variables)
            self.ema = optim.EMA(self.model, r.ema.decay, r.ema.dynamic) if r.ema.decay > 0 else None
        self.decay_vars = optim.decayed_variables(self.model, r.optimizer.decay_all)
        self.l2 = r.optimizer.weight_decay if r.optimizer.weight_decay_mode == "l2" else 0.0
        items = dict(model=self.model, optimizer=self.optimizer, step=self.step)
        if self.ema is not None:
            items["ema"] = self.ema
        self.checkpoint = tf.train.Checkpoint(**items)
        directory = os.path.join(self.model_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=r.train.keep_checkpoints,
                                                  step_counter=self.step)
        self.metrics = MetricsLog(self.model_dir, enabled=self.chief)

    def describe(self):
        """Multi-line summary: the model, its complexity at the training resolution, the run's shape."""
        from regnet_tf import complexity

        r, cx = self.recipe, None
        try:
            cx = complexity(self.spec, r.data.image_size, self.num_classes)
        except Exception:  # noqa: BLE001 - the summary never blocks training
            pass
        lines = [f"model: {r.model.name} {type(self.spec).__name__} at {r.data.image_size} px, "
                 f"{self.num_classes} classes"]
        if cx:
            lines.append(f"complexity: {cx['flops'] / 1e9:.3f} GMACs (multiply-adds), {cx['params'] / 1e6:.3f} M "
                         f"params, {cx['acts'] / 1e6:.3f} M acts")
        lines.append(f"strategy: {strategy_name(self.strategy)} with {self.strategy.num_replicas_in_sync} "
                     f"replica(s); precision {self.policy}; XLA {'on' if self.xla else 'off'}")
        lines.append(f"schedule: {self.total_steps} steps ({self.total_steps / self.steps_per_epoch:.2f} epochs of "
                     f"{self.steps_per_epoch} steps), global batch {r.train.global_batch_size}, peak lr "
                     f"{r.peak_lr():.4g} ({r.schedule.name})")
        return "\n".join(lines)

    # ---- data
    def _dataset(self, split, training):
        import dataclasses

        from regnet_tf.data import input_pipeline

        config = self.recipe.data
        if training and config.seed is not None and self.data_seed_offset:
            # a resumed run continues with a fresh, still reproducible, order instead of replaying the first batches
            config = dataclasses.replace(config, seed=config.seed + int(self.step.numpy()))
        batch = self.recipe.train.global_batch_size
        if not training:
            batch = min(batch, config.num_eval_examples)
        return self.strategy.distribute_datasets_from_function(
            lambda ctx: input_pipeline(config, split, batch, ctx, training=training))

    # ---- steps
    def _replica_train_step(self, images, labels):
        r = self.recipe
        batch = tf.cast(r.train.global_batch_size, tf.float32)
        replicas = self.strategy.num_replicas_in_sync
        with tf.GradientTape() as tape:
            logits = tf.cast(self.model(images, training=True), tf.float32)
            ce = optim.cross_entropy(labels, logits, self.num_classes, r.regularization.label_smoothing)
            loss = tf.reduce_sum(ce) / batch + optim.l2_loss(self.decay_vars, self.l2) / replicas
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        n = tf.cast(tf.shape(logits)[0], tf.float32)
        return {"loss": loss * replicas, "ce_sum": tf.reduce_sum(ce), "top1": optim.topk_correct(labels, logits, 1),
                "top5": optim.topk_correct(labels, logits, 5), "count": n}

    def _make_train_loop(self):
        replica_step = self._replica_train_step
        if self.xla:
            replica_step = tf.function(replica_step, jit_compile=True)
        strategy = self.strategy
        keys = ("loss", "ce_sum", "top1", "top5", "count")

        @tf.function
        def train_loop(iterator, num_steps):
            totals = {k: tf.constant(0.0) for k in keys}
            bad_step = tf.constant(-1, tf.int64)
            for _ in tf.range(num_steps):
                images, labels = next(iterator)
                out = strategy.run(replica_step, args=(images, labels))
                out = {k: strategy.reduce("SUM", out[k], axis=None) for k in keys}
                out["loss"] = out["loss"] / strategy.num_replicas_in_sync
                self.step.assign_add(1)
                if self.ema is not None:
                    self.ema.update()
                totals = {k: totals[k] + out[k] for k in keys}
                if not tf.math.is_finite(out["loss"]):
                    bad_step = self.step.read_value()
                    break
            return totals, bad_step

        return train_loop

    def _make_eval_step(self):
        strategy, k = self.strategy, self.num_classes

        def replica_eval(images, labels):
            logits = tf.cast(self.model(images, training=False), tf.float32)
            ce = optim.cross_entropy(labels, logits, k)
            return {"ce_sum": tf.reduce_sum(ce), "top1": optim.topk_correct(labels, logits, 1),
                    "top5": optim.topk_correct(labels, logits, 5), "count": tf.cast(tf.shape(logits)[0], tf.float32)}

        def eval_step(batch):
            out = strategy.run(replica_eval, args=batch)
            sums = {}
            for name in ("ce_sum", "top1", "top5", "count"):
                sums[name] = strategy.reduce("SUM", out[name], axis=None)
            return sums

        return tf.function(eval_step, autograph=False)

    @tf.function
    def _sync_replicas(self):
        """Copies replica 0's BN statistics to every replica (they are updated per replica while training)."""
        for v in self.model.non_trainable_variables:
            v.assign(tf.identity(v.value))

    @tf.function
    def _swap_ema(self):
        self.ema.swap()

    @contextlib.contextmanager
    def ema_weights(self):
        """Within the block the model holds the EMA weights (when the recipe has an EMA)."""
        if self.ema is None:
            self._sync_replicas()
            yield
            return
        self._swap_ema()
        try:
            yield
        finally:
            self._swap_ema()

    # ---- checkpoints
    def restore(self):
        """Restores the newest loadable checkpoint of model_dir; returns its step (0 when there is none)."""
        candidates = list(reversed(self.manager.checkpoints))
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
                if path != candidates[0]:
                    self.log(f"warning: newer checkpoint(s) could not be loaded; resumed from {path}")
                return int(self.step.numpy())
            except (tf.errors.OpError, ValueError, AssertionError) as e:
                self.log(f"warning: checkpoint {path} could not be loaded ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]}); trying an older one")
        if candidates:
            raise TrainingError(f"no checkpoint in {self.manager.directory} can be loaded (see the warnings above); "
                                "move the directory away to start over")
        return 0

    def save(self):
        if self.chief:
            return self.manager.save(checkpoint_number=int(self.step.numpy()))
        # every worker takes part in writing (MultiWorkerMirrored); only the chief's files are kept
        tmp = os.path.join(self.model_dir, f".worker-{self.strategy.cluster_resolver.task_id}")
        path = self.checkpoint.write(os.path.join(tmp, "ckpt"))
        tf.io.gfile.rmtree(tmp)
        return path

    # ---- evaluation
    def evaluate(self, steps=0, split="validation"):
        """Top-1 / top-5 / loss on a split (evaluation view), with the EMA weights when there is an EMA."""
        if self._eval_step is None:
            self._eval_step = self._make_eval_step()
        eval_step = self._eval_step
        totals = {"ce_sum": 0.0, "top1": 0.0, "top5": 0.0, "count": 0.0}
        steps = steps or self.recipe.train.eval_steps
        with self.ema_weights():
            for i, batch in enumerate(self._dataset(split, training=False)):
                if steps and i >= steps:
                    break
                out = eval_step(batch)
                for k in totals:
                    totals[k] += float(out[k])
        n = max(totals["count"], 1.0)
        return {"top1": 100.0 * totals["top1"] / n, "top5": 100.0 * totals["top5"] / n,
                "loss": totals["ce_sum"] / n, "examples": int(totals["count"])}

    # ---- training
    def _on_sigterm(self, signum, frame):  # noqa: ARG002
        self._stop_signal = signum

    def train(self, export=True):
        """Trains to the recipe's total steps from the last checkpoint; evaluates and exports (chief) at the end.
        Returns the final evaluation metrics."""
        self._write_recipe()
        start = self.restore()
        self.log(self.describe())
        if start >= self.total_steps:
            self.log(f"model_dir already holds the final step {start}; evaluating")
        elif start:
            self.log(f"resuming from step {start} (epoch {start / self.steps_per_epoch:.2f})")
        old_handler = signal.signal(signal.SIGTERM, self._on_sigterm) if _main_thread() else None
        try:
            self._train_from(start)
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
        metrics = self.evaluate()
        self.log(f"final evaluation at step {int(self.step.numpy())}: top-1 {metrics['top1']:.2f}%, top-5 "
                 f"{metrics['top5']:.2f}%, loss {metrics['loss']:.4f} ({metrics['examples']} images"
                 f"{', EMA weights' if self.ema else ''})")
        self.metrics.write("validation", int(self.step.numpy()), **metrics)
        if export and self.chief:
            path = self.export()
            self.log(f"exported SavedModel: {path}")
        return metrics

    def _write_recipe(self):
        if not self.chief:
            return
        path = os.path.join(self.model_dir, "recipe.yaml")
        text = self.recipe.to_yaml()
        if os.path.exists(path):
            from regnet_tf.train import recipe as recipe_lib

            with open(path, encoding="utf-8") as f:
                old = recipe_lib.from_dict(__import__("yaml").safe_load(f))
            changes = recipe_lib.diff(old, self.recipe)
            model_changes = {k: v for k, v in changes.items() if k.startswith("model.")
                             or k in ("data.image_size", "data.num_classes")}
            if model_changes:
                raise TrainingError(f"{self.model_dir} holds a run of a different model ({model_changes}); its "
                                    "checkpoints cannot be resumed with this recipe. Use another --model_dir.")
            if changes:
                self.log(f"note: the recipe differs from the one this model_dir was started with: {changes}")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)

    def _boundaries(self, step):
        """The next step at which the current loop must stop: loop size, checkpoint, evaluation, epoch end."""
        r, spe = self.recipe.train, self.steps_per_epoch
        loop = r.steps_per_loop or min(100, spe)
        nxt = min(step + loop, self.total_steps, (step // spe + 1) * spe)
        if r.checkpoint_every_steps:
            nxt = min(nxt, (step // r.checkpoint_every_steps + 1) * r.checkpoint_every_steps)
        return nxt

    def _train_from(self, step):
        r, spe = self.recipe.train, self.steps_per_epoch
        if step >= self.total_steps:
            return
        train_loop = self._make_train_loop()
        iterator = iter(self._dataset("train", training=True))
        eval_every = max(1, round(r.eval_every_epochs * spe)) if r.eval_every_epochs > 0 else 0
        log_every = r.log_every_steps
        epochs = math.ceil(self.total_steps / spe)
        progbar, last_log = None, step
        while step < self.total_steps:
            epoch = step // spe
            if progbar is None:
                self.log(f"Epoch {epoch + 1}/{epochs}")
                target = min(spe, self.total_steps - epoch * spe)
                progbar = keras.utils.Progbar(target, stateful_metrics=["lr", "images/s"],
                                              verbose=1 if self.chief else 0)
                progbar.update(step - epoch * spe)
            nxt = self._boundaries(step)
            t0 = time.time()
            totals, bad_step = train_loop(iterator, tf.constant(nxt - step, tf.int64))
            bad_step = int(bad_step)
            if bad_step >= 0:
                last = self.manager.latest_checkpoint
                raise TrainingError(
                    f"the loss became {float(totals['loss']):.4g} (not finite) at step {bad_step} (epoch "
                    f"{bad_step / spe:.2f}, lr {float(self.lr(bad_step - 1)):.4g}); training stopped. The last good "
                    f"checkpoint is {last or '(none yet)'}; nothing was saved after the bad step. Lower the learning "
                    f"rate (schedule.base_lr), add warmup, or check the data, then rerun with the same --model_dir.")
            seconds = time.time() - t0
            n = nxt - step
            step = nxt
            count = max(float(totals["count"]), 1.0)
            values = {"loss": float(totals["loss"]) / n, "top1": 100.0 * float(totals["top1"]) / count,
                      "top5": 100.0 * float(totals["top5"]) / count, "lr": float(self.lr(step - 1)),
                      "images/s": n * r.global_batch_size / max(seconds, 1e-9)}
            progbar.update(step - epoch * spe, values=list(values.items()))
            if not log_every or step - last_log >= log_every or step == self.total_steps:
                self.metrics.write("train", step, epoch=step / spe,
                                   **{k.replace("images/s", "images_per_sec"): v for k, v in values.items()})
                last_log = step
            epoch_end = step % spe == 0 or step == self.total_steps
            if (r.checkpoint_every_steps and step % r.checkpoint_every_steps == 0) or \
                    (not r.checkpoint_every_steps and epoch_end) or step == self.total_steps:
                self.save()
            if epoch_end:
                progbar = None
            if eval_every and step % eval_every == 0 and step < self.total_steps:
                m = self.evaluate()
                self.log(f"validation at step {step} (epoch {step / spe:.2f}): top-1 {m['top1']:.2f}%, top-5 "
                         f"{m['top5']:.2f}%, loss {m['loss']:.4f}")
                self.metrics.write("validation", step, epoch=step / spe, **m)
            if self._stop_signal is not None:
                path = self.save()
                self.log(f"received signal {self._stop_signal}: saved {path} at step {step}; exiting")
                sys.exit(128 + int(self._stop_signal))

    # ---- export
    def export(self, export_dir=None, overwrite=True):
        """A SavedModel of the EMA (or raw) weights in float32, `model_dir/export/<step>` by default."""
        from regnet_tf.train.export import export_saved_model

        step = int(self.step.numpy())
        export_dir = export_dir or os.path.join(self.model_dir, "export", str(step))
        with self.ema_weights():
            weights = self.model.get_weights()
        model = serving_model(self.spec, self.recipe, weights)
        d = self.recipe.data
        return export_saved_model(model, export_dir, image_size=d.image_size, eval_mode=d.eval_mode,
                                  crop_fraction=d.eval_crop_fraction, short_side=d.eval_short_side,
                                  resize_method=d.resize_method, label_map=label_map_path(d),
                                  label_offset=d.label_offset if d.source in ("tfrecord", "demo") else 0,
                                  metadata={"recipe": self.recipe.name, "model": self.recipe.model.name,
                                            "step": step, "ema": self.ema is not None}, overwrite=overwrite)


def serving_model(spec, recipe, weights):
    """A float32 copy of the model (outside any strategy) holding `weights`."""
    from regnet_tf.applications import build_model

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        size = recipe.data.image_size
        model = build_model(spec, classes=recipe.data.num_classes, input_shape=(size, size, 3),
                            classifier_activation=None, name=recipe.model.name or None)
        model.set_weights(weights)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return model


def label_map_path(data_config):
    """The dataset's label_map.txt when it has one (tfrecord / demo data)."""
    if data_config.source == "demo":
        from regnet_tf.data import demo

        return os.path.join(demo.ensure(data_config.data_dir), "label_map.txt")
    if data_config.source == "tfrecord" and data_config.data_dir:
        path = os.path.join(data_config.data_dir, "label_map.txt")
        return path if tf.io.gfile.exists(path) else None
    return None


def _main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


def check_data(config, splits=("train", "validation")):
    """Fails early, with the expected layout and the demo alternative, when a recipe's data is not there."""
    from regnet_tf.data import sources

    if config.source == "tfrecord":
        for split in splits:
            sources.list_files(config, split)
    elif config.source == "folder":
        from regnet_tf.data.records import list_image_folder

        root = sources._data_dir(config)  # noqa: SLF001 - the same error message as the pipeline's
        list_image_folder(root)


def evaluate_saved_model(export_dir, data_config, split="validation", batch_size=100, steps=0):
    """Top-1 / top-5 of an exported SavedModel through its `serving_default` signature (image bytes in), i.e. with
    the preprocessing inside the graph, on a data source's split."""
    from regnet_tf.data.sources import encoded_dataset

    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    top1 = top5 = count = 0
    for i, (encoded, labels) in enumerate(encoded_dataset(data_config, split).batch(batch_size)):
        if steps and i >= steps:
            break
        logits = serve(image_bytes=encoded)["logits"]
        top1 += float(optim.topk_correct(labels, logits, 1))
        top5 += float(optim.topk_correct(labels, logits, 5))
        count += int(labels.shape[0])
    if not count:
        raise TrainingError(f"no {split} images found for {data_config.source} data")
    return {"top1": 100.0 * top1 / count, "top5": 100.0 * top5 / count, "examples": count}


def load_run(model_dir, overrides=()):
    """The recipe a model_dir was trained with (model_dir/recipe.yaml), with `overrides` applied."""
    from regnet_tf.train import recipe as recipe_lib

    path = os.path.join(model_dir, "recipe.yaml")
    if not os.path.exists(path):
        raise TrainingError(f"{model_dir} holds no recipe.yaml: not a model_dir written by launch/train.py "
                            "(or the path is wrong)")
    with open(path, encoding="utf-8") as f:
        raw = __import__("yaml").safe_load(f)
    return recipe_lib.from_dict(recipe_lib.apply_overrides(raw, overrides), name=raw.get("name", ""))
