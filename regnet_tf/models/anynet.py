"""AnyNet: the per-stage network description that every other part of the package reads.

An `AnyNetSpec` says everything about a network's architecture: stem, per-stage depths ``ds``, widths
``ws``, strides ``ss``, bottleneck multipliers ``bs`` and group widths ``gs``, the block type, SE ratio,
head and activation (RegNet paper, section 3.1 and figure 3). The Keras builder (`regnet_tf.models.build`)
and the analytic counter (`regnet_tf.complexity`) both walk this description, so a test that compares
counted params with the built model's trainable weights guards both. Pure Python: no TensorFlow here.

Block types (paper notation, appendix D of the RegNet paper):

- ``X``: residual bottleneck with a grouped 3x3 conv (1x1, 3x3 grouped with the stride, 1x1).
- ``Y``: ``X`` plus squeeze-excitation after the 3x3 (``se_ratio`` > 0, 0.25 for RegNetY).
- ``Z``: inverted bottleneck (``b`` = 4), SiLU, SE, no projection shortcut and no activation after the add
  ("Fast and Accurate Model Scaling", figure 3).
- ``R``: ``X`` without groups (one group over the whole bottleneck width).
- ``V``: vanilla block, two 3x3 convs (as pycls's ``VanillaBlock``), no residual.
- ``VR``: ``V`` plus a residual connection (pycls's ``ResBasicBlock``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Tuple

BLOCK_TYPES = ("X", "Y", "Z", "R", "V", "VR")
STEM_TYPES = ("simple", "res")
ACTIVATIONS = ("relu", "silu")


def adjust_block_compatibility(ws, bs, gs):
    """Make widths ``ws`` compatible with bottleneck multipliers ``bs`` and group widths ``gs``.

    RegNet paper appendix D, as pycls does it: the group width is clamped to the bottleneck width, and the
    bottleneck width is rounded (half to even, Python ``round``) to a multiple of the group width (of
    lcm(g, b) for integer b > 1); the stage width follows from the bottleneck width.
    """
    assert len(ws) == len(bs) == len(gs)
    if not all(b < 1 or b % 1 == 0 for b in bs):
        raise ValueError(f"bottleneck multipliers must be < 1 or whole numbers, got {list(bs)}")
    ws_out, gs_out = [], []
    for w, b, g in zip(ws, bs, gs):
        v = int(max(1, w * b))
        g = int(min(g, v))
        m = math.lcm(g, int(b)) if b > 1 else g
        v = max(m, int(round(v / m) * m))
        w = int(v / b)
        assert w * b % g == 0, (w, b, g)
        ws_out.append(w)
        gs_out.append(g)
    return ws_out, list(bs), gs_out


@dataclasses.dataclass(frozen=True)
class AnyNetSpec:
    """A network as explicit per-stage lists (pycls ``ANYNET`` config, channels in the paper's notation)."""

    ds: Tuple[int, ...]  # depth (number of blocks) per stage
    ws: Tuple[int, ...]  # output width per stage
    ss: Tuple[int, ...] = ()  # stride of the first block of each stage (default 2 everywhere)
    bs: Tuple[float, ...] = ()  # bottleneck multiplier per stage: w_b = round(w * b) (default 1.0)
    gs: Tuple[int, ...] = ()  # group width per stage (default: one group, i.e. g = w_b)
    block: str = "X"
    se_ratio: float = 0.0  # SE width = round(se_ratio * block input width); 0 disables SE
    stem: str = "simple"  # "simple": 3x3 s2 conv; "res": 7x7 s2 conv + 3x3 s2 max pool
    stem_w: int = 32
    head_w: int = 0  # optional 1x1 conv + BN + act before pooling (RegNetZ); 0 disables it
    activation: str = "relu"
    dropout: float = 0.0  # dropout before the classifier
    zero_init_last_bn: bool = False  # zero gamma of each block's last BN (pycls BN.ZERO_INIT_FINAL_GAMMA)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.9  # Keras convention (= PyTorch momentum 0.1)

    def __post_init__(self):
        n = len(self.ds)
        if n == 0 or len(self.ws) != n:
            raise ValueError(f"ds and ws need one entry per stage, got ds={self.ds}, ws={self.ws}")
        set_ = lambda k, v: object.__setattr__(self, k, tuple(v))  # noqa: E731  (frozen dataclass)
        set_("ds", (int(d) for d in self.ds))
        set_("ws", (int(w) for w in self.ws))
        set_("ss", self.ss or (2,) * n)
        set_("bs", self.bs or (1.0,) * n)
        if not self.gs or self.block == "R":  # R: one group over the whole bottleneck width
            set_("gs", (max(1, int(round(w * b))) for w, b in zip(self.ws, self.bs)))
        else:
            set_("gs", (int(g) for g in self.gs))
        for key in ("ss", "bs", "gs"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key} needs {n} entries (one per stage), got {getattr(self, key)}")
        if self.block not in BLOCK_TYPES:
            raise ValueError(f"unknown block type {self.block!r}; valid: {', '.join(BLOCK_TYPES)}")
        if self.stem not in STEM_TYPES:
            raise ValueError(f"unknown stem {self.stem!r}; valid: {', '.join(STEM_TYPES)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if self.block == "Y" and self.se_ratio <= 0:
            raise ValueError("block 'Y' is the X block with squeeze-excitation: set se_ratio > 0 (0.25)")
        if any(d < 1 for d in self.ds) or any(w < 1 for w in self.ws):
            raise ValueError(f"depths and widths must be positive, got ds={self.ds}, ws={self.ws}")
        if self.block in ("X", "Y", "Z", "R"):
            for i, (w, b, g) in enumerate(zip(self.ws, self.bs, self.gs)):
                w_b = int(round(w * b))
                if w_b % g:
                    raise ValueError(
                        f"stage {i + 1}: bottleneck width {w_b} (= {w} x {b}) is not divisible by the group width"
                        f" {g}; run adjust_block_compatibility(ws, bs, gs) first"
                    )

    @property
    def num_stages(self) -> int:
        return len(self.ds)

    @property
    def out_width(self) -> int:
        """Width of the features that reach the classifier."""
        return self.head_w or self.ws[-1]

    def blocks(self):
        """Yields (stage, block, w_in, w_out, stride, b, g) for every block, in order (1-based indices)."""
        w_in = self.stem_w
        for i, (d, w, s, b, g) in enumerate(zip(self.ds, self.ws, self.ss, self.bs, self.gs)):
            for j in range(d):
                yield i + 1, j + 1, w_in, w, (s if j == 0 else 1), b, g
                w_in = w

    def replace(self, **changes) -> "AnyNetSpec":
        return dataclasses.replace(self, **changes)


def se_width(w_in: int, se_ratio: float) -> int:
    """SE width: round(se_ratio * block input width), as pycls and timm (not of the bottleneck width)."""
    return int(round(w_in * se_ratio))


def block_has_projection(block: str, w_in: int, w_out: int, stride: int) -> Optional[bool]:
    """True: 1x1 projection shortcut; False: identity shortcut; None: no shortcut at all."""
    if block == "V":
        return None
    same = w_in == w_out and stride == 1
    if block == "Z":
        return False if same else None
    return not same
