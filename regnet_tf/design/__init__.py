"""Design-space tools of the RegNet paper (sections 3-4), docs/DESIGN_SPACES.md:

- `spaces`: the AnyNetX A-E and RegNet design spaces as plain data, seeded sampling in a flop regime, Table 1 sizes;
- `stats`: error EDFs (plain and complexity-normalized), the empirical bootstrap, the quantized linear fit (e_fit);
- `sweep`: populations trained with a recipe, one atomic record per model, resume, shards over hosts;
- `plots` / `report`: PNG plots (matplotlib, the ``plot`` extra) and the HTML report; the best model as a recipe.

Pure Python/numpy: importing this package imports no TensorFlow (training a sweep's models does).
"""

from regnet_tf.design.spaces import SPACES, AnyNetSpace, RegNetSpace, get_space, parse_regime, sample, size

__all__ = ["SPACES", "AnyNetSpace", "RegNetSpace", "get_space", "parse_regime", "sample", "size"]
