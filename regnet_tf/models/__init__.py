"""The model families, one module each: spec, Keras blocks, complexity, scaling rule and zoo.

Importing the package imports every family module, which registers its spec kind and its models
(`regnet_tf.models.registry`); the zoo order (`list_models()`) is the order of the imports below. A new family is
one new module plus one line here. No TensorFlow is imported: the Keras code (and `common`, the Keras pieces the
families share) loads on first use.
"""

# isort: off  (the order of the zoo)
from regnet_tf.models import anynet  # noqa: F401
from regnet_tf.models import regnet  # noqa: F401
from regnet_tf.models import efficientnet  # noqa: F401
from regnet_tf.models import resnet  # noqa: F401
