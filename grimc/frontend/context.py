"""State shared by the ONNX converters: values, weights, diagnostics, registry.

During import every ONNX tensor name maps to either an IR value (an activation)
or a numpy array (a constant: initializer or folded subgraph). Constants become
`graph.weight` ops only when a compute op needs them as operands, so shape
tensors never reach the IR. Converters are plain functions registered per ONNX
op type; they receive a `NodeContext` and return one entry per node output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias, TypeVar

import numpy as np
import onnx
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.irdl import IRDLOperation

from grimc.dialects.graph import IDENTIFIER, ReshapeOp, WeightOp, shape_of, tensor
from grimc.errors import GrimcError
from grimc.limits import FoldBudget, shape_problem
from grimc.names import quote_for_message
from grimc.weights import WeightStore, all_finite


class FrontendError(GrimcError):
    """An ONNX model grimc cannot import; one line naming the file and the place."""


Value: TypeAlias = SSAValue | np.ndarray
"""What an ONNX tensor name stands for: an activation or a constant."""

Converter: TypeAlias = Callable[["NodeContext"], Sequence[Value | None]]
CONVERTERS: dict[str, Converter] = {}
"""ONNX op type (default domain) -> converter; filled by the op modules."""

FOLDED_ONLY = ("Constant", "ConstantOfShape")
"""Ops that are always folded into constants, so have no converter."""

INLINED = ("If",)
"""Ops the importer inlines (`grimc.frontend.control_flow`) instead of converting."""

_F = TypeVar("_F", bound=Converter)
_OP = TypeVar("_OP", bound=IRDLOperation)


def converter(*op_types: str) -> Callable[[_F], _F]:
    """Register a converter for the given ONNX op types."""

    def register(fn: _F) -> _F:
        for op_type in op_types:
            assert op_type not in CONVERTERS, op_type
            CONVERTERS[op_type] = fn
        return fn

    return register


def first_line(exc: BaseException) -> str:
    """The first line of an exception message, bounded and printable.

    Library messages may quote model-provided names, so control and
    bidirectional characters are escaped like in `quote_for_message`.
    """
    line = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line
    )


def supported_ops() -> list[str]:
    return sorted({*CONVERTERS, *FOLDED_ONLY, *INLINED})


def op_label(node: onnx.NodeProto) -> str:
    """`Conv` or `com.foo.Bar`, quoted when the model made it unprintable."""
    label = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
    ok = label and len(label) <= 60 and IDENTIFIER.match(label.replace(".", "_"))
    return label if ok else quote_for_message(label)


def node_label(node: onnx.NodeProto, index: int) -> str:
    where = quote_for_message(node.name) if node.name else f"#{index}"
    return f"node {where} ({op_label(node)})"


def to_float32(array: np.ndarray, what: str) -> np.ndarray:
    """float16/float64/bfloat16 weights are converted to float32 (grimc's only type).

    Raises a plain ValueError naming the dtype or the non-finite entries;
    callers add the location.
    """
    if array.dtype.kind != "f" and array.dtype.name != "bfloat16":
        raise ValueError(f"{what} has dtype {array.dtype}; grimc computes in float32 only")
    with np.errstate(over="ignore"):  # float64 overflow shows up as inf below
        result = np.asarray(array, dtype=np.float32, order="C")  # keeps 0-d arrays 0-d
    if not all_finite(result):
        bad = int(np.size(result) - np.count_nonzero(np.isfinite(result)))
        raise ValueError(f"{what} has {bad} non-finite value(s) (NaN or Inf)")
    return result


def build(
    op_type: type[_OP],
    operands: Mapping[str, SSAValue | None],
    results: Mapping[str, Sequence[int]],
    properties: Mapping[str, Attribute | None],
) -> _OP:
    """Create `op_type` from operands/results given by field name.

    Field order follows the op's IRDL definition, so converters do not depend
    on how the dialect orders inherited fields.
    """
    definition = op_type.get_irdl_definition()
    return op_type(
        operands=[operands.get(name) for name, _ in definition.operands],
        result_types=[tensor(results[name]) for name, _ in definition.results],
        properties=dict(properties),
    )


class ImportState:
    """Everything one import accumulates: the tensor environment and the IR block."""

    def __init__(
        self,
        label: str,
        opset: int,
        source_opset: int,
        block: Block,
        store: WeightStore,
        inferred: Mapping[str, tuple[int, ...]],
        used: set[str],
    ) -> None:
        self.label = label
        self.opset = opset
        self.source_opset = source_opset
        """The model's own ai.onnx opset, for semantics the version converter misses."""
        self.block = block
        self.store = store
        self.inferred = inferred
        self.used = used
        self.env: dict[str, Value] = {}
        self.outputs: set[str] = set()
        """The graph's output names (set by the importer)."""
        self.fold_budget = FoldBudget()
        self.scope = ""
        """Where nodes being converted live: "" (the main graph) or an inlined
        branch, "node 'x' (If) then_branch: ", prefixed to their locations."""
        self.runtime_inputs: list[str] = []
        """The model's run-time inputs (set by the importer)."""
        self.dependencies: dict[str, set[str]] = {}
        """Tensor -> the tensors its producing node reads (set by the importer)."""
        self.index_inputs: dict[str, FrontendError] = {}
        """Integer and bool run-time inputs by name (held as exact floats), which only
        onnx_import.TYPED_READERS may read; the error for any other use (set by the
        importer). By name: a Cast to float32 is the same value under a new name."""
        self._weights: dict[str, SSAValue] = {}

    def fail(self, message: str) -> FrontendError:
        return FrontendError(f"{self.label}: {message}")

    @contextmanager
    def branch_scope(self, where: str, names: Mapping[str, Value]) -> Iterator[None]:
        """Convert an inlined subgraph: it sees the enclosing tensors plus `names`
        (its own initializers); what it defines is forgotten afterwards, so a
        sibling branch may reuse its names."""
        outer, scope, weights = self.env, self.scope, self._weights
        self.env, self.scope, self._weights = {**outer, **names}, where, dict(weights)
        try:
            yield
        finally:
            kept = {k: v for k, v in self._weights.items() if k in outer}
            self.env, self.scope, self._weights = outer, scope, {**weights, **kept}

    def runtime_inputs_of(self, name: str) -> list[str]:
        """The run-time inputs tensor `name` depends on, in input order."""
        seen: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.dependencies.get(current, ()))
        return [n for n in self.runtime_inputs if n in seen]

    def emit(self, op: Operation) -> Operation:
        op.verify()
        self.block.add_op(op)
        return op

    def weight(self, hint: str, array: np.ndarray) -> SSAValue:
        """A new `graph.weight` holding `array` (already float32 and finite)."""
        problem = shape_problem(array.shape)
        if problem is not None:
            raise self.fail(f"tensor {quote_for_message(hint)}: {problem}")
        key = self.store.add(hint, array)
        return self.emit(WeightOp(key, array.shape)).results[0]

    def materialize(self, name: str) -> SSAValue:
        """The IR value for tensor `name`, turning a constant into a weight once."""
        value = self.env[name]
        if isinstance(value, SSAValue):
            return value
        if name not in self._weights:
            array = to_float32(value, f"tensor {quote_for_message(name)}")
            self._weights[name] = self.weight(name, array)
        return self._weights[name]


class NodeContext:
    """One node being converted: typed access to its attributes and inputs."""

    def __init__(self, state: ImportState, node: onnx.NodeProto, index: int) -> None:
        self.state = state
        self.node = node
        self.where = state.scope + node_label(node, index)
        self._attrs = {a.name: a for a in node.attribute}

    # -- diagnostics -------------------------------------------------------

    def fail(self, message: str) -> FrontendError:
        return self.state.fail(f"{self.where}: {message}")

    def input_label(self, index: int) -> str:
        return f"input {index} {quote_for_message(self.node.input[index])}"

    # -- attributes ----------------------------------------------------------

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    def attr(self, name: str, default: Any = None) -> Any:
        if name not in self._attrs:
            if default is None:
                raise self.fail(f"missing attribute '{name}'")
            return default
        value = onnx.helper.get_attribute_value(self._attrs[name])
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value

    def int_attr(self, name: str, default: int | None = None) -> int:
        value = self.attr(name, default)
        if not isinstance(value, int):
            raise self.fail(f"attribute '{name}' must be an integer")
        return value

    def float_attr(self, name: str, default: float | None = None) -> float:
        value = self.attr(name, default)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"attribute '{name}' must be a finite number")
        return float(value)

    def ints_attr(self, name: str, default: Sequence[int] | None = None) -> tuple[int, ...]:
        value = self.attr(name, None if default is None else list(default))
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise self.fail(f"attribute '{name}' must be a list of integers")
        return tuple(value)

    def str_attr(self, name: str, default: str | None = None) -> str:
        value = self.attr(name, default)
        if not isinstance(value, str):
            raise self.fail(f"attribute '{name}' must be a string")
        return value

    # -- inputs and outputs ----------------------------------------------------

    @property
    def num_inputs(self) -> int:
        return len(self.node.input)

    def has_input(self, index: int) -> bool:
        return index < len(self.node.input) and self.node.input[index] != ""

    def input(self, index: int) -> Value:
        """Input `index` as it is: an IR value or a constant."""
        if not self.has_input(index):
            raise self.fail(f"missing input {index}")
        return self.state.env[self.node.input[index]]

    def is_const(self, index: int) -> bool:
        return isinstance(self.input(index), np.ndarray)

    def value(self, index: int) -> SSAValue:
        """Input `index` as an IR value (constants become weights)."""
        self.input(index)  # raises when the input is absent
        try:
            return self.state.materialize(self.node.input[index])
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def optional_value(self, index: int) -> SSAValue | None:
        return self.value(index) if self.has_input(index) else None

    def values(self) -> list[SSAValue]:
        return [self.value(i) for i in range(self.num_inputs) if self.has_input(i)]

    def const(self, index: int, what: str) -> np.ndarray:
        """Input `index`, which must be a constant (shape, axes, bounds...)."""
        value = self.input(index)
        if not isinstance(value, np.ndarray):
            raise self.fail(f"{self.input_label(index)} ({what}) must be a constant")
        return value

    def int_const(self, index: int, what: str) -> tuple[int, ...]:
        """Constant integer input `index` (shape, axes) as a flat tuple."""
        array = self.const(index, what)
        if array.dtype.kind not in "iu":
            raise self.fail(
                f"{self.input_label(index)} ({what}) must be integers, got {array.dtype}"
            )
        return tuple(int(v) for v in array.reshape(-1))

    def float_const(self, index: int, what: str) -> np.ndarray:
        """Constant input `index` as a finite float32 array."""
        try:
            return to_float32(
                self.const(index, what), f"tensor {quote_for_message(self.node.input[index])}"
            )
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def new_weight(self, index: int, array: np.ndarray) -> SSAValue:
        """A weight derived from constant input `index` (negated, reshaped...)."""
        return self.state.weight(self.node.input[index], array)

    def shape(self, index: int) -> tuple[int, ...]:
        value = self.input(index)
        return tuple(value.shape) if isinstance(value, np.ndarray) else shape_of(value)

    def output_used(self, index: int) -> bool:
        outputs = self.node.output
        return index < len(outputs) and outputs[index] != "" and outputs[index] in self.state.used

    def reject_used_outputs(self, first: int, what: str) -> None:
        """Error out when an output from `first` on (training-only results) is consumed."""
        for index in range(first, len(self.node.output)):
            if self.output_used(index):
                raise self.fail(f"{what} (output {index}) is not supported")

    # -- building IR -------------------------------------------------------------

    def emit(self, op: _OP) -> _OP:
        """Verify and append `op` (a VerifyException is reported at this node)."""
        self.state.emit(op)
        return op

    def reshape(self, value: SSAValue, shape: Sequence[int]) -> SSAValue:
        if shape_of(value) == tuple(shape):
            return value
        return self.emit(ReshapeOp(value, shape)).y

    def reshaped_input(self, index: int, shape: Sequence[int]) -> SSAValue:
        """Input `index` reshaped; a constant is reshaped before it becomes a weight."""
        value = self.input(index)
        if isinstance(value, SSAValue):
            return self.reshape(value, shape)
        return self.new_weight(index, self.float_const(index, "weight").reshape(shape))


def normalize_axis(ctx: NodeContext, axis: int, rank: int) -> int:
    """ONNX negative axes count from the end."""
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis
