"""Writes regnet_tf/weights/pretrained.json: every public ImageNet weights file that has a model in our registry.

    pip install timm tf-keras && python tools/make_pretrained_table.py

Sources, all read from installed package metadata (nothing is downloaded):
- timm: its pretrained configs (`timm.models.get_arch_pretrained_cfgs`): the hub id, the evaluation size and crop
  (``test_input_size`` / ``test_crop_pct`` when timm gives them, as timm's own validation uses), interpolation,
  mean/std, classes, license. Every tag of each timm architecture that the timm converter maps to the model
  (`regnet_tf.weights.timm.TIMM_TO_OURS`: ``resnet_rs_50`` <- ``resnetrs50``; ``efficientnet_b0`` <-
  ``efficientnet_b0`` and ``tf_efficientnet_b0``, trained with TensorFlow padding: the ``arch`` field keeps
  timm's name, the converter picks the padding from it). Feature-only checkpoints (timm
  ``num_classes`` 0, e.g. ``regnety_320.seer``) are left out. The url is the hub's ``model.safetensors``.
- tf_keras (Keras 2) RegNetX/Y and ResNet-RS, Keras 3 EfficientNet B0-B7: the URLs and hashes of the classifier
  (``include_top``) files, read from the installed packages' source with `ast` (importing them starts TensorFlow).
  Their evaluation settings are not in the packages: ResNet-RS and EfficientNet come from the TPU reference code
  (bicubic, crop size / (size + 32)); tf_keras RegNet's are not published (224 px, 0.875, bilinear: the Keras
  default). Their mean/std are null: the converter reads the model's own preprocessing.

The default tag of each model (``weights="imagenet"``) follows DEFAULT_RULE.
"""

import ast
import importlib.metadata
import importlib.util
import json
import os

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "regnet_tf", "weights",
                   "pretrained.json")
HF = "https://huggingface.co/{}/resolve/main/model.safetensors"
TF_KERAS_REGNET = "https://storage.googleapis.com/tensorflow/keras-applications/regnet/"
TF_KERAS_RESNET_RS = "https://storage.googleapis.com/tensorflow/keras-applications/resnet_rs/"
KERAS_EFFICIENTNET = "https://storage.googleapis.com/keras-applications/"
DEFAULT_RULE = ("weights='imagenet' is, per model, the first 1000-class entry in this order: timm's tags of the "
                "same-named architecture in timm's order (timm's default tag first), then those of timm's tf_ "
                "architecture, then tf_keras (largest input size first, as tf_keras's own 'imagenet'), then Keras.")


def timm_archs(model):
    """timm's architectures for our model (the timm converter's `TIMM_TO_OURS`), the same-named one first."""
    from regnet_tf.weights.timm import TIMM_TO_OURS

    return sorted((a for a, ours in TIMM_TO_OURS.items() if ours == model), key=lambda a: a.startswith("tf_"))


def timm_entries(model):
    import timm
    from timm.models import get_arch_pretrained_cfgs

    pretrained, out = set(timm.list_pretrained()), []
    for arch in timm_archs(model):
        for name, cfg in get_arch_pretrained_cfgs(arch).items():
            if name not in pretrained or not cfg.num_classes:
                continue
            assert cfg.hf_hub_id == f"timm/{name}" and not cfg.hf_hub_filename, (name, cfg.hf_hub_id)
            out.append(dict(model=model, tag=f"timm/{name}", source="timm", arch=arch, url=HF.format(cfg.hf_hub_id),
                            file_hash=None, input_size=(cfg.test_input_size or cfg.input_size)[-1],
                            crop_fraction=cfg.test_crop_pct or cfg.crop_pct, crop_mode=cfg.crop_mode,
                            interpolation=cfg.interpolation, mean=list(cfg.mean), std=list(cfg.std),
                            classes=cfg.num_classes, license=cfg.license))
    return out


def source_constants(package, path):
    """{name: value} of the literal module-level constants in an installed package's file, and for each factory
    ``def EfficientNetB0(...): return EfficientNet(1.0, 1.0, 224, ...)`` its input size as ``size:EfficientNetB0``;
    read with `ast`, without importing the package."""
    root = importlib.util.find_spec(package).submodule_search_locations[0]
    with open(os.path.join(root, path), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
        if isinstance(node, ast.FunctionDef) and node.name.startswith("EfficientNetB"):
            call = next(c for c in ast.walk(node)
                        if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "EfficientNet")
            out[f"size:{node.name}"] = ast.literal_eval(call.args[2])
    return out


def keras_entry(model, source, arch, url, file_hash, size, crop, interpolation, tag):
    return dict(model=model, tag=f"{source}/{tag}", source=source, arch=arch, url=url, file_hash=file_hash,
                input_size=size, crop_fraction=round(crop, 4), crop_mode="center", interpolation=interpolation,
                mean=None, std=None, classes=1000, license="apache-2.0")


def keras_entries(model):
    if model.startswith(("regnetx_", "regnety_")):
        c = source_constants("tf_keras", "src/applications/regnet.py")
        key = model[len("regnet"):].replace("_", "")  # "x002"
        arch = f"regnet{key}"
        return [keras_entry(model, "tf_keras", arch, f"{TF_KERAS_REGNET}{arch}.h5", c["WEIGHTS_HASHES"][key][0],
                            c["MODEL_CONFIGS"][key]["default_size"], 0.875, "bilinear", "imagenet")]
    if model.startswith("resnet_rs_"):
        c = source_constants("tf_keras", "src/applications/resnet_rs.py")
        depth = int(model[len("resnet_rs_"):])
        arch = f"resnet-rs-{depth}"
        return [keras_entry(model, "tf_keras", arch, f"{TF_KERAS_RESNET_RS}{arch}-i{size}.h5",
                            c["WEIGHT_HASHES"][f"{arch}-i{size}.h5"], size, size / (size + 32), "bicubic",
                            f"imagenet-i{size}") for size in sorted(c["DEPTH_TO_WEIGHT_VARIANTS"][depth], reverse=True)]
    if model.startswith("efficientnet_b"):
        c = source_constants("keras", "src/applications/efficientnet.py")
        key = model[len("efficientnet_"):]  # "b0"
        arch = f"efficientnet{key}"
        size = c[f"size:EfficientNet{key.upper()}"]
        return [keras_entry(model, "keras", arch, f"{KERAS_EFFICIENTNET}{arch}.h5", c["WEIGHTS_HASHES"][key][0],
                            size, size / (size + 32), "bicubic", "imagenet")]
    return []


def main():
    from regnet_tf.zoo import list_models

    entries = []
    for model in list_models():
        rows = timm_entries(model) + keras_entries(model)
        default = next((r for r in rows if r["classes"] == 1000), None)
        for r in rows:
            r["default"] = r is default
        entries += rows
    keys = [(e["model"], e["tag"]) for e in entries]
    assert len(keys) == len(set(keys)), "a model has a tag twice"
    v = {p: importlib.metadata.version(p) for p in ("timm", "tf_keras", "keras")}
    about = (f"Generated by tools/make_pretrained_table.py from timm {v['timm']}, tf_keras {v['tf_keras']} and "
             f"keras {v['keras']}; do not edit by hand.")
    lines = [json.dumps(e, sort_keys=False) for e in entries]
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write('{\n"about": %s,\n"default_rule": %s,\n"weights": [\n%s\n]\n}\n'
                % (json.dumps(about), json.dumps(DEFAULT_RULE), ",\n".join(lines)))
    counts = ", ".join(f"{s} {sum(e['source'] == s for e in entries)}" for s in ("timm", "tf_keras", "keras"))
    print(f"wrote {OUT}: {len(entries)} tags ({counts}) for {len({e['model'] for e in entries})} models")

if __name__ == "__main__":
    main()
