"""The pieces of the Trainer's host loop, between two compiled loops of steps: when it stops, logs, checkpoints and
evaluates (`Cadence`), the per-epoch Keras progress bar (`EpochProgress`), and the SIGTERM flag (`StopSignal`) that
turns a preemption into a checkpoint and a clean exit."""

from __future__ import annotations

import dataclasses
import math
import signal
import threading

import keras

from regnet_tf.train import swa


@dataclasses.dataclass
class Cadence:
    """When the host loop stops, logs, checkpoints and evaluates (steps counted from 0 to `total`).

    A compiled loop runs `steps_per_loop` steps (0: min(100, an epoch)) and never crosses an epoch end or a
    checkpoint step. Checkpoints: every `checkpoint_every` steps (0: at each epoch end) and at the last step.
    Evaluations: every `eval_every_epochs` (0: none; the final evaluation is the Trainer's). Train logs: when
    `log_every` steps have passed since the last (0: after every loop) and at the last step. SWA snapshots
    (`swa_period` > 0): at the multiples of `swa_period` from step `swa_first` on, and at the last step; loops stop
    there too (`regnet_tf.train.swa`).
    """

    total: int
    steps_per_epoch: int
    steps_per_loop: int = 0
    checkpoint_every: int = 0
    eval_every_epochs: float = 0.0
    log_every: int = 0
    last_log: int = 0
    swa_first: int = 0
    swa_period: int = 0
    boundary: int = 0  # > 0: a loop ends at this step too (the end of fine-tuning's frozen phase)

    def next_stop(self, step):
        spe, every = self.steps_per_epoch, self.checkpoint_every
        nxt = min(step + (self.steps_per_loop or min(100, spe)), self.total, (step // spe + 1) * spe)
        if self.swa_period:
            nxt = min(nxt, swa.next_snapshot(step, self.swa_first, self.swa_period))
        if step < self.boundary:
            nxt = min(nxt, self.boundary)
        return min(nxt, (step // every + 1) * every) if every else nxt

    def swa_due(self, step):
        return bool(self.swa_period) and swa.snapshot_due(step, self.total, self.swa_first, self.swa_period)

    def evals_between(self, a, b):
        """How many evaluations during training fall in the steps (a, b]."""
        if self.eval_every_epochs <= 0:
            return 0
        q = max(1, round(self.eval_every_epochs * self.steps_per_epoch))
        b = min(b, self.total - 1)
        return max(0, b // q - a // q)

    def epoch_end(self, step):
        return step % self.steps_per_epoch == 0 or step == self.total

    def checkpoint_due(self, step):
        every = self.checkpoint_every
        return (step % every == 0 if every else self.epoch_end(step)) or step == self.total

    def eval_due(self, step):
        if self.eval_every_epochs <= 0 or step >= self.total:
            return False
        return step % max(1, round(self.eval_every_epochs * self.steps_per_epoch)) == 0

    def log_due(self, step):
        """True (and remembers the step) when the train scalars are due."""
        due = not self.log_every or step - self.last_log >= self.log_every or step == self.total
        if due:
            self.last_log = step
        return due


class EpochProgress:
    """The Keras progress bar of the current epoch: `Epoch i/n` and a new bar when an epoch starts."""

    def __init__(self, steps_per_epoch, total, log, verbose=True):
        self.spe, self.total, self.log, self.verbose = steps_per_epoch, total, log, verbose
        self.epochs = math.ceil(total / steps_per_epoch)
        self.epoch, self.bar = 0, None

    def start(self, step):
        """Before a loop from `step`: opens the epoch's bar if none is open."""
        if self.bar is not None:
            return
        self.epoch = step // self.spe
        self.log(f"Epoch {self.epoch + 1}/{self.epochs}")
        target = min(self.spe, self.total - self.epoch * self.spe)
        self.bar = keras.utils.Progbar(target, stateful_metrics=["lr", "images/s"], verbose=1 if self.verbose else 0)
        self.bar.update(step - self.epoch * self.spe)

    def note(self, message):
        """Logs a message between loops, on its own line when it comes in the middle of an epoch's bar."""
        self.log(("\n" if self.bar is not None and self.verbose else "") + message)

    def advance(self, step, values):
        """After a loop that ended at `step`; closes the bar at the epoch's end."""
        self.bar.update(step - self.epoch * self.spe, values=list(values.items()))
        if step % self.spe == 0 or step == self.total:
            self.bar = None


class StopSignal:
    """Within the block, SIGTERM (preemption) sets `signum` instead of killing the process; the loop saves and
    exits at its next stop. Outside the main thread (no signal handlers there) nothing is installed."""

    def __init__(self):
        self.signum, self._old = None, None

    def _on_signal(self, signum, frame):  # noqa: ARG002
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
            self._old = None
        return False
