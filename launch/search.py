"""Random search at a flop budget: sample models from a design space, train each, write the best as a recipe file.

    python launch/search.py --space regnety --flops 400e6 --samples 32          # -> searches/regnety_400MF/best.yaml
    python launch/search.py --space regnetx --flops 400e6 --samples 4 --data demo --set train.steps=5 \
        --set data.image_size=32 --out searches/demo                            # a smoke run on the demo data
    python launch/train.py --recipe searches/regnety_400MF/best.yaml            # train the winner

The search is a sweep (launch/sweep.py: records, resume) in [0.9 x flops, flops]. Same as `regnet-search`.
"""

from regnet_tf.cli.search import run

if __name__ == "__main__":
    run()
