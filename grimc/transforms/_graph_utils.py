"""Helpers shared by the graph-level passes (not a pass: the name starts with `_`).

The graph passes all do the same few things: look up the constant array behind
a `graph.weight` value, add a new constant to the weight store, and replace a
producer/consumer pair by a rebuilt producer. Keeping those here makes each pass
file read as its rewrite rule alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.irdl import IRDLOperation
from xdsl.pattern_rewriter import PatternRewriter
from xdsl.rewriter import InsertPoint

from grimc.dialects.graph import WeightOp
from grimc.weights import WeightStore, store_for

OpT = TypeVar("OpT", bound=IRDLOperation)


class Constants:
    """Lazy view of a module's weight store.

    The store is opened on the first lookup only, so a pass that finds nothing
    to do neither loads an .npz nor attaches an empty store to the module.
    """

    def __init__(self, module: ModuleOp) -> None:
        self._module = module
        self._store: WeightStore | None = None

    @property
    def store(self) -> WeightStore:
        if self._store is None:
            self._store = store_for(self._module)
        return self._store

    def array(self, value: SSAValue | None) -> np.ndarray | None:
        """The constant behind `value` if a graph.weight defines it, else None."""
        if value is None or not isinstance(value.owner, WeightOp):
            return None
        return self.store[value.owner.key.data]

    def arrays(self, values: Sequence[SSAValue]) -> list[np.ndarray] | None:
        """The constants behind all `values`, or None if any of them is not constant."""
        if not all(isinstance(v.owner, WeightOp) for v in values):
            return None
        return [self.store[v.owner.key.data] for v in values]  # type: ignore[union-attr]

    def materialize(
        self, rewriter: PatternRewriter, hint: str, array: np.ndarray, before: Operation
    ) -> SSAValue:
        """Store `array` (as f32) under a fresh key; insert its graph.weight before `before`."""
        array = np.asarray(array, dtype=np.float32)
        key = self.store.add(hint, array)
        weight = WeightOp(key, array.shape)
        rewriter.insert(weight, InsertPoint.before(before))
        return weight.result


def key_of(value: SSAValue | None, default: str) -> str:
    """The store key behind `value` (a readable hint for derived weights)."""
    if value is not None and isinstance(value.owner, WeightOp):
        return value.owner.key.data
    return default


def available_at(value: SSAValue, op: Operation) -> bool:
    """Whether `value` is defined before `op`, so that `op` may use it.

    Graph functions are one block, so this is the in-block order (plus values
    of enclosing blocks); anything else is answered conservatively with False.
    """
    if isinstance(value, BlockArgument):
        return value.block.find_ancestor_op_in_block(op) is not None
    owner = value.owner
    assert isinstance(owner, Operation)
    block = owner.parent_block()
    anchor = block.find_ancestor_op_in_block(op) if block is not None else None
    return anchor is not None and owner.is_before_in_block(anchor)


def rebuild(op: OpT, **changes: SSAValue | Attribute | None) -> OpT:
    """A new op like `op` with the named operands and/or properties replaced.

    Going through the IRDL builder recomputes `operandSegmentSizes`, so an
    optional operand (bias, residual) can be added or dropped by name.
    """
    op_def = op.get_irdl_definition()
    operands: list[Any] = [changes.get(name, getattr(op, name)) for name, _ in op_def.operands]
    properties = {name: changes.get(name, op.properties.get(name)) for name in op_def.properties}
    unknown = set(changes) - {name for name, _ in op_def.operands} - set(op_def.properties)
    assert not unknown, f"{op.name} has no operand or property {sorted(unknown)}"
    return type(op).build(
        operands=operands,
        result_types=[r.type for r in op.results],
        properties=properties,
        attributes=dict(op.attributes),
    )


def fuse_into(rewriter: PatternRewriter, producer: OpT, consumer: Operation, **changes: Any) -> OpT:
    """Replace `consumer`, the single user of `producer`, by a rebuilt `producer`.

    The rebuilt op takes the producer's place in the block, so its operands
    still dominate it; `changes` must only name values that are available there.
    """
    fused = rebuild(producer, **changes)
    rewriter.insert(fused, InsertPoint.before(producer))
    rewriter.replace(consumer, [], fused.results)
    rewriter.erase(producer)
    return fused
