"""The Trainer: one code path for the default (CPU/one-GPU), Mirrored, MultiWorkerMirrored and TPU strategies.
Length: one class, the host loop and the compiled steps together; what they call is in cadence, optim, swa, best,
finetune and evaluate.

    strategy = distribute.make_strategy("auto")
    trainer = Trainer(recipe, model_dir, strategy)
    trainer.train()            # resumes from model_dir's last checkpoint; evaluates; exports at the end

A training step (per replica, inside `strategy.run`): forward in training mode -> softmax cross-entropy (label
smoothing; soft labels from MixUp/CutMix) summed and divided by the *global* batch size, + the L2 term divided by
the number of replicas -> gradients (Keras's optimizer sums them over replicas) -> SGD -> then, in cross-replica
context, the EMA update (SWA snapshots are taken between loops, `regnet_tf.train.swa`). `steps_per_loop` steps run
inside one tf.function (a tf.while_loop); between loops the host updates the progress bar (`EpochProgress`), guards
against a non-finite loss, and logs, checkpoints and evaluates when `Cadence` says so; a SIGTERM (`StopSignal`)
saves and exits there.

Checkpoints (`model_dir/checkpoints/ckpt-<step>`): model, optimizer, EMA or SWA, step, every
`checkpoint_every_steps` (or every epoch). TensorFlow writes a checkpoint's files first and updates the `checkpoint`
index file afterwards with an atomic rename, so a run killed mid-save restarts from the previous checkpoint; a
checkpoint that fails to load falls back to the one before it. A NaN or infinite loss stops training naming the
step, and keeps the last good checkpoint (nothing is saved after the bad step). SIGTERM (preemption) saves a
checkpoint and exits.

Evaluation during training uses the "minival" split when data.minival_shards > 0 (else "validation"), and with
train.keep_best feeds the best checkpoint / early stopping (`regnet_tf.train.best`); the final evaluation reports
minival and validation, from the best checkpoint when keep_best.

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

from regnet_tf.data import folder, sources
from regnet_tf.train import TrainingError, distribute, finetune, optim
from regnet_tf.train import swa as swa_lib
from regnet_tf.train.best import BestCheckpoint
from regnet_tf.train.cadence import Cadence, EpochProgress, StopSignal
from regnet_tf.train.evaluate import describe_run, run_model, serving_model, topk_correct, write_run_recipe
from regnet_tf.train.export import export_saved_model
from regnet_tf.train.logs import MetricsLog

EVAL_KEYS = ("ce_sum", "top1", "top5", "count")


class Trainer:
    """Builds the model, optimizer, EMA, datasets and checkpoints of a recipe under a strategy; trains, evaluates,
    exports. `log`: a function taking a string (default print to stdout)."""

    def __init__(self, recipe, model_dir, strategy=None, log=None):
        self.model_dir = model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.log = log or (lambda s: print(s, flush=True))
        self.chief = distribute.is_chief(self.strategy)
        os.makedirs(model_dir, exist_ok=True)
        # an image folder's classes and held-out split (kept in model_dir: the same on resume); other sources as is
        self.recipe = recipe = dataclasses.replace(recipe, data=folder.resolve(
            recipe.data, model_dir, self.log if self.chief else None))  # every worker computes the same split
        self.init = finetune.resolve(recipe, model_dir, self.chief, self.log)  # the weights fine-tuning starts from
        self.policy = distribute.precision_policy(recipe.runtime.mixed_precision, self.strategy)
        self.xla = distribute.use_xla(recipe.runtime.xla, self.strategy)
        self.spec = recipe.spec()
        self.num_classes = recipe.data.num_classes
        self.steps_per_epoch = recipe.steps_per_epoch()
        self.total_steps = recipe.total_steps()
        self._eval_step = None
        self._build()

    # ---- construction
    def _build(self):
        r = self.recipe
        keras.utils.set_random_seed(r.runtime.seed)
        keras.mixed_precision.set_global_policy(self.policy)
        with self.strategy.scope():
            self.model = run_model(self.spec, r, self.init.config if self.init else None)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
            self.lr = optim.LearningRate(r.schedule, r.peak_lr(), self.total_steps, self.steps_per_epoch)
            self.optimizer = optim.make_optimizer(r.optimizer, lambda: self.lr(self.step), self.model,
                                                  loss_scale=self.policy == "mixed_float16")
            self.optimizer.build(self.model.trainable_variables)
            self.ema = optim.EMA(self.model, r.ema.decay, r.ema.dynamic) if r.ema.decay > 0 else None
            self.swa = swa_lib.SWA(self.model) if r.swa.enabled else None
        self.plan = finetune.Plan.of(r, self.spec, self.steps_per_epoch, self.total_steps)
        self._set_phase(frozen=False)
        self.l2 = r.optimizer.weight_decay if r.optimizer.weight_decay_mode == "l2" else 0.0
        items = dict(model=self.model, optimizer=self.optimizer, step=self.step)
        items.update({k: v for k, v in (("ema", self.ema), ("swa", self.swa)) if v is not None})
        self.checkpoint = tf.train.Checkpoint(**items)
        directory = os.path.join(self.model_dir, "checkpoints")
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=r.train.keep_checkpoints,
                                                  step_counter=self.step)
        self.metrics = MetricsLog(self.model_dir, enabled=self.chief)
        self.eval_split = "minival" if r.data.minival_shards > 0 else "validation"
        self.best = BestCheckpoint(self.model_dir, self.checkpoint, r.train.patience, self.chief, getattr(
            getattr(self.strategy, "cluster_resolver", None), "task_id", 0)) if r.train.keep_best else None

    def _set_phase(self, frozen):
        """Fine-tuning's phase (`finetune.Plan`): the variables that train (the classifier alone while the backbone is
        frozen), their gradient multipliers, the decayed ones, the BN layers' mode. A new train loop must be traced
        after a change (`_make_train_loop`)."""
        self.frozen = frozen
        self.train_vars = self.plan.set_phase(self.model, frozen)
        self.grad_scales = [self.plan.multiplier(v) for v in self.train_vars]
        decayed = {id(v) for v in optim.decayed_variables(self.model, self.recipe.optimizer.decay_all)}
        self.decay_vars = [v for v in self.train_vars if id(v) in decayed]

    def describe(self):
        """Multi-line summary: the model, its complexity at the training resolution, the run's shape."""
        return describe_run(self)

    # ---- data
    def _dataset(self, split, training, seed_shift=0):
        config = self.recipe.data
        if training and config.seed is not None:
            # a resumed run continues with a fresh, still reproducible, order instead of replaying the first batches
            config = dataclasses.replace(config, seed=config.seed + int(self.step.numpy()) + seed_shift)
        batch = self.recipe.train.global_batch_size
        if not training:
            batch = min(batch, config.num_examples(split))
        return self.strategy.distribute_datasets_from_function(
            lambda ctx: sources.input_pipeline(config, split, batch, ctx, training=training))

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
        variables = self.train_vars
        grads = tape.gradient(scaled, variables)
        grads = [g if m == 1 else g * m for g, m in zip(grads, self.grad_scales)]  # per-stage / classifier lr
        self.optimizer.apply_gradients(zip(grads, variables))
        n = tf.cast(tf.shape(logits)[0], tf.float32)
        return {"loss": loss * replicas, "ce_sum": tf.reduce_sum(ce), "top1": topk_correct(labels, logits, 1),
                "top5": topk_correct(labels, logits, 5), "count": n}

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
            return {"ce_sum": tf.reduce_sum(ce), "top1": topk_correct(labels, logits, 1),
                    "top5": topk_correct(labels, logits, 5), "count": tf.cast(tf.shape(logits)[0], tf.float32)}

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
        """Within the block the model holds the averaged weights: the EMA's, or SWA's (with BN statistics recomputed
        for them) once it has a snapshot; else the raw weights."""
        swap = self._swap_ema if self.ema is not None else None
        if self.swa is not None and int(self.swa.count.numpy()):
            self._swa_bn()
            swap = self.swa.swap
        if swap is None:
            self._sync_replicas()
            yield
            return
        swap()
        try:
            yield
        finally:
            swap()

    def _swa_bn(self):
        """Recomputes SWA's BN statistics when snapshots were added since they were computed."""
        if not self.swa.bn_current():
            n = swa_lib.bn_batches(self.recipe.swa.bn_examples, self.recipe.train.global_batch_size,
                                   self.steps_per_epoch)
            self.swa.recompute_bn(self.strategy, self._dataset("train", True, seed_shift=7919), n, self.log)

    def weights_note(self):
        """How the evaluated weights were made: ', EMA weights', ', SWA of n snapshots' or ''."""
        return swa_lib.weights_note(self.ema, self.swa)

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
        """Top-1 / top-5 / loss on a split (evaluation view), with the averaged weights (`ema_weights`)."""
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
        if self.chief:
            write_run_recipe(self.model_dir, self.recipe, self.log)
        start = self.restore()
        if not start and self.init is not None:
            finetune.load(self.model, self.init, finetune.class_names(self.recipe.data), self.log)
            if self.ema is not None:
                self.ema.reset()  # the average starts at the loaded weights, not at the random ones
        self.log(self.describe())
        if start >= self.total_steps:
            self.log(f"model_dir already holds the final step {start}; evaluating")
        elif start:
            self.log(f"resuming from step {start} (epoch {start / self.steps_per_epoch:.2f})")
        stopped = self.best.stopped_at if self.best else None
        if stopped is not None:
            self.log(f"this run stopped early at step {stopped} (train.patience): no further training")
        else:
            with StopSignal() as stop:
                self._train_from(start, stop)
        if self.best is not None:
            self.best.finish(int(self.step.numpy()), self.steps_per_epoch, lambda: self.evaluate(split=self.eval_split),
                             self.eval_split, self.metrics, self.log)
        step = int(self.step.numpy())
        self.final_metrics = {}
        for split in dict.fromkeys((self.eval_split, "validation")):
            m = self.final_metrics[split] = self.evaluate(split=split)
            self.log(f"final evaluation at step {step} on {split}: top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}%, "
                     f"loss {m['loss']:.4f} ({m['examples']} images{self.weights_note()})")
            self.metrics.write(split, step, **m)
        metrics = self.final_metrics["validation"]
        if export and self.chief:
            path = self.export()
            self.log(f"exported SavedModel: {path}")
        return metrics

    def _train_from(self, step, stop):
        """The host loop: compiled loops of steps, and between them the progress bar, the NaN guard, the logs,
        checkpoints, evaluations and the SIGTERM exit."""
        if step >= self.total_steps:
            return
        t = self.recipe.train
        first, period = swa_lib.snapshot_steps(self.total_steps, self.steps_per_epoch, self.recipe.swa.start,
                                               self.recipe.swa.every_epochs) if self.swa else (0, 0)
        cadence = Cadence(self.total_steps, self.steps_per_epoch, t.steps_per_loop, t.checkpoint_every_steps,
                          t.eval_every_epochs, t.log_every_steps, last_log=step, swa_first=first, swa_period=period,
                          boundary=self.plan.freeze_steps)
        if self.best is not None and self.best.info:  # resumed: evaluations since the known best count
            self.best.since_best = cadence.evals_between(self.best.info["step"], step)
        progress = EpochProgress(self.steps_per_epoch, self.total_steps, self.log, verbose=self.chief)
        train_loop = None
        iterator = iter(self._dataset("train", training=True))
        while step < self.total_steps:
            if train_loop is None or self.plan.frozen(step) != self.frozen:
                if train_loop is not None:
                    progress.note(f"step {step} (epoch {step / self.steps_per_epoch:.2f}): the backbone is unfrozen; "
                                  "every layer trains from here")
                self._set_phase(self.plan.frozen(step))
                train_loop = self._make_train_loop()
            progress.start(step)
            nxt = cadence.next_stop(step)
            t0 = time.time()
            totals, bad_step = train_loop(iterator, tf.constant(nxt - step, tf.int64))
            self._check_finite(totals, int(bad_step))
            values = self._loop_values(totals, nxt - step, time.time() - t0, nxt)
            step = nxt
            progress.advance(step, values)
            if cadence.swa_due(step):
                self.swa.update()
                if step == self.total_steps:  # the last checkpoint holds the BN statistics evaluated and exported
                    self._swa_bn()
            if cadence.log_due(step):
                self._log_train(step, values)
            if cadence.checkpoint_due(step):
                self.save()
            if cadence.eval_due(step) and self._evaluate_during_training(step):
                return
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
        extra = {"swa_snapshots": int(self.swa.count.numpy())} if self.swa is not None else {}
        self.metrics.write("train", step, epoch=step / self.steps_per_epoch, **extra,
                           **{k.replace("images/s", "images_per_sec"): v for k, v in values.items()})

    def _save_and_exit(self, step, signum):
        """After a SIGTERM (preemption): a checkpoint of this step, then exit with 128 + the signal number."""
        path = self.save()
        self.log(f"received signal {signum}: saved {path} at step {step}; exiting")
        sys.exit(128 + int(signum))

    def _evaluate_during_training(self, step):
        """Evaluates on minival (or validation); with keep_best updates the best checkpoint. True: stop early."""
        split, epoch = self.eval_split, step / self.steps_per_epoch
        m = self.evaluate(split=split)
        self.log(f"{split} at step {step} (epoch {epoch:.2f}): top-1 {m['top1']:.2f}%, top-5 {m['top5']:.2f}%, "
                 f"loss {m['loss']:.4f}{self.weights_note()}")
        self.metrics.write(split, step, epoch=epoch, **m)
        return self.best is not None and self.best.after_evaluation(step, epoch, m["top1"], split, self.save, self.log)

    # ---- export
    def export(self, export_dir=None, overwrite=True, **limits):
        """A SavedModel of the EMA (or raw) weights in float32, `model_dir/export/<step>` by default."""
        model, metadata = self.inference_model()
        d = self.recipe.data
        export_dir = export_dir or os.path.join(self.model_dir, "export", str(metadata["step"]))
        return export_saved_model(model, export_dir, image_size=d.image_size, **d.eval_preprocessing,
                                  label_map=sources.label_map_path(d),
                                  label_offset=d.stored_label_offset, metadata=metadata,
                                  overwrite=overwrite, **{"max_pixels": d.max_pixels, **limits})

    def inference_model(self):
        """(a float32 copy of the model holding the evaluated weights - EMA, SWA or raw -, the exports' metadata)."""
        step = int(self.step.numpy())
        with self.ema_weights():
            weights = self.model.get_weights()
        note = self.weights_note()
        model = serving_model(self.spec, self.recipe, weights, self.init.config if self.init else None)
        return model, {"recipe": self.recipe.name, "model": self.recipe.model.name or self.recipe.model.kind,
                       "step": step, "ema": self.ema is not None, "averaged": note[2:] or "raw weights",
                       "init": self.init.source if self.init else "random"}
