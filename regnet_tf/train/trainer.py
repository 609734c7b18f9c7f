"""The Trainer: one code path for the default (CPU/one-GPU), Mirrored, MultiWorkerMirrored and TPU strategies.

    strategy = distribute.make_strategy("auto")
    trainer = Trainer(recipe, model_dir, strategy)
    trainer.train()            # resumes from model_dir's last checkpoint; evaluates; exports at the end

A training step (per replica, inside `strategy.run`): forward in training mode -> softmax cross-entropy (label
smoothing; soft labels from MixUp/CutMix) summed and divided by the *global* batch size, + the L2 term divided by
the number of replicas -> gradients (Keras's optimizer sums them over replicas) -> SGD -> then, in cross-replica
context, the EMA update. `steps_per_loop` steps run inside one tf.function (a tf.while_loop); between loops the
host updates the progress bar (`EpochProgress`), guards against a non-finite loss, and logs, checkpoints and
evaluates when `Cadence` says so; a SIGTERM (`StopSignal`) saves and exits there.

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
import dataclasses
import os
import sys
import time

import keras
import tensorflow as tf
import yaml

from regnet_tf.train import TrainingError, distribute, optim
from regnet_tf.train import recipe as recipe_lib
from regnet_tf.train.cadence import Cadence, EpochProgress, StopSignal
from regnet_tf.train.logs import MetricsLog

EVAL_KEYS = ("ce_sum", "top1", "top5", "count")


class Trainer:
    """Builds the model, optimizer, EMA, datasets and checkpoints of a recipe under a strategy; trains, evaluates,
    exports. `log`: a function taking a string (default print to stdout)."""

    def __init__(self, recipe, model_dir, strategy=None, log=None):
        self.recipe, self.model_dir = recipe, model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.log = log or (lambda s: print(s, flush=True))
        self.chief = distribute.is_chief(self.strategy)
        self.policy = distribute.precision_policy(recipe.runtime.mixed_precision, self.strategy)
        self.xla = distribute.use_xla(recipe.runtime.xla, self.strategy)
        self.spec = recipe.spec()
        self.num_classes = recipe.data.num_classes
        self.steps_per_epoch = recipe.steps_per_epoch()
        self.total_steps = recipe.total_steps()
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
        lines = [f"model: {r.model.name or r.model.kind} {type(self.spec).__name__} at {r.data.image_size} px, "
                 f"{self.num_classes} classes"]
        if cx:
            lines.append(f"complexity: {cx['flops'] / 1e9:.3f} GMACs (multiply-adds), {cx['params'] / 1e6:.3f} M "
                         f"params, {cx['acts'] / 1e6:.3f} M acts")
        lines.append(f"strategy: {distribute.strategy_name(self.strategy)} with "
                     f"{self.strategy.num_replicas_in_sync} replica(s); precision {self.policy}; XLA "
                     f"{'on' if self.xla else 'off'}")
        lines.append(f"schedule: {self.total_steps} steps ({self.total_steps / self.steps_per_epoch:.2f} epochs of "
                     f"{self.steps_per_epoch} steps), global batch {r.train.global_batch_size}, peak lr "
                     f"{r.peak_lr():.4g} ({r.schedule.name})")
        return "\n".join(lines)

    # ---- data
    def _dataset(self, split, training):
        from regnet_tf.data.sources import input_pipeline

        config = self.recipe.data
        if training and config.seed is not None:
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
            scaled = self.optimizer.scale_loss(loss)  # the loss itself, unless a LossScaleOptimizer (float16)
        variables = self.model.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        n = tf.cast(tf.shape(logits)[0], tf.float32)
        return {"loss": loss * replicas, "ce_sum": tf.reduce_sum(ce), "top1": optim.topk_correct(labels, logits, 1),
                "top5": optim.topk_correct(labels, logits, 5), "count": n}

    def _make_train_loop(self):
        """tf.function(iterator, num_steps) -> (summed metrics, the first step with a non-finite loss or -1)."""
        replica_step = self._replica_train_step
        if self.xla:
            replica_step = tf.function(replica_step, jit_compile=True)
        strategy = self.strategy
        keys = ("loss",) + EVAL_KEYS

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
            return {name: strategy.reduce("SUM", out[name], axis=None) for name in EVAL_KEYS}

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

    def restore_or_fail(self, what="evaluate"):
        """`restore()`, or a TrainingError when model_dir holds no checkpoint; returns the step."""
        step = self.restore()
        if not step:
            raise TrainingError(f"nothing to {what}: no checkpoint in {self.manager.directory}")
        return step

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
        totals = dict.fromkeys(EVAL_KEYS, 0.0)
        steps = steps or self.recipe.train.eval_steps
        with self.ema_weights():
            for i, batch in enumerate(self._dataset(split, training=False)):
                if steps and i >= steps:
                    break
                out = self._eval_step(batch)
                for k in totals:
                    totals[k] += float(out[k])
        n = max(totals["count"], 1.0)
        return {"top1": 100.0 * totals["top1"] / n, "top5": 100.0 * totals["top5"] / n,
                "loss": totals["ce_sum"] / n, "examples": int(totals["count"])}

    # ---- training
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
        with StopSignal() as stop:
            self._train_from(start, stop)
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
        """Writes model_dir/recipe.yaml; refuses a model_dir started with another model, notes other changes."""
        if not self.chief:
            return
        path = os.path.join(self.model_dir, "recipe.yaml")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                old = recipe_lib.from_dict(yaml.safe_load(f))
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
            f.write(self.recipe.to_yaml())
        os.replace(tmp, path)

    def _train_from(self, step, stop):
        """The host loop: compiled loops of steps, and between them the progress bar, the NaN guard, the logs,
        checkpoints, evaluations and the SIGTERM exit."""
        if step >= self.total_steps:
            return
        t = self.recipe.train
        cadence = Cadence(self.total_steps, self.steps_per_epoch, t.steps_per_loop, t.checkpoint_every_steps,
                          t.eval_every_epochs, t.log_every_steps, last_log=step)
        progress = EpochProgress(self.steps_per_epoch, self.total_steps, self.log, verbose=self.chief)
        train_loop = self._make_train_loop()
        iterator = iter(self._dataset("train", training=True))
        while step < self.total_steps:
            progress.start(step)
            nxt = cadence.next_stop(step)
            t0 = time.time()
            totals, bad_step = train_loop(iterator, tf.constant(nxt - step, tf.int64))
            self._check_finite(totals, int(bad_step))
            values = self._loop_values(totals, nxt - step, time.time() - t0, nxt)
            step = nxt
            progress.advance(step, values)
            if cadence.log_due(step):
                self._log_train(step, values)
            if cadence.checkpoint_due(step):
                self.save()
            if cadence.eval_due(step):
                self._evaluate_during_training(step)
            if stop.signum is not None:
                self._save_and_exit(step, stop.signum)

    def _check_finite(self, totals, bad_step):
        """The NaN guard: a TrainingError naming the first step whose loss is not finite (`bad_step` >= 0)."""
        if bad_step < 0:
            return
        last = self.manager.latest_checkpoint
        raise TrainingError(
            f"the loss became {float(totals['loss']):.4g} (not finite) at step {bad_step} (epoch "
            f"{bad_step / self.steps_per_epoch:.2f}, lr {float(self.lr(bad_step - 1)):.4g}); training stopped. The "
            f"last good checkpoint is {last or '(none yet)'}; nothing was saved after the bad step. Lower the "
            f"learning rate (schedule.base_lr), add warmup, or check the data, then rerun with the same --model_dir.")

    def _loop_values(self, totals, n, seconds, step):
        """A loop's mean loss, top-1/5 (%), the lr of its last step and its throughput."""
        count = max(float(totals["count"]), 1.0)
        return {"loss": float(totals["loss"]) / n, "top1": 100.0 * float(totals["top1"]) / count,
                "top5": 100.0 * float(totals["top5"]) / count, "lr": float(self.lr(step - 1)),
                "images/s": n * self.recipe.train.global_batch_size / max(seconds, 1e-9)}

    def _log_train(self, step, values):
        self.metrics.write("train", step, epoch=step / self.steps_per_epoch,
                           **{k.replace("images/s", "images_per_sec"): v for k, v in values.items()})

    def _save_and_exit(self, step, signum):
        """After a SIGTERM (preemption): a checkpoint of this step, then exit with 128 + the signal number."""
        path = self.save()
        self.log(f"received signal {signum}: saved {path} at step {step}; exiting")
        sys.exit(128 + int(signum))

    def _evaluate_during_training(self, step):
        m = self.evaluate()
        epoch = step / self.steps_per_epoch
        self.log(f"validation at step {step} (epoch {epoch:.2f}): top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}%, "
                 f"loss {m['loss']:.4f}")
        self.metrics.write("validation", step, epoch=epoch, **m)

    # ---- export
    def export(self, export_dir=None, overwrite=True):
        """A SavedModel of the EMA (or raw) weights in float32, `model_dir/export/<step>` by default."""
        from regnet_tf.data import sources
        from regnet_tf.train.evaluate import serving_model
        from regnet_tf.train.export import export_saved_model

        step = int(self.step.numpy())
        export_dir = export_dir or os.path.join(self.model_dir, "export", str(step))
        with self.ema_weights():
            weights = self.model.get_weights()
        model = serving_model(self.spec, self.recipe, weights)
        d = self.recipe.data
        return export_saved_model(model, export_dir, image_size=d.image_size, eval_mode=d.eval_mode,
                                  crop_fraction=d.eval_crop_fraction, short_side=d.eval_short_side,
                                  resize_method=d.resize_method, label_map=sources.label_map_path(d),
                                  label_offset=d.stored_label_offset,
                                  metadata={"recipe": self.recipe.name, "model": self.recipe.model.name or
                                            self.recipe.model.kind, "step": step, "ema": self.ema is not None},
                                  overwrite=overwrite)
