"""Input pipeline throughput (images/s): no augmentation, our RandAugment, Keras 3's RandAugment.

    from regnet_tf.data import bench
    bench.generate_photos("/tmp/photos", 512)                    # photo-like 300-500 px JPEG TFRecords
    rows = bench.run("/tmp/photos", image_size=224, batch=64, seconds=10)
    print(bench.format_table(rows))

Every variant is the full training pipeline of `regnet_tf.data.input_pipeline` (read, shuffle, Inception crop
decoded from the JPEG header, flip, resize, [augmentation], normalize, batch, prefetch); only the augmentation
differs. "keras" applies `keras.layers.RandAugment(value_range=(0, 255))` (its defaults: 2 ops, factor 0.5) per
image, in the same place as ours (after the resize, before normalization). Each variant runs `warmup` batches,
then counts images for `seconds` of wall time. `normalize=False` times the uint8 output (normalization on the
accelerator: `DataConfig(normalize=False)` with `include_preprocessing=True` models).
"""

from __future__ import annotations

import os
import time

import numpy as np

VARIANTS = ("none", "randaugment", "keras")
LABELS = {"none": "no augmentation", "randaugment": "RandAugment (regnet_tf)", "keras": "keras.layers.RandAugment"}
BFC_ENV = "TF_CPU_ALLOCATOR_USE_BFC"  # TensorFlow reads it when it creates its CPU allocator (docs/DATA.md)


def photo(rng, height, width):
    """A photo-like uint8 image: smooth random colour field, a few soft shapes, sensor-like noise."""
    import tensorflow as tf

    field = rng.uniform(0, 255, (1, 6, 6, 3)).astype(np.float32)
    image = tf.image.resize(field, [height, width], method="bicubic")[0].numpy()
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(rng.integers(3, 8)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.3) * height, rng.uniform(0.05, 0.3) * width
        m = np.clip(1.5 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2), 0, 1)[..., None]
        image = image * (1 - m) + rng.uniform(0, 255, 3) * m
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_photos(out_dir, count, min_size=300, max_size=500, shards=8, seed=0, quality=90):
    """Writes `count` photo-like JPEGs (height, width each in [min_size, max_size]) as train-* TFRecords."""
    import tensorflow as tf

    from regnet_tf.data.records import make_example, write_shards

    def example(i):
        rng = np.random.default_rng([seed, i])
        h, w = (int(s) for s in rng.integers(min_size, max_size + 1, 2))
        encoded = tf.io.encode_jpeg(photo(rng, h, w), quality=quality).numpy()
        return make_example(encoded, int(i % 1000) + 1, h, w, filename=f"photo_{i:06d}.jpg")

    return write_shards(map(example, range(count)), out_dir, "train", max(1, min(shards, count)))


def keras_randaugment():
    """Keras 3's RandAugment (0-255 images) as an `augment_fn(uint8 image, seed) -> uint8 image`."""
    import keras
    import tensorflow as tf

    layer = keras.layers.RandAugment(value_range=(0, 255))

    def augment(image, seed):
        del seed  # the layer draws from its own generator
        return tf.cast(tf.clip_by_value(layer(tf.cast(image, tf.float32)), 0, 255), tf.uint8)

    return augment


def measure(data_dir, variant, image_size=224, batch=64, seconds=10.0, warmup=3, num_layers=2, magnitude=15.0,
            shuffle_buffer=1024, normalize=True):
    """(images/s, process CPU seconds per image) of the training pipeline with augmentation `variant`."""
    from regnet_tf.data.sources import DataConfig, input_pipeline

    config = DataConfig(data_dir=data_dir, image_size=image_size, shuffle_buffer=shuffle_buffer, normalize=normalize,
                        randaug_layers=num_layers if variant == "randaugment" else 0, randaug_magnitude=magnitude)
    augment = keras_randaugment() if variant == "keras" else None
    it = iter(input_pipeline(config, "train", batch, augment_fn=augment))
    for _ in range(warmup):
        next(it)
    images, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        images += int(next(it)[0].shape[0])
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return images / elapsed, (time.process_time() - cpu) / images


def run(data_dir, variants=VARIANTS, log=None, repeats=1, **kwargs):
    """Rows {variant, label, images_per_s, cpu_ms, runs} (a variant whose module is missing is skipped and logged).

    Each variant is timed `repeats` times (a fresh pipeline each time); the row keeps the fastest run (other
    processes on the machine only ever slow a run down) and `runs` holds every (images/s, cpu_ms). cpu_ms is the
    CPU time of the whole process per image (all tf.data threads): 1000 / cpu_ms is the throughput one host core
    sustains, which other processes on the machine affect less than the wall-clock images/s.
    """
    rows = []
    for variant in variants:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
        runs = []
        for _ in range(repeats):
            try:
                rate, cpu = measure(data_dir, variant, **kwargs)
            except ImportError as e:
                if log:
                    log(f"skipping {variant}: {e}")
                break
            runs.append((rate, cpu * 1e3))
            if log:
                log(f"{LABELS[variant]}: {rate:.1f} images/s, {cpu * 1e3:.2f} CPU ms/image")
        if runs:
            rate, cpu_ms = max(runs)
            rows.append({"variant": variant, "label": LABELS[variant], "images_per_s": rate, "cpu_ms": cpu_ms,
                         "runs": runs})
    return rows


def format_table(rows):
    """Text table: images/s, ratios to no augmentation and to Keras's RandAugment, CPU ms/image, images/s/core."""
    base = {r["variant"]: r["images_per_s"] for r in rows}
    header = ("pipeline", "images/s", "vs none", "vs keras", "CPU ms/image", "images/s/core")
    lines = []
    for r in rows:
        rate = r["images_per_s"]
        lines.append((r["label"], f"{rate:.1f}",
                      f"{rate / base['none']:.2f}x" if "none" in base else "-",
                      f"{rate / base['keras']:.1f}x" if "keras" in base else "-",
                      f"{r['cpu_ms']:.2f}", f"{1000 / r['cpu_ms']:.0f}"))
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*l) for l in lines]
    return "\n".join(out)


def environment():
    import tensorflow as tf

    allocator = "BFC" if os.environ.get(BFC_ENV, "").lower() in ("1", "true") else "default"
    return f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, CPU allocator: {allocator}"
