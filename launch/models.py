"""Print the model zoo: every registered model with its default resolution, flops (multiply-adds), params, acts.

    python launch/models.py                      # all models
    python launch/models.py --filter regnety     # substring or wildcard ("regnet?_0*")
    python launch/models.py --markdown           # also write docs/MODEL_ZOO.md

Same as the console script `regnet-models` (after `pip install -e .`).
"""

from regnet_tf.cli.models import run

if __name__ == "__main__":
    run()
