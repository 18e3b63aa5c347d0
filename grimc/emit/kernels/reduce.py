"""`graph.reduce` (max, min, sum, mean over any set of axes).

Every output element reduces the input elements at `oo[o] + ro[r]`: both offset
tables are computed here (numpy indexing of the input's element numbers). When
the reduced elements of an output are one contiguous run (the reduced axes are
the innermost ones) the template reads them with gv_* vectors instead of ro.
"""

from __future__ import annotations

import math

import numpy as np

from grimc.dialects import graph
from grimc.emit.kernel import KernelInstance, LoweringContext, lowers, shape


def reduce_offsets(op: graph.ReduceOp) -> tuple[np.ndarray, np.ndarray, bool]:
    """(oo, ro, contiguous): output o reduces x[oo[o] + ro[r]]; contiguous when
    ro is 0, 1, 2, ... (the reduced axes are the innermost)."""
    dims, axes = shape(op.x), set(graph.ints(op.axes))
    index = np.arange(math.prod(dims)).reshape(dims)
    out_off = index[tuple(0 if a in axes else slice(None) for a in range(len(dims)))].reshape(-1)
    red_off = index[tuple(slice(None) if a in axes else 0 for a in range(len(dims)))].reshape(-1)
    return out_off, red_off, bool((red_off == np.arange(red_off.size)).all())


@lowers(graph.ReduceOp)
def lower_reduce(op: graph.ReduceOp, ctx: LoweringContext) -> KernelInstance:
    dims = shape(op.x)
    out_off, red_off, contiguous = reduce_offsets(op)
    inputs = [("x", ctx.operand(op.x)), ("oo", ctx.blob(out_off, "reduce_out", np.int32))]
    if not contiguous:
        inputs.append(("ro", ctx.blob(red_off, "reduce_in", np.int32)))
    return KernelInstance(
        kind="reduce",
        params={"op": op.kind.data, "nout": int(out_off.size), "n": int(red_off.size)},
        inputs=inputs,
        outputs=[("y", ctx.result(op.y))],
        flops=math.prod(dims),
    )
