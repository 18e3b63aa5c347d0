"""RNN, GRU and LSTM (default activations only).

All results (Y, Y_h and Y_c) are always created; outputs the model leaves
unnamed ("") are simply not bound. The graph ops use layout 0; a batch-first
(layout = 1) cell gets transposes of X and the initial states before it and of
its results after it (those of constant states fold away).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import SSAValue

from grimc.dialects.graph import (
    GRUOp,
    LSTMOp,
    RecurrentOp,
    RNNOp,
    TransposeOp,
    f32_attr,
    i64_attr,
)
from grimc.frontend.context import NodeContext, Value, build, converter
from grimc.names import quote_for_message


@dataclass(frozen=True)
class Cell:
    op_type: type[RecurrentOp]
    activations: tuple[str, ...]
    """ONNX default activations, per direction."""
    extra_inputs: tuple[str, ...] = ()
    """Operand names after initial_h (ONNX inputs 6, 7, ...)."""
    extra_results: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    """Integer attributes (default 0) carried over as properties."""


CELLS: dict[str, Cell] = {
    "RNN": Cell(RNNOp, ("Tanh",)),
    "GRU": Cell(GRUOp, ("Sigmoid", "Tanh"), flags=("linear_before_reset",)),
    "LSTM": Cell(
        LSTMOp,
        ("Sigmoid", "Tanh", "Tanh"),
        extra_inputs=("initial_c", "p"),
        extra_results=("y_c",),
        flags=("input_forget",),
    ),
}

DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


def _compile_time(ctx: NodeContext, index: int, what: str) -> None:
    """Weights are compiled into the model: a run-time one is refused here, at its node."""
    if ctx.has_input(index):
        ctx.const(index, f"{what}; run-time weights are not supported")


@converter(*CELLS)
def recurrent(ctx: NodeContext) -> list[Value]:
    cell = CELLS[ctx.node.op_type]
    direction = ctx.str_attr("direction", "forward")
    if direction not in DIRECTIONS:
        raise ctx.fail(f"unsupported direction {quote_for_message(direction)}")
    _check_supported(ctx, cell, DIRECTIONS[direction])
    batch_first = ctx.int_attr("layout", 0) == 1
    xs = ctx.shape(0)
    if len(xs) != 3:
        raise ctx.fail(f"X must be [seq_length, batch, input_size], got {list(xs)}")
    seq, batch, _ = (xs[1], xs[0], xs[2]) if batch_first else xs
    _check_sequence_lens(ctx, seq)
    hidden = ctx.int_attr("hidden_size", ctx.shape(2)[-1])
    dirs = DIRECTIONS[direction]
    swap = _swap_01 if batch_first else _same
    for index, what in ((1, "weight W"), (2, "weight R"), (3, "bias B"), (7, "peepholes P")):
        if index < 4 or "p" in cell.extra_inputs:
            _compile_time(ctx, index, what)
    operands = {
        "x": swap(ctx, ctx.value(0)),
        "w": ctx.value(1),
        "r": ctx.value(2),
        "b": ctx.optional_value(3),
        "initial_h": swap(ctx, ctx.optional_value(5)),
        **{name: ctx.optional_value(6 + i) for i, name in enumerate(cell.extra_inputs)},
    }
    if "initial_c" in operands:
        operands["initial_c"] = swap(ctx, operands["initial_c"])
    state = (dirs, batch, hidden)
    results = {
        "y": (seq, dirs, batch, hidden),
        "y_h": state,
        **dict.fromkeys(cell.extra_results, state),
    }
    props = {
        "hidden_size": i64_attr(hidden),
        "direction": StringAttr(direction),
        "clip": f32_attr(ctx.float_attr("clip")) if ctx.has_attr("clip") else None,
        **{flag: i64_attr(ctx.int_attr(flag, 0)) for flag in cell.flags},
    }
    op = ctx.emit(build(cell.op_type, operands, results, props))
    states = [op.y_h, *(getattr(op, name) for name in cell.extra_results)]
    if not batch_first:
        return [op.y, *states]
    y = ctx.emit(TransposeOp(op.y, (2, 0, 1, 3))).y  # [batch, seq, dirs, hidden]
    return [y, *(_swap_01(ctx, v) for v in states)]


def _same(ctx: NodeContext, value: SSAValue | None) -> SSAValue | None:
    return value


def _swap_01(ctx: NodeContext, value: SSAValue | None) -> SSAValue | None:
    """Exchange the first two axes of a 3-D tensor (batch-first <-> layout 0)."""
    return None if value is None else ctx.emit(TransposeOp(value, (1, 0, 2))).y


def _check_supported(ctx: NodeContext, cell: Cell, dirs: int) -> None:
    """Only what the graph ops compute: the default activations."""
    if ctx.int_attr("layout", 0) not in (0, 1):
        raise ctx.fail("layout must be 0 or 1")
    if ctx.has_attr("activations"):
        given = tuple(a.decode() if isinstance(a, bytes) else a for a in ctx.attr("activations"))
        if tuple(a.lower() for a in given) != tuple(a.lower() for a in cell.activations * dirs):
            shown = ", ".join(quote_for_message(a) for a in given)
            raise ctx.fail(
                f"activations [{shown}] are not supported; only the defaults {list(cell.activations)}"
            )
    for name in ("activation_alpha", "activation_beta"):
        if ctx.has_attr(name):
            raise ctx.fail(f"attribute '{name}' is not supported")


def _check_sequence_lens(ctx: NodeContext, seq: int) -> None:
    """Variable-length batches are not supported: every length must be seq_length."""
    if ctx.has_input(4):
        lens = ctx.int_const(4, "sequence_lens")
        if any(n != seq for n in lens):
            raise ctx.fail(f"sequence_lens {list(lens)} differ from seq_length {seq}")
