"""The best checkpoint and early stopping (`train.keep_best`, `train.patience`; Revisiting ResNets, appendix B:
"early stopping on the minival-set").

After each evaluation during training, a top-1 above the best so far writes the whole `tf.train.Checkpoint`
(model, optimizer, EMA / SWA with its recomputed BN statistics, step) to `model_dir/best/ckpt` with
`model_dir/best/best.json` (step, epoch, top1, split). The write is atomic: into `model_dir/.best-tmp`, then the
old directory is renamed away, the new one renamed in, the old one deleted; a crash between the two renames leaves
`model_dir/.best-old`, which is read back. `patience` > 0 stops training after that many evaluations without a new
best; best.json then records `stopped_at`, so a rerun of the same model_dir does not train further.
"""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

from regnet_tf.files import write_atomic

BEST, TMP, OLD = "best", ".best-tmp", ".best-old"


class BestCheckpoint:
    """The best evaluation of a run so far (`info`: the dict of best.json, or None) and the patience counter."""

    def __init__(self, model_dir, checkpoint, patience=0, chief=True, worker_id=0):
        self.model_dir, self.checkpoint, self.patience = model_dir, checkpoint, patience
        self.chief, self.worker_id = chief, worker_id
        self.dir = os.path.join(model_dir, BEST)
        self.info = self._read()
        self.since_best = 0  # evaluations without a new best since the best one

    def _read(self):
        for name in (BEST, OLD):
            path = os.path.join(self.model_dir, name, "best.json")
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    info = json.load(f)
                info["path"] = os.path.join(self.model_dir, name, "ckpt")
                return info
        return None

    @property
    def top1(self):
        return self.info["top1"] if self.info else float("-inf")

    @property
    def stopped_at(self):
        return self.info.get("stopped_at") if self.info else None

    def update(self, step, epoch, top1, split):
        """After an evaluation: writes the checkpoint when `top1` is a new best; returns True when it is."""
        if top1 <= self.top1:
            self.since_best += 1
            return False
        info = {"step": int(step), "epoch": round(float(epoch), 4), "top1": float(top1), "split": split}
        self.checkpoint.save_counter  # noqa: B018 - created now if not yet: `restore` then matches every object
        if not self.chief:  # every worker takes part in writing (MultiWorkerMirrored); the chief's files are kept
            tmp = os.path.join(self.model_dir, f".best-worker-{self.worker_id}")
            self.checkpoint.write(os.path.join(tmp, "ckpt"))
            tf.io.gfile.rmtree(tmp)
        else:
            tmp, old = os.path.join(self.model_dir, TMP), os.path.join(self.model_dir, OLD)
            shutil.rmtree(tmp, ignore_errors=True)
            self.checkpoint.write(os.path.join(tmp, "ckpt"))
            _write_json(os.path.join(tmp, "best.json"), info)
            if os.path.exists(self.dir):
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.dir, old)
            os.replace(tmp, self.dir)
            shutil.rmtree(old, ignore_errors=True)
        self.info = dict(info, path=os.path.join(self.dir, "ckpt"))
        self.since_best = 0
        return True

    def after_evaluation(self, step, epoch, top1, split, save, log):
        """The best checkpoint after an evaluation during training; True when patience says stop (then `save()`
        writes a regular checkpoint and best.json records the stop)."""
        if self.update(step, epoch, top1, split):
            log(f"new best {split} top-1 {top1:.2f}% at step {step}: saved to {self.dir}")
        if not (self.patience > 0 and self.since_best >= self.patience):
            return False
        save()
        self.mark_stopped(step)
        log(f"early stopping at step {step}: no better {split} top-1 in {self.since_best} evaluations "
            f"(train.patience); best {self.top1:.2f}% at step {self.info['step']}")
        return True

    def mark_stopped(self, step):
        """Records in best.json that training stopped early at `step`."""
        self.info["stopped_at"] = int(step)
        if self.chief:
            _write_json(os.path.join(os.path.dirname(self.info["path"]), "best.json"),
                        {k: v for k, v in self.info.items() if k != "path"})

    def restore(self):
        """Restores the best checkpoint into the run's objects; returns its step."""
        self.checkpoint.read(self.info["path"]).assert_existing_objects_matched()
        return self.info["step"]

    def finish(self, step, steps_per_epoch, evaluate, split, metrics, log):
        """At the end of training: the final weights at `step` compete too (unless training stopped early; `evaluate`
        gives their metrics), then the best checkpoint is restored and logged (console, a "best" record)."""
        if self.stopped_at is None and (self.info is None or self.info["step"] < step):
            self.update(step, step / steps_per_epoch, evaluate()["top1"], split)
        info = self.info
        if info["step"] != step:
            self.restore()
        log(f"best checkpoint: step {info['step']} (epoch {info['epoch']:.2f}), {info['split']} top-1 "
            f"{info['top1']:.2f}%; the final evaluation and the export use it")
        values = {k: v for k, v in info.items() if k not in ("path", "step", "split")}
        metrics.write("best", info["step"], eval_split=info["split"], **values)


def _write_json(path, value):
    write_atomic(path, json.dumps(value, indent=1))
