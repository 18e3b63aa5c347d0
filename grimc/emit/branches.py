"""Run-time If as a branch in the generated code.

The frontend imports an If whose condition is known only at run time as both
branches' ops and `graph.where(cond, then, else)` per output. Here, for every
`graph.where` on a one-element condition, the ops whose results reach only
one side of it (its *cone*: every use is by the cone or by that side's
operand) are guarded: their kernels run under `if (cond != 0)` or
`if (cond == 0)`, so only the taken branch's kernels run. The select stays
and reads the taken side; the untaken side's buffer is not written that run,
and `gv_where` blends bitwise, so its stale contents are never computed with.
Nested Ifs give an op several guards, all of which must hold, outermost first.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import func
from xdsl.ir import Operation, SSAValue

from grimc.dialects.graph import FlattenOp, ReshapeOp, WeightOp, WhereOp
from grimc.emit.kernel import numel


@dataclass(frozen=True)
class Guard:
    """Run only when the one-element tensor `cond` is non-zero (`taken`) or zero."""

    cond: SSAValue
    taken: bool


def branch_guards(fn: func.FuncOp) -> dict[Operation, list[Guard]]:
    """The guards of every op of `fn` that only one side of a run-time select needs."""
    ops = list(fn.body.block.ops)
    position = {op: i for i, op in enumerate(ops)}
    guards: dict[Operation, list[Guard]] = {}
    for where in ops:
        if not isinstance(where, WhereOp) or numel(where.cond) != 1 or where.x is where.y_in:
            continue
        cond = where.cond
        while isinstance(cond.owner, ReshapeOp | FlattenOp):  # aliases: the same buffer
            cond = cond.owner.x
        owner = cond.owner
        ready = position[owner] if isinstance(owner, Operation) else -1
        for index, taken in ((1, True), (2, False)):
            for op in _cone(ops[ready + 1 : position[where]], where, index):
                # outer Ifs' selects come later: their guard goes first, so an
                # inner condition is read only once its own branch is known
                guards.setdefault(op, []).insert(0, Guard(cond, taken))
    return guards


def _cone(candidates: list[Operation], where: WhereOp, index: int) -> set[Operation]:
    """The ops among `candidates` (those after the condition is computed, in
    order) whose every result use is by the cone or is operand `index` of `where`."""
    cone: set[Operation] = set()
    for op in reversed(candidates):
        if isinstance(op, WeightOp):
            continue
        uses = [use for result in op.results for use in result.uses]
        if uses and all(
            use.operation in cone or (use.operation is where and use.index == index) for use in uses
        ):
            cone.add(op)
    return cone
