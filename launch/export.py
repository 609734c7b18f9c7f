"""Export a trained model_dir (its last checkpoint, EMA or SWA weights) as a versioned SavedModel for TF Serving.

    python launch/export.py --model_dir runs/demo                          # -> runs/demo/export/<step>
    python launch/export.py --model_dir runs/demo --export_dir /models/demo/1
    python launch/export.py --model resnet_rs_50 --weights imagenet --export_dir /models/rs50/1
                                           # trained weights, their eval settings and the ImageNet class names
    saved_model_cli show --dir /models/demo/1 --all

Signatures: `serving_default` (image_bytes: string [B] of encoded JPEG/PNG -> logits, probabilities, top-5) and
`serving_image_tensor` (images: uint8 [B, H, W, 3]), with the recipe's evaluation preprocessing inside the graph.
Request limits, enforced in the graph (docs/SERVING.md): `--max_pixels` (decoded pixels per image, read from the
header before decoding; default 64,000,000), `--max_batch` (default 256), `--max_request_bytes` (default 64 MiB);
0 turns one off.

Same as the console script `regnet-export` (after `pip install -e .`).
"""

from regnet_tf.cli.export import run

if __name__ == "__main__":
    run()
