"""Export a trained model_dir (its last checkpoint, EMA weights) as a versioned SavedModel for TF Serving.

    python launch/export.py --model_dir runs/demo                          # -> runs/demo/export/<step>
    python launch/export.py --model_dir runs/demo --export_dir /models/demo/1
    saved_model_cli show --dir /models/demo/1 --all

Signatures: `serving_default` (image_bytes: string [B] of encoded JPEG/PNG -> logits, probabilities, top-5) and
`serving_image_tensor` (images: uint8 [B, H, W, 3]), with the recipe's evaluation preprocessing inside the graph.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import regnet_tf  # noqa: E402,F401
from absl import app, flags  # noqa: E402

flags.DEFINE_string("model_dir", None, "A model_dir written by launch/train.py.")
flags.DEFINE_string("export_dir", None, "Versioned output directory (default: model_dir/export/<step>).")
flags.DEFINE_bool("overwrite", False, "Replace an existing export_dir.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    from regnet_tf.train import loop

    try:
        recipe = loop.load_run(FLAGS.model_dir)
        trainer = loop.Trainer(recipe, FLAGS.model_dir)
        step = trainer.restore()
        if not step:
            raise loop.TrainingError(f"no checkpoint in {trainer.manager.directory}")
        export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export", str(step))
        path = trainer.export(export_dir, overwrite=FLAGS.overwrite or FLAGS.export_dir is None)
    except (ValueError, FileNotFoundError, FileExistsError, loop.TrainingError) as e:
        sys.exit(f"error: {e}")
    print(f"exported step {step} of {recipe.name} ({'EMA' if trainer.ema else 'raw'} weights) to {path}")


if __name__ == "__main__":
    app.run(main)
