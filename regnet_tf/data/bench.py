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

# TensorFlow, and the pipeline modules that import it, load inside the functions: importing this module (the
# benchmark command's flags) imports no TensorFlow.
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

    from regnet_tf.data.preprocess import to_uint8

    layer = keras.layers.RandAugment(value_range=(0, 255))

    def augment(image, seed):
        del seed  # the layer draws from its own generator
        return to_uint8(layer(tf.cast(image, tf.float32)))

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


STAGES = ("crop window (JPEG header)", "+ decode the window", "+ resize", "+ round, flip (uint8 view)",
          "+ normalize (float32 view)", "+ RandAugment")


def stages(data_dir, image_size=224, batch=64, seconds=3.0, num_layers=2, magnitude=15.0, max_images=512,
           repeats=1):
    """Where the per-image CPU time goes: rows {stage, cpu_us} for cumulative prefixes of the training view (see
    STAGES), each mapped over the same encoded images held in memory (no reading, shuffling or checking), so the
    full pipeline's CPU time minus the last row's is tf.data's own per-image cost. Each stage keeps the lowest of
    `repeats` timings (other processes only ever add to them)."""
    import tensorflow as tf

    from regnet_tf.data import preprocess
    from regnet_tf.data.augment import RandAugment
    from regnet_tf.data.sources import FEATURES, DataConfig, list_files

    files = list_files(DataConfig(data_dir=data_dir), "train")
    encoded = [tf.io.parse_single_example(r, FEATURES)["image/encoded"]
               for r in tf.data.TFRecordDataset(files).take(max_images)]
    size = [image_size, image_size]
    ra = RandAugment(num_layers, magnitude)

    def crop(e, s):
        return preprocess.decode_window(e, lambda shape: preprocess.inception_crop_window(shape, s))

    views = [
        lambda e, s: preprocess.inception_crop_window(tf.image.extract_jpeg_shape(e)[:2], s),
        lambda e, s: tf.shape(crop(e, s)),  # decoded windows differ in size and cannot be batched: their shapes
        lambda e, s: preprocess.resize(crop(e, s), size),
        lambda e, s: preprocess.train_pixels(e, s, image_size),
        lambda e, s: preprocess.train_image(e, s, image_size),
        lambda e, s: preprocess.train_image(e, s, image_size, augment=lambda x, s2: ra(x, seed=s2)),
    ]
    source = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(tf.stack(encoded)).repeat(),
                                  tf.data.Dataset.random(seed=0).batch(2)))
    rows = []
    for stage, view in zip(STAGES, views):
        it = iter(source.map(view, num_parallel_calls=tf.data.AUTOTUNE).batch(batch).prefetch(2))
        next(it)
        timings = []
        for _ in range(repeats):
            images, start, cpu = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds:
                next(it)
                images += batch
            timings.append((time.process_time() - cpu) / images * 1e6)
        rows.append({"stage": stage.replace("RandAugment", f"RandAugment({num_layers}, {magnitude:g})"),
                     "cpu_us": min(timings)})
    return rows


def format_stages(rows):
    """Text table of `stages` rows: cumulative CPU us per image, the stage's own share, images/s per core."""
    lines = ["stage (cumulative)                CPU us/image  this stage  images/s/core",
             "--------------------------------  ------------  ----------  -------------"]
    prev = 0.0
    for r in rows:
        lines.append(f"{r['stage']:<32}  {r['cpu_us']:>12.0f}  {r['cpu_us'] - prev:>10.0f}  "
                     f"{1e6 / r['cpu_us']:>13.0f}")
        prev = r["cpu_us"]
    return "\n".join(lines)


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
