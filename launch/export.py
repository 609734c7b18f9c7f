"""Export a trained model_dir (its last checkpoint, EMA or SWA weights) as a versioned SavedModel for TF Serving,
and/or as TFLite (float32, float16, int8), ONNX and OpenVINO files (`--format`, docs/DEPLOY.md).

    python launch/export.py --model_dir runs/demo                          # -> runs/demo/export/<step>
    python launch/export.py --model_dir runs/demo --export_dir /models/demo/1
    python launch/export.py --model resnet_rs_50 --weights imagenet --export_dir /models/rs50/1
                                           # trained weights, their eval settings and the ImageNet class names
    saved_model_cli show --dir /models/demo/1 --all
    python launch/export.py --model_dir runs/demo --export_dir out/ --format tflite_int8   # calibrated on the run's data
    python launch/export.py --model regnety_002 --weights W.weights.h5 --export_dir out/ --format tflite_int8 --data demo
    python launch/export.py --model_dir runs/demo --export_dir out/ --format tflite,tflite_fp16,onnx,openvino

Signatures: `serving_default` (image_bytes: string [B] of encoded JPEG/PNG -> logits, probabilities, top-5) and
`serving_image_tensor` (images: uint8 [B, H, W, 3]), with the recipe's evaluation preprocessing inside the graph.
Request limits, enforced in the graph (docs/SERVING.md): `--max_pixels` (decoded pixels per image, read from the
header before decoding; default 64,000,000), `--max_batch` (default 256), `--max_request_bytes` (default 64 MiB);
0 turns one off.

Files (`regnet_tf.deploy`): `model.tflite`, `model_fp16.tflite`, `model_int8.tflite`, `model.onnx`, `model.xml` +
`model.bin`, each with a sidecar `<file>.json` (image size, crop and resize, class names, quantization). They take RGB
pixels [B, S, S, 3] (0-255; uint8 for int8) and give logits. BatchNormalization is folded in every export
(`--nofold_batch_norm` keeps it).

Same as the console script `regnet-export` (after `pip install -e .`).
"""

from regnet_tf.cli.export import run

if __name__ == "__main__":
    run()
