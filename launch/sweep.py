"""Sample a population of models from a design space and train each with a recipe (RegNet paper, section 3).

    python launch/sweep.py --space anynetx_a --regime 400MF --samples 32 --out sweeps/anynetx_a
    python launch/sweep.py --space regnetx --samples 8 --data demo --out sweeps/demo \
        --set train.steps=5 --set data.image_size=32                     # a smoke run on the built-in demo data
    python launch/sweep.py ... --shard 3/16     # host 3 of 16 (e.g. $SLURM_ARRAY_TASK_ID/16), the same --out

Each finished model appends one JSON record (spec, complexity, errors, epochs, time) to OUT/records; a sweep
started again skips finished models and resumes an interrupted one from its checkpoint. Same as `regnet-sweep`.
"""

from regnet_tf.cli.sweep import run

if __name__ == "__main__":
    run()
