"""`regnet-scale` / `python launch/scale.py`: scale a model by a flops factor with a scaling strategy and print the
config and complexity before and after. Usage: see launch/scale.py."""

from __future__ import annotations

from absl import flags

from regnet_tf import cli, scaling, zoo
from regnet_tf.scaling import SCALING_STRATEGIES

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("model", None, "Registered model name (python launch/models.py lists them).")
    flags.DEFINE_float("factor", 2.0, "Flops factor s.")
    flags.DEFINE_string("strategy", "dWr", f"One of {', '.join(SCALING_STRATEGIES)} or a weight string (d1_w8_g8_r1).")
    flags.DEFINE_float("alpha", 0.8, "alpha of fast compound scaling (strategy dWr).")
    flags.DEFINE_integer("resolution", None, "Base resolution (default: the model's registered resolution).")
    flags.mark_flag_as_required("model")


def _report(title, spec, res):
    cx = zoo.complexity(spec, res)
    print(f"{title}: {type(spec).__name__} at {res}x{res}: {cx['flops'] / 1e9:.3f} GMACs, "
          f"{cx['params'] / 1e6:.2f} M params, {cx['acts'] / 1e6:.2f} M acts")
    print(zoo.describe(spec))
    return cx


def main(argv):
    del argv
    res = FLAGS.resolution or zoo.get_entry(FLAGS.model).resolution
    d, w, g, r = scaling.scaling_factors(FLAGS.strategy, FLAGS.factor, FLAGS.alpha)
    new, new_res = zoo.scale(FLAGS.model, FLAGS.factor, FLAGS.strategy, FLAGS.alpha, res)
    print(f"{FLAGS.model} x{FLAGS.factor:g} flops, strategy {FLAGS.strategy}"
          + (f" (alpha {FLAGS.alpha:g})" if FLAGS.strategy == "dWr" else "")
          + f": depth x{d:.3f}, width x{w:.3f}, group width x{g:.3f}, resolution x{r:.3f}\n")
    before = _report("before", zoo.resolve(FLAGS.model), res)
    print()
    after = _report("after", new, new_res)
    print(f"\nflops x{after['flops'] / before['flops']:.2f} (target x{FLAGS.factor:g}), "
          f"params x{after['params'] / before['params']:.2f}, acts x{after['acts'] / before['acts']:.2f}")
    print(f"\nscaled spec:\n{new}")


def run():
    cli.run(main, define_flags)
