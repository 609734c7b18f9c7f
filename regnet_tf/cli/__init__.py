"""The command-line tools: `regnet-train` ... (console scripts) and `python launch/<name>.py` (thin shims).

Each module here defines its absl flags and a `main(argv)`; `run(main)` is its entry point. Only the launchers
change process-wide settings (`prepare_environment`, before TensorFlow is imported); importing `regnet_tf` changes
nothing global. A user error (bad input, missing data, a broken record, a NaN loss: `USER_ERRORS` and TensorFlow's
`OpError`) reaches the terminal as one `error: ...` line naming the facts; `--verbose` prints the traceback first.
A module here imports TensorFlow only inside `main`, so that the environment is set before TensorFlow loads.
"""

from __future__ import annotations

import os
import sys
import traceback

from regnet_tf.train import TrainingError
from regnet_tf.weights.pretrained import WeightsDownloadError

# Read once, when TensorFlow starts (so: set before it is imported). docs/SPEED.md has the oneDNN numbers.
ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "1",  # TensorFlow's C++ INFO lines
    # TensorFlow's BFC CPU allocator: its default one maps and page-faults every tensor over 32 MB afresh, e.g. each
    # float32 input batch of 64 x 224 px images (docs/DATA.md, "Input speed").
    "TF_CPU_ALLOCATOR_USE_BFC": "true",
    # oneDNN CPU kernels: the native grouped-convolution gradients (without oneDNN, regnet_tf.layers computes them
    # group by group, slower; TensorFlow turns oneDNN on by default only on some CPUs).
    "TF_ENABLE_ONEDNN_OPTS": "1",
}
# Errors whose message is the whole story for a user (raised by the library with the facts and the fix).
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, TrainingError, WeightsDownloadError)


def prepare_environment():
    """Sets the launchers' environment (`ENVIRONMENT`) where the user has not; a no-op once TensorFlow is loaded."""
    if "tensorflow" in sys.modules:
        return
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def is_user_error(exc) -> bool:
    """A library error with a message for the user, or a TensorFlow op error (e.g. from the input pipeline)."""
    tf = sys.modules.get("tensorflow")  # an OpError exists only once TensorFlow is loaded
    return isinstance(exc, USER_ERRORS) or (tf is not None and isinstance(exc, tf.errors.OpError))


def error_line(exc) -> str:
    """`error: <message>` on one line. A TensorFlow op error gives its own message without the graph's node trace
    (`regnet_tf.data.sources.user_message`: e.g. the file and record index of a truncated TFRecord)."""
    tf = sys.modules.get("tensorflow")
    text = str(exc)
    if tf is not None and isinstance(exc, tf.errors.OpError):
        from regnet_tf.data.sources import user_message  # TensorFlow is loaded already here

        lines = [line for line in exc.message.splitlines() if line.strip()]
        text = user_message(exc) or f"{type(exc).__name__}: {lines[0] if lines else exc.message}"
    return "error: " + " ".join(text.split())


def fail(exc):
    """Exits with status 1 and `error_line(exc)` on stderr."""
    sys.exit(error_line(exc))


def run(main, define_flags=None):
    """The entry point of a command: environment, its flags (`define_flags()`: a command defines its flags when it
    runs, so that importing the command modules defines nothing), then absl's `app.run(main)`; user errors end as
    one line (`--verbose`: after the traceback)."""
    prepare_environment()
    from absl import app, flags

    if define_flags is not None:
        define_flags()
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, "On an error, print the full traceback before the one-line message.")
    modules = [__name__] + ([define_flags.__module__] if define_flags else [])
    for module in modules:  # the command's flags are the script's own: --helpshort lists them
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

    def guarded(argv):
        try:
            return main(argv)
        except Exception as e:  # noqa: BLE001 - user errors become one line; anything else propagates
            if not is_user_error(e):
                raise
            if flags.FLAGS.verbose:
                traceback.print_exc()
            fail(e)

    app.run(guarded)
