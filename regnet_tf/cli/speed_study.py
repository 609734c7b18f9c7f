"""`regnet-speed-study` / `python launch/speed_study.py`: the papers' speed claims timed on this machine. Usage: see
launch/speed_study.py; the measuring and analysis are `regnet_tf.studies.speed`, the files `speed_plots`."""

from __future__ import annotations

import os

from absl import flags

from regnet_tf import cli
from regnet_tf.studies import speed, speed_analysis  # no TensorFlow at import

FLAGS = flags.FLAGS


def define_flags():
    """The command's absl flags (defined when the command runs, not on import)."""
    flags.DEFINE_string("out", None, "Output directory: models.csv, rounds.csv, correlations.csv, ..., *.png, "
                        "report.html.")
    flags.DEFINE_list("base", None, "Base models to scale (registry names), e.g. efficientnet_b0.")
    flags.DEFINE_list("strategies", list(speed.FIGURE2_STRATEGIES), "Scaling strategies for --base (d, w, r, dw, dr, "
                      "wr, dwr, dWr or a weight string such as d1_w8_g8_r1).")
    flags.DEFINE_list("factors", ["1", "2", "4", "8"], "Flops factors for --base (1: the base itself).")
    flags.DEFINE_float("alpha", 0.8, "alpha of fast compound scaling (strategy dWr).")
    flags.DEFINE_list("models", None, "Registry names and/or recipe names (a recipe brings its image size and the "
                      "paper's top-1).")
    flags.DEFINE_string("set", None, "A set of the papers: " + "; ".join(f"{k}: {v[0]}" for k, v in speed.SETS.items()))
    flags.DEFINE_string("space", None, "A design space to sample models from (e.g. regnetx, regnety, anynetx_e).")
    flags.DEFINE_integer("samples", 10, "With --space: models to sample.")
    flags.DEFINE_string("regime", "400MF", "With --space: the flop regime (400MF, 1.6GF, 360MF-400MF).")
    flags.DEFINE_integer("seed", 0, "With --space: the sampling seed.")
    flags.DEFINE_integer("resolution", None, "Image size: the bases' size for --base (r-scaling scales it), every "
                         "model's size otherwise; default: each model's registered (or recipe) size.")
    flags.DEFINE_float("resolution_scale", 1.0, "Multiply each model's own size (not with --base), e.g. 0.5 to "
                       "keep the relative sizes of EfficientNet B0-B7 at a quarter of the flops.")
    flags.DEFINE_integer("batch", None, "Inference batch size; default 64 with --set table4 (the paper's 64 images), "
                         "else 16.")
    flags.DEFINE_integer("train_batch", None, "Training batch size; default --batch.")
    flags.DEFINE_list("modes", list(speed.MODES), "What to time: train, infer.")
    flags.DEFINE_integer("rounds", 3, "Alternating rounds over the models; rows show the median.")
    flags.DEFINE_integer("steps", 1, "Timed steps per round and model.")
    flags.DEFINE_integer("warmup", 1, "Untimed steps per model first (the first one traces).")
    flags.DEFINE_enum("precision", "float32", speed.PRECISIONS, "Keras dtype policy of the timed models.")
    flags.DEFINE_boolean("xla", False, "Compile the steps with XLA (jit_compile=True).")
    flags.DEFINE_boolean("sequential", None, "Time one model after the other (all its rounds, then the next) instead "
                         "of alternating rounds over every model, which holds them all in memory at once. Default: "
                         "alternate unless that would take more than half this machine's memory (e.g. --set table7).")
    flags.DEFINE_integer("threads", None, "TensorFlow intra- and inter-op threads (default: TensorFlow's, all cores).")
    flags.DEFINE_string("from_csv", None, "Analyse and plot a models.csv written before (here or on other hardware) "
                        "instead of timing.")
    flags.DEFINE_boolean("list_sets", False, "List the model sets and exit.")
    flags.register_validator("samples", lambda n: n >= 1, "--samples must be positive")
    flags.register_validator("resolution", lambda r: r is None or r >= 32, "--resolution must be at least 32")
    flags.register_validator("resolution_scale", lambda k: k > 0, "--resolution_scale must be positive")
    flags.register_validator("batch", lambda b: b is None or b >= 1, "--batch must be positive")
    flags.register_validator("train_batch", lambda b: b is None or b >= 1, "--train_batch must be positive")
    flags.register_validator("rounds", lambda n: n >= 1, "--rounds must be positive")
    flags.register_validator("steps", lambda n: n >= 1, "--steps must be positive")
    flags.register_validator("warmup", lambda n: n >= 0, "--warmup must be >= 0")
    flags.register_validator("threads", lambda n: n is None or n >= 1, "--threads must be positive")


def study_models():
    """The models the flags ask for, in the order given: --set, --base, --models, --space."""
    models = []
    if FLAGS.set:
        models += speed.set_models(FLAGS.set, FLAGS.resolution, FLAGS.resolution_scale)
    if FLAGS.base:
        try:
            factors = [float(f) for f in FLAGS.factors]
        except ValueError:
            raise ValueError(f"--factors must be numbers, e.g. 1,2,4; got {','.join(FLAGS.factors)}") from None
        models += speed.scaled_models(FLAGS.base, FLAGS.strategies, factors, FLAGS.resolution, FLAGS.alpha)
    if FLAGS.models:
        models += speed.named_models(FLAGS.models, FLAGS.resolution, FLAGS.resolution_scale)
    if FLAGS.space:
        models += speed.sampled_models(FLAGS.space, FLAGS.samples, FLAGS.regime, FLAGS.seed, FLAGS.resolution or 224)
    names = [m.name for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"models asked for twice: {', '.join(dupes)}; give each once")
    return models


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments {argv[1:]}: models go in --models, --base, --set or --space")
    if FLAGS.list_sets:
        for name, (what, _) in speed.SETS.items():
            print(f"{name:15s} {what}")
        return
    if not FLAGS.out:
        raise ValueError("--out is required: the directory for the CSV files, plots and report.html")
    from regnet_tf.studies import speed_plots

    if FLAGS.from_csv:
        rows, rounds_rows = speed.read_csv(FLAGS.from_csv), None
    else:
        models = study_models()
        if not models:
            raise ValueError("no models: give --set (" + ", ".join(speed.SETS) + "), --base with --strategies and "
                             "--factors, --models or --space")
        unknown = set(FLAGS.modes) - set(speed.MODES)
        if unknown:
            raise ValueError(f"--modes takes {', '.join(speed.MODES)}; got {', '.join(sorted(unknown))}")
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # one retracing warning per model otherwise (each model has its own step)
        if FLAGS.threads:
            tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
            tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
        batch = FLAGS.batch or (64 if FLAGS.set == "table4" else 16)
        print(f"timing {len(models)} models: {', '.join(FLAGS.modes)}, batch {batch}"
              f"{f' (train {FLAGS.train_batch})' if FLAGS.train_batch else ''}, {FLAGS.rounds} rounds of "
              f"{FLAGS.steps} step(s), precision {FLAGS.precision}, XLA {'on' if FLAGS.xla else 'off'}", flush=True)
        rows, rounds_rows = speed.time_models(models, batch, FLAGS.train_batch, FLAGS.modes, FLAGS.rounds, FLAGS.steps,
                                              FLAGS.warmup, FLAGS.precision, FLAGS.xla, FLAGS.sequential,
                                              progress=lambda line: print(line, flush=True))
    paths = speed_plots.report(rows, FLAGS.out, rounds_rows)
    print()
    print(speed_analysis.format_models(rows))
    for mode in speed.MODES:
        corr = speed_analysis.correlations(rows, mode)
        if corr:
            print()
            print(speed_analysis.format_correlations(corr))
    for text in (speed_analysis.format_table4(speed_analysis.table4(rows)), speed_analysis.format_table7(rows)):
        if text:
            print()
            print(text)
    print(f"\nwrote {', '.join(os.path.basename(p) for p in paths.values())} to {FLAGS.out}")


def run():
    cli.run(main, define_flags)
