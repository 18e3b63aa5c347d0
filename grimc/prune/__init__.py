"""BCR pruning: the rule (`rules`), the one selection (`select`), layer discovery in
ONNX models (`discover`), the per-layer config (`config`, `plan`), the report
(`report`) and `prune_model` (`model`). The torch API in grimc.train uses the
same rules and selection.

**What is pruned.** Every weight initializer of a Conv, of a
Gemm/MatMul with constant B, and the W and R of GRU/LSTM/RNN, viewed as GEMM
matrices with rows = outputs:

- Conv ``[Cout, Cin/g, kh, kw]`` -> g matrices ``(Cout/g, Cin/g*kh*kw)``;
- Gemm/MatMul ``B [K, N]`` -> ``W = B^T (N, K)`` (Gemm transB=1: ``W = B``);
- GRU/LSTM/RNN ``W [dirs, G*H, I]`` / ``R [dirs, G*H, H]`` -> one matrix per
  direction; the layer names are ``<layer>.W`` and ``<layer>.R``.

A layer is named as everywhere in grimc (`grimc.layers.layer_names`: the
sanitized node name, the weight's name when the node has none; the kernel
profile and `grimc inspect` use the same names); patterns (`fnmatch` globs) match the layer name or the weight's name. A weight
shared by several nodes is pruned once, in the view of its first consumer.

**How.** Each matrix is cut into ``br x bc`` blocks (edge blocks partial). In
each block, first the block-columns with the largest L2 norm are kept, then,
among the kept columns, the block-rows with the largest L2 norm; the rest
becomes 0. What survives is ``kept_rows x kept_cols`` per block, exactly the
structure `grimc.bcr_format.BCRMatrix.from_dense` detects (kept weights that
were already 0 stay 0, so it may detect fewer). Ties keep the lower index.

- *Balanced* (default): every full block keeps ``kc`` columns and ``kr`` rows
  (per-block top-k). A partial edge block keeps ``round(extent * k / full)``,
  at least 1 and at most k.
- *Unbalanced*: one global ranking per layer (all groups/directions together):
  block-columns by RMS (L2 / sqrt(length), which is the L2 order inside a
  full stripe and fair to partial edge blocks) until the kept entries are
  nearest to the column density, then block-rows (scored on the kept columns)
  likewise for the row density. Blocks may end up empty.
- A block dimension larger than the matrix is clipped to it: ``br >= M`` drops
  whole input columns of W, ``bc >= K`` whole output rows (filters), both is
  whole-matrix column+row pruning. The report shows the effective block.

**Rates.** Column rate ``pc`` and row rate ``pr`` (pruned fractions) give
density ``(1-pc)(1-pr)``; ``--col-rate/--row-rate`` set them. ``--rate R`` asks
for compression R = 1/density and splits it (the default rule):

    column compression Rc = min(R ** (1 - row_share), bc)     row_share default 0
    kc = clamp(round(bc / Rc), 1, bc)
    kr = clamp(round(br * bc / (R * kc)), 1, br)

so with the default row_share 0 the whole rate is column pruning while
``R <= bc`` (and bc/R is a whole number), and row pruning makes up the rest:
beyond bc (one column per block) and the rounding of kc. 8x16 blocks: R=8 keeps
8x2, R=16 8x1, R=32 4x1, R=10 6x2. ``row_share`` 0.5 splits R evenly in log
space. Balanced blocks cannot go below 1/(br*bc), so a larger R is an error
(a warning when only a layer's clipped block is that small: it gets 1x1).

**Dense by default**: depthwise convs (Cin/g == 1), layers with a GEMM
reduction K < 32 (stems over RGB input: 3*3*3 = 27) and layers with fewer than
2048 weights (`grimc.layers.MIN_SPARSE_WEIGHTS`, the threshold bcr-detect uses). ``include``/``exclude`` patterns and a config entry's ``dense``
override these rules (precedence: exclude, include, config, rules).

**Config file** (TOML)::

    [defaults]                 # optional; same keys as the CLI options
    block = "8x16"
    rate = 8

    [layers]                   # pattern -> settings, or "dense"
    "conv_*" = { block = "4x16", col_rate = 0.75, row_rate = 0.5 }
    "conv_3" = { rate = 16, balanced = false }
    "gemm_0" = "dense"
    "conv_0" = { dense = false }    # prune although the rules keep it dense

Keys: block, rate, col_rate, row_rate, row_share, balanced, dense (and
min_weights, min_k in [defaults]). Every matching glob entry applies in file
order, then exact names; later keys override earlier ones, and setting
``rate`` replaces col_rate/row_rate and vice versa. Precedence overall:
built-in defaults < [defaults] < CLI options / API arguments < [layers].

Bytes are counted as grimc stores weights: float32 values, and for pruned
layers the BCRC index arrays (`grimc.bcr_format`).
"""

from grimc.prune.config import ConfigEntry, PruneConfig
from grimc.prune.discover import Layer, PrunableLayer, dense_rule, find_layers, matches
from grimc.prune.model import prune_model, serialize
from grimc.prune.plan import Options, Plan
from grimc.prune.report import LayerReport, PruneResult
from grimc.prune.rules import (
    DEFAULT_BLOCK,
    DEFAULT_RATE,
    MIN_K,
    MIN_WEIGHTS,
    PruneError,
    PruneWarning,
    Settings,
    balanced_keep,
    effective_block,
    merge_options,
    parse_block,
    split_rate,
    validate_options,
)
from grimc.prune.select import Pruned, bcr_mask, prune_matrices

__all__ = [
    "DEFAULT_BLOCK", "DEFAULT_RATE", "MIN_K", "MIN_WEIGHTS", "ConfigEntry", "Layer", "LayerReport",
    "Options", "Plan", "PrunableLayer", "PruneConfig", "PruneError", "PruneResult",
    "PruneWarning", "Pruned", "Settings", "balanced_keep", "bcr_mask", "dense_rule",
    "effective_block", "find_layers", "matches", "merge_options", "parse_block",
    "prune_matrices", "prune_model", "serialize", "split_rate", "validate_options",
]
