"""The accuracy tables of docs/DEPLOY.md: what each export format keeps of a model's predictions.

    python tools/deploy_accuracy.py --out /tmp/deploy_accuracy                      # trains the demo recipe first
    python tools/deploy_accuracy.py --out /tmp/deploy_accuracy --model_dir runs/demo            # reuses a run
    python tools/deploy_accuracy.py --out /tmp/rs50 --model resnet_rs_50 --weights imagenet --photos photos/
    python tools/deploy_accuracy.py --out /tmp/rs50 --model resnet_rs_50 --weights imagenet --photos bundled

Demo run (default): the quick start's run (`launch/train.py --recipe demo`, or --model_dir), exported with
`launch/export.py --format saved_model,tflite,tflite_fp16,tflite_int8,onnx,openvino` (int8 calibrated on the run's
first --calibration_images training images), then on the 1,000 demo validation images:

- top-1 / top-5 of the checkpoint (`launch/eval.py --model_dir`), of the SavedModel (`--saved_model`, image bytes
  in) and of each file (`--tflite` / `--onnx` / `--openvino`, and the OpenVINO file again with `--precision bf16`):
  the launchers' own output lines;
- top-1 agreement of each format with the float32 Keras model of the run (`Trainer.inference_model`, the evaluated
  weights) on the format's own input: each file's runner (`deploy.load`) and the Keras model (`normalize`d) on the
  eval pipeline's uint8 pixels; the SavedModel's `serving_default` on the same files' bytes (in the same order) and
  the Keras model on the float eval view, the input of the checkpoint's evaluation. A row "Keras float32 on uint8
  pixels" gives what the rounding of the eval view to uint8 alone changes (its agreement: with the float view).

Converted weights (--model, --weights, --photos): no labels, so only agreement. The model with the weights' eval
settings (`applications.resolve_weights`: size, crop, interpolation), exported in every format (in process, with
the library functions `launch/export.py --model` uses; int8 calibrated on --calibration_dir, default the photos
themselves), and each format's top-1 on every photo against the float32 Keras model's; the Keras model's top-1
class per photo is printed too (a sanity check that the weights are real). Never publish numbers of random weights.

Every table is printed as markdown; the exports, logs and results.json stay in --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMATS = ("saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx", "openvino")
# the table's rows: each format, and the OpenVINO file again at the CPU plugin's bf16 precision (`--precision bf16`)
ROWS = FORMATS + ("openvino_bf16",)
PRECISION = {"openvino_bf16": "bf16"}  # rows run at a precision other than float32
EVAL_FLAG = {"tflite": "--tflite", "tflite_fp16": "--tflite", "tflite_int8": "--tflite", "onnx": "--onnx",
             "openvino": "--openvino", "openvino_bf16": "--openvino"}
LABELS = {"keras": "Keras float32 (checkpoint)", "keras_uint8": "Keras float32 on uint8 pixels (the files' input)",
          "saved_model": "SavedModel (float32, image bytes in)",
          "tflite": "TFLite float32", "tflite_fp16": "TFLite float16", "tflite_int8": "TFLite int8",
          "onnx": "ONNX (onnxruntime)", "openvino": "OpenVINO IR (CPU, f32)",
          "openvino_bf16": "OpenVINO IR (CPU, bf16)"}
# Real photos that packages ship inside their wheels (no download): scikit-image's skimage/data (not the files
# skimage.data fetches with pooch) and matplotlib's sample data. `--photos bundled` copies them into --out/photos.
BUNDLED_PHOTOS = {"skimage": ("data", ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                                       "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg")),
                  "matplotlib": ("mpl-data/sample_data", ("grace_hopper.jpg",))}
RESULT = re.compile(r"top-1 ([\d.]+)%, top-5 ([\d.]+)% \((\d+) images\)")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def launch(script, args, log):
    """Runs launch/<script> with `args`, its output into `log`; returns (output, seconds)."""
    cmd = [sys.executable, os.path.join(ROOT, "launch", script), *args]
    print("$", " ".join(cmd), flush=True)
    start = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n")
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}), see {log}:\n{proc.stdout[-3000:]}")
    return proc.stdout, time.time() - start


def size_mb(path):
    """Size of a file (an OpenVINO .xml with its .bin) or of a SavedModel's own files (not the other formats' files
    beside them), in MB (10^6 bytes)."""
    if os.path.isdir(path):
        files = [os.path.join(path, f) for f in ("saved_model.pb", "fingerprint.pb")]
        files += [os.path.join(d, f) for sub in ("variables", "assets", "assets.extra")
                  for d, _, fs in os.walk(os.path.join(path, sub)) for f in fs]
    else:
        files = [path] + ([os.path.splitext(path)[0] + ".bin"] if path.endswith(".xml") else [])
    return sum(os.path.getsize(f) for f in files if os.path.isfile(f)) / 1e6


def file_paths(export_dir):
    """{row: the file it runs}: the bf16 row runs the OpenVINO file."""
    from regnet_tf.deploy import FILE_NAMES

    paths = {"saved_model": export_dir, **{f: os.path.join(export_dir, n) for f, n in FILE_NAMES.items()}}
    return {**paths, "openvino_bf16": paths["openvino"]}


# ---------------------------------------------------------------------------------------------------- demo run

def demo(a, log):
    timings = {}
    model_dir = a.model_dir or os.path.join(a.out, "run")
    if not a.model_dir:
        _, timings["train"] = launch("train.py", ["--recipe", "demo", "--model_dir", model_dir, "--export=false"], log)
    export_dir = os.path.join(a.out, "export")
    _, timings["export"] = launch("export.py", [
        "--model_dir", model_dir, "--export_dir", export_dir, "--format", ",".join(FORMATS), "--overwrite",
        "--calibration_images", str(a.calibration_images)], log)
    paths = file_paths(export_dir)
    rows = {}
    for fmt in ("keras",) + ROWS:
        if fmt == "keras":
            args = ["--model_dir", model_dir]
        elif fmt == "saved_model":
            args = ["--saved_model", export_dir, "--data", "demo"]
        else:
            args = [EVAL_FLAG[fmt], paths[fmt], "--data", "demo", "--precision", PRECISION.get(fmt, "f32")]
        out, timings[f"eval {fmt}"] = launch("eval.py", args, log)
        top1, top5, n = RESULT.findall(out)[-1]
        rows[fmt] = {"top1": float(top1), "top5": float(top5), "images": int(n),
                     "size_mb": None if fmt == "keras" else size_mb(paths[fmt])}
    start = time.time()
    agreement, keras_uint8 = demo_agreement(model_dir, paths)
    timings["agreement"] = time.time() - start
    rows = {"keras": rows.pop("keras"), "keras_uint8": {**keras_uint8, "size_mb": None}, **rows}
    for fmt, value in agreement.items():
        rows[fmt]["agreement"] = value
    print(f"\nDemo model ({model_dir}), {rows['keras']['images']} demo validation images. Agreement: the share of "
          "images whose top-1 class equals the float32 Keras model's on the same input: the files take the eval "
          "view rounded to uint8 pixels, the SavedModel (image bytes) and the checkpoint's evaluation the float eval "
          "view; the second row is the Keras model on the uint8 pixels, its agreement column against the float "
          "view (what the rounding alone changes).\n")
    print("| format | file size (MB) | top-1 (%) | top-5 (%) | top-1 agreement with Keras float32 (%) |")
    print("|---|---|---|---|---|")
    for fmt, r in rows.items():
        size = "-" if r["size_mb"] is None else f"{r['size_mb']:.2f}"
        print(f"| {LABELS[fmt]} | {size} | {r['top1']:.1f} | {r['top5']:.1f} | {r['agreement']:.1f} |")
    return {"model_dir": model_dir, "rows": rows, "timings_s": timings}


def demo_agreement(model_dir, paths):
    """({format: top-1 agreement (%) with the run's float32 Keras model on the format's own input}, the Keras
    model's row on the uint8 pixels: top-1, top-5 and agreement with its own float-view predictions)."""
    import numpy as np
    import tensorflow as tf

    from regnet_tf import deploy
    from regnet_tf.data.preprocess import normalize
    from regnet_tf.data.sources import encoded_dataset, input_pipeline
    from regnet_tf.train.evaluate import load_run
    from regnet_tf.train.trainer import Trainer

    recipe = load_run(model_dir)
    trainer = Trainer(recipe, model_dir)
    trainer.restore_or_fail()
    model, _ = trainer.inference_model()
    keras_fn = tf.function(lambda x: model(x, training=False), autograph=False)
    runners = {f: deploy.load(p, precision=PRECISION.get(f, "f32")) for f, p in paths.items() if f != "saved_model"}
    data = dataclasses.replace(recipe.data, deterministic=True, normalize=True, dtype="float32")
    labels, float_view = [], []  # the checkpoint evaluation's input: the float eval view, normalized
    for images, y in input_pipeline(data, "validation", 100, training=False):
        float_view.append(keras_fn(images).numpy().argmax(-1))
        labels.append(y.numpy())
    logits, preds = [], {f: [] for f in runners}
    for images, _ in input_pipeline(dataclasses.replace(data, normalize=False), "validation", 100, training=False):
        logits.append(keras_fn(normalize(images)).numpy())  # the files' input: the eval view as uint8 pixels
        for f, runner in runners.items():
            preds[f].append(runner(images.numpy()).argmax(-1))
    serve = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
    preds["saved_model"], bytes_labels = [], []
    for encoded, y in encoded_dataset(recipe.data, "validation").batch(100):
        preds["saved_model"].append(serve(image_bytes=encoded)["logits"].numpy().argmax(-1))
        bytes_labels.append(y.numpy())
    labels, float_view, logits = np.concatenate(labels), np.concatenate(float_view), np.concatenate(logits)
    if not np.array_equal(labels, np.concatenate(bytes_labels)) or len(logits) != len(labels):
        raise SystemExit("the validation images are not in the same order in the three passes")
    uint8_view = logits.argmax(-1)
    agreement = {"keras": 100.0}
    for f, p in preds.items():
        agreement[f] = 100.0 * float(np.mean(np.concatenate(p) == (float_view if f == "saved_model" else uint8_view)))
    top5 = np.argsort(-logits, axis=-1)[:, :5]
    keras_uint8 = {"top1": 100.0 * float(np.mean(uint8_view == labels)),
                   "top5": 100.0 * float(np.mean((top5 == labels[:, None]).any(-1))), "images": len(labels),
                   "agreement": 100.0 * float(np.mean(uint8_view == float_view))}
    return agreement, keras_uint8


# ------------------------------------------------------------------------------------------ converted weights

def photo_files(folder):
    from regnet_tf.data.format import IMAGE_EXTENSIONS

    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
    if not files:
        raise SystemExit(f"no images in {folder}")
    return files


def bundled_photos(out):
    """Copies BUNDLED_PHOTOS from the installed packages into `out`; returns `out`."""
    import importlib.util
    import shutil

    os.makedirs(out, exist_ok=True)
    for package, (sub, names) in BUNDLED_PHOTOS.items():
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise SystemExit(f"--photos bundled needs {package} installed (pip install "
                             f"{'scikit-image' if package == 'skimage' else package})")
        for name in names:
            shutil.copy(os.path.join(spec.submodule_search_locations[0], sub, name), os.path.join(out, name))
    return out


def photos(a):
    """Top-1 agreement of every format with the float32 Keras model of --model/--weights on --photos."""
    import numpy as np
    import tensorflow as tf

    from regnet_tf import deploy
    from regnet_tf.applications import build_model, resolve_weights
    from regnet_tf.data import preprocess
    from regnet_tf.imagenet import class_names
    from regnet_tf.train.export import export_saved_model

    timings = {}
    start = time.time()
    path, config = resolve_weights(a.model, a.weights)
    settings = config.eval_settings() if config else {
        "image_size": None, "eval_mode": "crop_fraction", "eval_crop_fraction": 0.875, "resize_method": "bilinear"}
    model = build_model(a.model, weights=path, classes=config.classes if config else 1000, classifier_activation=None,
                        input_shape=(settings["image_size"],) * 2 + (3,) if settings["image_size"] else None)
    size = settings["image_size"] or model.input_shape[1]
    timings["build"] = time.time() - start

    def view(files):
        return np.stack([preprocess.eval_pixels(tf.io.read_file(f), size, "crop_fraction",
                                                settings["eval_crop_fraction"], None, settings["resize_method"]).numpy()
                         for f in files])

    if a.photos == "bundled":
        a.photos = bundled_photos(os.path.join(a.out, "photos"))
    files = photo_files(a.photos)
    pixels = view(files)
    calibration = view(photo_files(a.calibration_dir or a.photos))
    names = class_names() if model.output_shape[-1] == 1000 else None
    export_dir = os.path.join(a.out, "export")
    metadata = {"model": a.model, "weights": config.tag if config else a.weights}
    start = time.time()
    export_saved_model(model, export_dir, image_size=size, crop_fraction=settings["eval_crop_fraction"],
                       resize_method=settings["resize_method"], metadata=metadata, overwrite=True,
                       label_map=dict(enumerate(names)) if names else None)
    preprocessing = {"eval_mode": "crop_fraction", "crop_fraction": settings["eval_crop_fraction"],
                     "resize_method": settings["resize_method"]}
    paths = file_paths(export_dir)
    for fmt in FORMATS[1:]:
        deploy.export_file(model, export_dir, fmt, image_size=size, preprocessing=preprocessing, class_names=names,
                           calibration=calibration, metadata=metadata, overwrite=True)
    timings["export"] = time.time() - start

    def top1(fn, inputs, batch=32):
        return np.concatenate([np.asarray(fn(inputs[i:i + batch])).argmax(-1) for i in range(0, len(inputs), batch)])

    keras = top1(lambda x: model(preprocess.normalize(x), training=False), pixels)
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    encoded = np.array([tf.io.read_file(f).numpy() for f in files], dtype=object)
    preds = {"saved_model": top1(lambda x: serve(image_bytes=tf.constant(x))["logits"], encoded)}
    for fmt in ROWS[1:]:
        preds[fmt] = top1(deploy.load(paths[fmt], precision=PRECISION.get(fmt, "f32")), pixels)
    print(f"\n{a.model}, weights {a.weights} ({metadata['weights']}), {size} px, crop "
          f"{settings['eval_crop_fraction']}, {settings['resize_method']}: {len(files)} photos of {a.photos}; "
          f"int8 calibrated on {len(calibration)} images of {a.calibration_dir or a.photos}\n")
    print("Keras float32 top-1 per photo: " + "; ".join(
        f"{os.path.basename(f)}: {names[k] if names else k}" for f, k in zip(files, keras)) + "\n")
    print("| format | file size (MB) | top-1 agreement with Keras float32 (%) | photos that differ |")
    print("|---|---|---|---|")
    rows = {}
    for fmt in ROWS:
        diff = [os.path.basename(f) for f, p, k in zip(files, preds[fmt], keras) if p != k]
        rows[fmt] = {"size_mb": size_mb(paths[fmt]), "agreement": 100.0 * float(np.mean(preds[fmt] == keras)),
                     "differ": diff}
        print(f"| {LABELS[fmt]} | {rows[fmt]['size_mb']:.2f} | {rows[fmt]['agreement']:.1f} | "
              f"{', '.join(diff) or '-'} |")
    return {"model": a.model, "weights": metadata["weights"], "image_size": size, "settings": settings,
            "photos": [os.path.basename(f) for f in files], "keras_top1": [int(k) for k in keras], "rows": rows,
            "timings_s": timings}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="Directory of the run, exports, logs and results.json.")
    p.add_argument("--model_dir", help="Demo table: reuse this run (trained with --recipe demo) instead of training.")
    p.add_argument("--calibration_images", type=int, default=200, help="Demo table: int8 calibration images.")
    p.add_argument("--model", help="Converted-weights table: a registered model (with --weights and --photos).")
    p.add_argument("--weights", default="imagenet", help="imagenet, a tag of public weights or a weights file.")
    p.add_argument("--photos", help="A folder of photos (jpg/png/...), no labels needed; 'bundled': the real photos "
                   "that scikit-image and matplotlib ship (BUNDLED_PHOTOS).")
    p.add_argument("--calibration_dir", help="Photos to calibrate int8 on (default: --photos).")
    a = p.parse_args()
    if bool(a.model) != bool(a.photos):
        p.error("--model and --photos go together")
    os.makedirs(a.out, exist_ok=True)
    start = time.time()
    if a.model:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        results = photos(a)
    else:
        results = demo(a, os.path.join(a.out, "log.txt"))
    results["total_s"] = time.time() - start
    print(f"\ntimings (s): {', '.join(f'{k} {v:.0f}' for k, v in results['timings_s'].items())}; total "
          f"{results['total_s']:.0f}")
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
