"""regnet_tf: RegNet (X/Y/Z), ResNet-RS and EfficientNet-RS for Keras 3 / TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="regnet_tf",
    version="0.1.0",
    description="RegNet X/Y/Z, ResNet-RS and EfficientNet-RS for Keras 3 / TensorFlow: exact models, complexity, "
    "scaling and training recipes",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["regnet_tf", "regnet_tf.*"]) + ["regnet_tf.recipes"],
    # the repository's top-level recipes/ ships inside the package, so `--recipe NAME` works after a plain install
    package_dir={"regnet_tf.recipes": "recipes"},
    package_data={"regnet_tf.recipes": ["*.yaml", "*/*.yaml"]},
    install_requires=[
        "tensorflow>=2.18",
        "keras>=3.8",
        "absl-py",
        "tensorflow-datasets",
        "tensorboard",
        "pyyaml",
        "numpy",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist", "pillow"],  # Pillow writes the CMYK JPEG of tests/test_data.py
        # Cross-checks against tf_keras.applications (Keras 2: RegNet, ResNet-RS); tests skip when absent.
        "compare": ["tf-keras"],
    },
    license="MIT",
)
