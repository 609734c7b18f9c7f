"""The run's metric records: TensorBoard scalars and a JSON-lines log, written by the chief only."""

from __future__ import annotations

import json
import os
import time

import tensorflow as tf


class MetricsLog:
    """TensorBoard scalars (`model_dir/<split>`: train, validation, minival, best ...) and one JSON line per record
    (`model_dir/metrics.jsonl`: split, step, time, then the values); a no-op on non-chief workers."""

    def __init__(self, model_dir, enabled=True):
        self.enabled, self.model_dir = enabled, model_dir
        self.path = os.path.join(model_dir, "metrics.jsonl")
        self.writers = {}
        if enabled:
            for split in ("train", "validation"):
                self.writers[split] = tf.summary.create_file_writer(os.path.join(model_dir, split))

    def write(self, split, step, **values):
        if not self.enabled:
            return
        if split not in self.writers:  # another record name: its TensorBoard writer opens on first use
            self.writers[split] = tf.summary.create_file_writer(os.path.join(self.model_dir, split))
        with self.writers[split].as_default(step=step):
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    tf.summary.scalar(k, v)
        self.writers[split].flush()
        record = {"split": split, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
