"""The padding conventions of strided convolutions and pools, a spec option of every family. A leaf.

The output size is the same in both:

- "symmetric": (k - 1) // 2 on both sides, as PyTorch, pycls, timm and the TF1 ResNet `fixed_padding`;
- "tf_same": TensorFlow's "SAME", the extra row and column after (bottom/right) when k - s is odd, as Keras's
  EfficientNet (`correct_pad`) and tf_keras's RegNet.

Weights reproduce exactly only in the convention they were trained in (docs/WEIGHTS.md).
"""

PADDINGS = ("symmetric", "tf_same")


def check_padding(padding: str) -> str:
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; valid: {', '.join(PADDINGS)}")
    return padding
