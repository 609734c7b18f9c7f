import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# as the launchers do (regnet_tf.cli.ENVIRONMENT; importing regnet_tf sets nothing): native grouped-conv gradients
# on every CPU. Tests of the fallback without oneDNN run in subprocesses.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    if "keras" in sys.modules:
        import keras

        keras.backend.clear_session()
