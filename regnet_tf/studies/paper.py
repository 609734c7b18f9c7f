"""The papers' speed numbers that the speed study sets beside ours, each row with its table and the row's words.

The papers timed on GPUs and TPUs; the speed study times on the machine it runs on. Values are as printed (units in
the field names); ``quote`` is the table row as the paper's text file has it (tests/test_speed_study.py finds each
quote in ../shared/papers when the papers are there, and each number of a row in its quote). Top-1 values of the
recipes' own papers live in the recipes (``paper_top1``, held against tests/data/paper_values.yaml).

- `TABLE4`: RegNet paper ("Designing Network Design Spaces"), Table 4: EfficientNet B0-B5 and the RegNetY of about the
  same flops, trained with the same 100-epoch setup; inference ms for 64 images and training hours for 100 epochs on
  NVIDIA V100 GPUs (8 for training), the paper's batch sizes.
- `TABLE7`: Revisiting ResNets, Table 7 (appendix B): the ResNet-RS Pareto curve and EfficientNet B0-B7; V100
  latency (float32) and TPUv3 latency (bfloat16) of a training batch of 128 (halved until it fits), top-1 on
  ImageNet validation (EfficientNet's own published top-1). Five ResNet-RS rows print their speedup over the
  EfficientNet of about the same top-1 (``vs``): 2.1x-3.3x on V100s, 1.7x-2.7x on TPUs.
- `FIGURE2_R`: Fast and Accurate Model Scaling, Figure 2: Pearson r of epoch time (8 V100s, PyTorch) with flops,
  params and activations.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

REGNET = "Designing Network Design Spaces"
RESNET_RS = "Revisiting ResNets"
FAST_SCALING = "Fast and Accurate Model Scaling"


@dataclasses.dataclass(frozen=True)
class Table4Row:
    model: str  # our registry name
    gmacs: float  # "flops (B)": multiply-adds
    params_m: float
    acts_m: float
    batch: int  # the batch size of their timing
    infer_ms: float  # inference of 64 images, one V100
    train_hours: float  # 100 epochs on 8 V100s
    error: float  # top-1 error, their 100-epoch training ("ours")
    quote: str
    source: str = f"{REGNET}, Table 4"


# (EfficientNet, RegNetY) pairs of about the same flops, in the table's order.
TABLE4 = (
    (Table4Row("efficientnet_b0", 0.4, 5.3, 6.7, 256, 34, 11.7, 24.9,
               "EFFICIENTNET-B0 0.4 5.3 6.7 256 34 11.7 24.9±0.03 [23.7]"),
     Table4Row("regnety_004", 0.4, 4.3, 3.9, 1024, 19, 5.1, 25.9, "REGNETY-400MF 0.4 4.3 3.9 1024 19 5.1 25.9±0.16")),
    (Table4Row("efficientnet_b1", 0.7, 7.8, 10.9, 256, 52, 15.6, 24.1,
               "EFFICIENTNET-B1 0.7 7.8 10.9 256 52 15.6 24.1±0.16 [21.2]"),
     Table4Row("regnety_006", 0.6, 6.1, 4.3, 1024, 19, 5.2, 24.5, "REGNETY-600MF 0.6 6.1 4.3 1024 19 5.2 24.5±0.07")),
    (Table4Row("efficientnet_b2", 1.0, 9.2, 13.8, 256, 68, 18.4, 23.4,
               "EFFICIENTNET-B2 1.0 9.2 13.8 256 68 18.4 23.4±0.06 [20.2]"),
     Table4Row("regnety_008", 0.8, 6.3, 5.2, 1024, 22, 6.0, 23.7, "REGNETY-800MF 0.8 6.3 5.2 1024 22 6.0 23.7±0.03")),
    (Table4Row("efficientnet_b3", 1.8, 12.0, 23.8, 256, 114, 32.1, 22.5,
               "EFFICIENTNET-B3 1.8 12.0 23.8 256 114 32.1 22.5±0.05 [18.9]"),
     Table4Row("regnety_016", 1.6, 11.2, 8.0, 1024, 39, 10.1, 22.0,
               "REGNETY-1.6GF 1.6 11.2 8.0 1024 39 10.1 22.0±0.08")),
    (Table4Row("efficientnet_b4", 4.2, 19.0, 48.5, 128, 240, 65.1, 21.2,
               "EFFICIENTNET-B4 4.2 19.0 48.5 128 240 65.1 21.2±0.06 [17.4]"),
     Table4Row("regnety_040", 4.0, 20.6, 12.3, 512, 68, 16.8, 20.6,
               "REGNETY-4.0GF 4.0 20.6 12.3 512 68 16.8 20.6±0.08")),
    (Table4Row("efficientnet_b5", 9.9, 30.0, 98.9, 64, 504, 135.1, 21.5,
               "EFFICIENTNET-B5 9.9 30.0 98.9 64 504 135.1 21.5±0.11 [16.7]"),
     Table4Row("regnety_080", 8.0, 39.2, 18.0, 512, 113, 28.1, 20.1,
               "REGNETY-8.0GF 8.0 39.2 18.0 512 113 28.1 20.1±0.09")),
)


@dataclasses.dataclass(frozen=True)
class Table7Row:
    model: str  # our registry name
    resolution: int
    params_m: float
    gflops: float  # "FLOPs (B)": 2 x multiply-adds
    v100_s: float  # V100 latency, float32, a training batch of 128 (halved until it fits)
    tpu_ms: float  # TPUv3 latency, bfloat16, likewise
    top1: float
    quote: str
    recipe: Optional[str] = None  # our recipe of the row (ResNet-RS: its Table 8 hyperparameters)
    vs: Optional[str] = None  # the EfficientNet row a speedup is printed against ("(2.1x)"), e.g. "efficientnet_b2"
    source: str = f"{RESNET_RS}, Table 7"


TABLE7 = (
    Table7Row("efficientnet_b0", 224, 5.3, 0.8, 0.47, 90, 77.1, "EfficientNet-B0 224 5.3 0.8 0.47 90 77.1"),
    Table7Row("efficientnet_b1", 240, 7.8, 1.4, 0.82, 150, 79.1, "EfficientNet-B1 240 7.8 1.4 0.82 150 79.1"),
    Table7Row("resnet_rs_50", 160, 36, 4.6, 0.31, 70, 78.8, "ResNet-RS-50 160 36 4.6 0.31 70 78.8", "resnet_rs_50_160"),
    Table7Row("efficientnet_b2", 260, 9.2, 2.0, 1.03, 210, 80.1, "EfficientNet-B2 260 9.2 2.0 1.03 210 80.1"),
    Table7Row("resnet_rs_101", 160, 64, 8.4, 0.48, 120, 80.3,
              "ResNet-RS-101 160 64 8.4 0.48 (2.1×\\times×) 120 (1.8×\\times×) 80.3", "resnet_rs_101_160",
              "efficientnet_b2"),
    Table7Row("efficientnet_b3", 300, 12, 3.6, 1.76, 340, 81.6, "EfficientNet-B3 300 12 3.6 1.76 340 81.6"),
    Table7Row("resnet_rs_101", 192, 64, 12, 0.70, 170, 81.2, "ResNet-RS-101 192 64 12 0.70 170 81.2",
              "resnet_rs_101_192"),
    Table7Row("resnet_rs_152", 192, 87, 18, 0.99, 240, 82.0, "ResNet-RS-152 192 87 18 0.99 240 82.0",
              "resnet_rs_152_192"),
    Table7Row("efficientnet_b4", 380, 19, 8.4, 4.0, 710, 82.9, "EfficientNet-B4 380 19 8.4 4.0 710 82.9"),
    Table7Row("resnet_rs_152", 224, 87, 24, 1.48, 320, 82.8,
              "ResNet-RS-152 224 87 24 1.48 (2.7×\\times×) 320 (2.2×\\times×) 82.8", "resnet_rs_152_224",
              "efficientnet_b4"),
    Table7Row("resnet_rs_152", 256, 87, 31, 1.76, 410, 83.0,
              "ResNet-RS-152 256 87 31 1.76 (2.3×\\times×) 410 (1.7×\\times×) 83.0", "resnet_rs_152_256",
              "efficientnet_b4"),
    Table7Row("efficientnet_b5", 456, 30, 20, 8.16, 1510, 83.7, "EfficientNet-B5 456 30 20 8.16 1510 83.7"),
    Table7Row("resnet_rs_200", 256, 93, 40, 2.86, 570, 83.4, "ResNet-RS-200 256 93 40 2.86 570 83.4",
              "resnet_rs_200_256"),
    Table7Row("resnet_rs_270", 256, 130, 54, 3.76, 780, 83.8,
              "ResNet-RS-270 256 130 54 3.76 (2.2×\\times×) 780 (1.9×\\times×) 83.8", "resnet_rs_270_256",
              "efficientnet_b5"),
    Table7Row("efficientnet_b6", 528, 43, 38, 15.7, 3010, 84.0, "EfficientNet-B6 528 43 38 15.7 3010 84.0"),
    Table7Row("resnet_rs_350", 256, 164, 69, 4.72, 1100, 84.0,
              "ResNet-RS-350 256 164 69 4.72 (3.3×\\times×) 1100 (2.7×\\times×) 84.0", "resnet_rs_350_256",
              "efficientnet_b6"),
    Table7Row("efficientnet_b7", 600, 66, 74, 29.9, 6020, 84.7, "EfficientNet-B7 600 66 74 29.9 6020 84.7"),
    Table7Row("resnet_rs_350", 320, 164, 107, 8.48, 1630, 84.2, "ResNet-RS-350 320 164 107 8.48 1630 84.2",
              "resnet_rs_350_320"),
    Table7Row("resnet_rs_420", 320, 192, 128, 10.16, 2090, 84.4, "ResNet-RS-420 320 192 128 10.16 2090 84.4",
              "resnet_rs_420_320"),
)


@dataclasses.dataclass(frozen=True)
class Correlation:
    metric: str  # flops | params | acts
    scope: str  # "one strategy" | "across strategies" | "one base model" | "across models"
    r: float
    bound: str  # "=" or ">": the paper says r = value or r > value
    quote: str
    source: str = f"{FAST_SCALING}, Figure 2"


FIGURE2_R = (
    Correlation("flops", "one strategy", 0.99, "=", "For a single scaling strategy (e.g., w), runtime is highly "
                "correlated with flops (e.g., Pearson’s r = 0.99)."),
    Correlation("flops", "across strategies", 0.81, "=", "flops are only weakly predictive of runtime (r = 0.81)."),
    Correlation("params", "across strategies", 0.56, "=", "parameters are even more weakly correlated with runtime "
                "(r = 0.56)."),
    Correlation("acts", "across strategies", 0.99, "=", "activations are strongly predictive of runtime regardless "
                "of the scaling strategy (r = 0.99)."),
    Correlation("acts", "one base model", 0.99, ">", "For scaled ver- sions of each model, activations are highly "
                "predictive of runtime (r > 0.99)"),
    Correlation("acts", "across models", 0.95, "=", "activations are less predictive of runtime when com- "
                "paring scaled versions of different models (r = 0.95)."),
)


def paper_r(metric: str, scope: str) -> Optional[Correlation]:
    """The paper's Figure 2 correlation of ``metric`` in ``scope``, None where the paper gives none."""
    for c in FIGURE2_R:
        if c.metric == metric and c.scope == scope:
            return c
    return None
