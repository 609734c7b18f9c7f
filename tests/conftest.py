import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# as `import regnet_tf` does (tests may import TensorFlow first): native grouped-conv gradients on every CPU
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    if "keras" in __import__("sys").modules:
        import keras

        keras.backend.clear_session()
