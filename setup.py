"""regnet_tf: RegNet (X/Y/Z), ResNet-RS and EfficientNet-RS for Keras 3 / TensorFlow."""

import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    """`__version__` of regnet_tf/__init__.py, read as text (installing must not import the package)."""
    with open(os.path.join(HERE, "regnet_tf", "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="regnet_tf",
    version=read_version(),
    description="RegNet X/Y/Z, ResNet-RS and EfficientNet-RS for Keras 3 / TensorFlow: exact models, complexity, "
    "scaling and training recipes",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["regnet_tf", "regnet_tf.*"]) + ["regnet_tf.recipes"],
    # the repository's top-level recipes/ ships inside the package, so `--recipe NAME` works after a plain install
    package_dir={"regnet_tf.recipes": "recipes"},
    package_data={"regnet_tf.recipes": ["*.yaml", "*/*.yaml"], "regnet_tf": ["imagenet_classes.txt"],
                  "regnet_tf.weights": ["pretrained.json"]},
    install_requires=[
        "tensorflow>=2.18",
        "keras>=3.8",
        "absl-py",
        "tensorflow-datasets",
        "tensorboard",
        "pyyaml",
        "numpy",
        # .safetensors checkpoints (timm) without torch; 0.4.1 reads bfloat16 into numpy through ml_dtypes
        "safetensors>=0.4.1",
        "ml_dtypes",
        # TFDS (4.9.x) imports it when it prepares a dataset (`tfds build`, the first `tfds.load`) without declaring it
        "importlib_resources",
    ],
    extras_require={
        # Pillow writes the CMYK JPEG of tests/test_data.py; matplotlib draws the sweep plots the tests open; xdist:
        # tests/conftest.py schedules the two workers (docs/DEVELOPMENT.md)
        "test": ["pytest>=7", "pytest-xdist>=3.5", "pillow", "matplotlib"],
        # Cross-checks against tf_keras.applications (Keras 2: RegNet, ResNet-RS); tests skip when absent.
        "compare": ["tf-keras"],
        # Full-size equivalence with timm (tests skip without it) and reading .pth / .pyth checkpoints. CI does not
        # install it: its equivalence tests run from committed fixtures. torch 2.14.1 installs from the registry here.
        "timm": ["torch", "timm"],
        # Exports and their runtimes (regnet_tf.deploy, docs/DEPLOY.md: the verified versions): TFLite through
        # ai-edge-litert's interpreter, ONNX through tf2onnx + onnxruntime, OpenVINO through its TensorFlow frontend.
        # CI installs it; tests/test_deploy.py skips without it.
        "export": ["ai-edge-litert>=2.0", "tf2onnx>=1.17", "onnxruntime>=1.20", "openvino>=2025.0"],
        # Plots of design-space sweeps, the speed study and collected results (analyze_sweep, speed_study, collect);
        # the sampling, timing and statistics import without it.
        "plot": ["matplotlib"],
    },
    # `regnet-train` ... = `python launch/train.py` ...: each launcher is a shim over regnet_tf.cli.<command>
    entry_points={"console_scripts": [
        "regnet-train = regnet_tf.cli.train:run",
        "regnet-eval = regnet_tf.cli.eval:run",
        "regnet-export = regnet_tf.cli.export:run",
        "regnet-models = regnet_tf.cli.models:run",
        "regnet-scale = regnet_tf.cli.scale:run",
        "regnet-convert = regnet_tf.cli.convert:run",
        "regnet-sweep = regnet_tf.cli.sweep:run",
        "regnet-analyze-sweep = regnet_tf.cli.analyze_sweep:run",
        "regnet-search = regnet_tf.cli.search:run",
        "regnet-build-tfrecords = regnet_tf.cli.build_tfrecords:run",
        "regnet-benchmark = regnet_tf.cli.benchmark:run",
        "regnet-benchmark-input = regnet_tf.cli.benchmark_input:run",
        "regnet-speed-study = regnet_tf.cli.speed_study:run",
        "regnet-collect = regnet_tf.cli.collect:run",
    ]},
    license="MIT",
)
