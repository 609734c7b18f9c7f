"""ImageNet-1k class names and `decode_predictions` (Keras's semantics), from a bundled list: no download.

``imagenet_classes.txt`` (next to this module) has one ``synset_id<TAB>name`` line per class in the standard
class-index order (0 = n01440764 "tench, Tinca tinca", 207 = n02099601 "golden retriever"); the names are the
WordNet lemmas of timm's package data (tools/make_imagenet_classes.py writes the file). Unlike Keras's short
labels ("golden_retriever") they keep every lemma, so two classes called "crane" (bird, machine) stay apart by
their synset ids.
"""

from __future__ import annotations

import functools
import os
from typing import List, Tuple

import numpy as np

NUM_CLASSES = 1000
CLASSES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.txt")


@functools.lru_cache(maxsize=None)
def _read() -> Tuple[Tuple[str, str], ...]:
    with open(CLASSES_FILE, encoding="utf-8") as f:
        rows = tuple(tuple(line.rstrip("\n").split("\t", 1)) for line in f if line.strip())
    if len(rows) != NUM_CLASSES or any(len(r) != 2 for r in rows):
        raise RuntimeError(f"{CLASSES_FILE} is damaged: expected {NUM_CLASSES} 'synset<TAB>name' lines; reinstall "
                           "regnet_tf or run tools/make_imagenet_classes.py")
    return rows


def class_names() -> List[str]:
    """The 1000 class names, by class index."""
    return [name for _, name in _read()]


def synsets() -> List[str]:
    """The 1000 WordNet synset ids (e.g. "n01440764"), by class index."""
    return [synset for synset, _ in _read()]


def decode_predictions(preds, top: int = 5) -> List[List[Tuple[str, str, float]]]:
    """Per sample, the ``top`` classes as ``(synset_id, name, score)`` tuples, highest score first (equal scores:
    the lower class index first). ``preds``: ImageNet-1k scores (probabilities or logits) of shape
    (samples, 1000), a numpy array or a tensor."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_CLASSES:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape (samples, "
                         f"1000)). Received array with shape: {preds.shape}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"`top` must be a positive integer (the number of classes per sample). Received: top={top!r}")
    rows = _read()
    out = []
    for scores in preds:
        order = np.argsort(-scores.astype(np.float64), kind="stable")[:top]
        out.append([(rows[i][0], rows[i][1], float(scores[i])) for i in order])
    return out
