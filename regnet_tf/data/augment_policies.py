"""RandAugment's magnitude mapping, AutoAugment's policies and the Contrast op's modes: plain data, no TensorFlow
(DataConfig validates `autoaugment` against `AUTOAUGMENT_POLICIES` and `contrast_mode` against `CONTRAST_MODES`
without importing TensorFlow). The ops themselves are in `augment_ops`, the policies that apply them in `augment`
(docs/AUGMENT.md).
"""

MAX_LEVEL = 10.0
RANDAUGMENT_OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast",
                   "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
SIGNED_OPS = frozenset({"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"})  # negated with probability 0.5
CONTRAST_MODES = ("tf1", "model_garden", "pil")  # the variants of `augment_ops.contrast` (docs/AUGMENT.md)


def level_to_arg(magnitude, translate_const=100.0, cutout_const=40.0):
    """The reference mapping from magnitude (0..10 nominal, not clipped) to each op's argument. Signed ops (see
    SIGNED_OPS) get the returned value negated with probability 0.5; ops without argument map to None."""
    m = float(magnitude) / MAX_LEVEL
    enhance = m * 1.8 + 0.1
    return {
        "AutoContrast": None, "Equalize": None, "Invert": None,
        "Rotate": m * 30.0,
        "Posterize": int(m * 4),
        "Solarize": int(m * 256),
        "SolarizeAdd": int(m * 110),
        "Color": enhance, "Contrast": enhance, "Brightness": enhance, "Sharpness": enhance,
        "ShearX": m * 0.3, "ShearY": m * 0.3,
        "TranslateX": m * float(translate_const), "TranslateY": m * float(translate_const),
        "Cutout": int(m * float(cutout_const)),
    }


# AutoAugment policy v0 (Cubuk et al., 2018; the reference's `policy_v0`): (op, probability, level) pairs.
POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)),
    (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)),
    (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
    (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
    (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
    (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)),
    (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
    (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)),
    (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)),
    (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)),
    (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
    (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
    (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
AUTOAUGMENT_POLICIES = {"v0": POLICY_V0}  # AutoAugment policy name -> its sub-policies
