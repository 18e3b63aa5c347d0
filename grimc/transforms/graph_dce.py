"""graph-dce: erase graph ops whose results are unused, weights included.

Folding passes leave the ops they replaced behind (old weights, BN statistics,
a transposed weight's source); this pass removes them so that later passes and
code generation see only live ops. It is scoped to the graph dialect (all of
whose ops are Pure); other dialects are left to xDSL's own `dce`. Weight store
entries are never dropped: a store may be shared by several modules, and a
weight is emitted only if a graph.weight still names it.

A recurrent cell is removed only when none of its results (Y, Y_h, Y_c) is used.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import PatternRewriter, PatternRewriteWalker, RewritePattern
from xdsl.transforms.dead_code_elimination import is_trivially_dead

from grimc.dialects.graph import GraphOp


class EraseDeadGraphOp(RewritePattern):
    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if isinstance(op, GraphOp) and is_trivially_dead(op):
            rewriter.erase(op)


@dataclass(frozen=True)
class GraphDce(ModulePass):
    """Remove unused (pure) graph ops, walking uses before definitions."""

    name = "graph-dce"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(EraseDeadGraphOp(), walk_reverse=True).rewrite_module(op)
