"""The model families, one module each: spec, Keras blocks, complexity, scaling rule and zoo.

- `registry`: the `Spec` base class and the register of names and kinds (a leaf);
- `anynet`, `regnet`, `efficientnet`, `resnet`: one family each; importing one registers its spec kind and its models;
- `common`: the Keras pieces the families share (imports TensorFlow; the families load it on first use).

This package init imports nothing, so importing `regnet_tf.models.registry` (which runs it first) loads no family.
`regnet_tf.zoo` imports every family module, in zoo order, and looks names up; a new family is one new module here
plus one import line there.
"""
