"""Scale a model by a flops factor with a scaling strategy and print the config and complexity before and after.

    python launch/scale.py --model regnety_040 --factor 4 --strategy dWr          # fast compound scaling, alpha 0.8
    python launch/scale.py --model efficientnet_b0 --factor 8 --strategy dwr
    python launch/scale.py --model resnet_rs_50 --factor 2 --strategy dWr --alpha 0.5 --resolution 160

Same as the console script `regnet-scale` (after `pip install -e .`).
"""

from regnet_tf.cli.scale import run

if __name__ == "__main__":
    run()
