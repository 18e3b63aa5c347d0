"""The `bcr` dialect: ops whose weights are BCR-sparse (see docs/bcr.md).

A BCR weight never appears in the IR as a tensor. Its compact storage (BCRC,
laid out by `grimc.bcr_format`) lives in the module's weight store as the
arrays ``<prefix>_vals``, ``_cols``, ``_rows``, ``_bptr`` and ``_perm``; an op
names the prefix and carries a `#bcr.encoding`, which describes the matrix in
its GEMM view (shape per group, group count, block, kept counts, density) and
what bcr-reorder did to it. So the IR stays small and readable, and
every structural fact a pass or template needs is checked by a verifier:

    %y = bcr.conv2d %x weights("conv1", #bcr.encoding<matrix = [64, 576],
        groups = 1, block = [8, 16], keep = [6, 2], balanced, density = 0.09375>)
        bias(%b : tensor<64xf32>) {...} : tensor<1x64x56x56xf32> -> tensor<1x64x56x56xf32>

Dense operands (bias, residual, initial states) stay tensors from `graph.weight`.
Semantics are those of the matching `graph` ops, with Gemm's alpha and beta
already folded into the weights and bias.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FloatData,
    IntAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue
from xdsl.irdl import (
    AttrSizedOperandSegments,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_operand_def,
    opt_prop_def,
    param_def,
    prop_def,
    result_def,
    traits_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure

from grimc.bcr_format import BCRMatrix
from grimc.dialects.graph import (
    IDENTIFIER,
    ActivationAttr,
    LSTMFields,
    RecurrentFields,
    check_f32,
    check_lstm_state,
    check_recurrent,
    check_window,
    i64_array,
    i64_attr,
    ints,
    require,
    shape_of,
    tensor,
)
from grimc.dialects.sched import FieldParser
from grimc.dialects.sched import build_attr as _build
from grimc.dialects.sched import parse_int as _parse_int
from grimc.dialects.sched import parse_record as _parse_record

# --------------------------------------------------------------------------
# key = value records (the syntax shared with the sched dialect)


def _parse_pair(parser: AttrParser) -> tuple[int, ...]:
    return tuple(parser.parse_comma_separated_list(parser.Delimiter.SQUARE, lambda: _parse_int(parser)))


def _pair_attr(values: Sequence[int]) -> ArrayAttr[IntAttr]:
    return ArrayAttr([IntAttr(int(v)) for v in values])


def _values(attr: ArrayAttr[IntAttr]) -> tuple[int, ...]:
    return tuple(v.data for v in attr.data)


def _float_text(value: float) -> str:
    """Shortest round-trip text of a float, as an MLIR float literal (`1e-05` -> `1.0e-05`)."""
    text = repr(value)
    return text if "." in text or "e" not in text else text.replace("e", ".0e")


# --------------------------------------------------------------------------
# attributes


@irdl_attr_definition
class ScheduleAttr(ParametrizedAttribute):
    """What bcr-reorder did to a BCR weight: `#bcr.schedule<reorder, threads = 2>`.

    - `reorder`: the rows were permuted (`_perm` is not the identity); kernels
      store each row to `perm[row]`.
    - `threads`: the worker count the permutation balanced the rows for (1: not
      balanced); the schedule-select pass splits the kernel into that many tasks.

    How the kernel runs (register groups, tiles, loop order, prefetch, tasks) is
    the op's own schedule attribute (`#sched.spmm`, `#sched.gemv`, `#sched.csr`),
    chosen by the schedule-select pass.
    """

    name = "bcr.schedule"

    reorder: IntAttr = param_def(IntAttr)
    threads: IntAttr = param_def(IntAttr)

    def __init__(self, *, reorder: bool = False, threads: int = 1):
        super().__init__(IntAttr(int(reorder)), IntAttr(threads))

    def verify(self) -> None:
        require(self.reorder.data in (0, 1), "bcr.schedule: reorder must be 0 or 1")
        require(self.threads.data >= 1, "bcr.schedule: threads must be >= 1")

    @classmethod
    def parse_body(cls, parser: AttrParser, delimiter: AttrParser.Delimiter) -> ScheduleAttr:
        """Parse the record between `delimiter`s (angle brackets or, nested, braces)."""
        start = parser.pos
        record = _parse_record(parser, delimiter, ("reorder",), {"threads": _parse_int})
        return _build(parser, start, lambda: cls(**record))  # type: ignore[arg-type]

    def body(self) -> str:
        """`reorder, threads = 2`: the text inside the delimiters."""
        return ", ".join([*(["reorder"] if self.reorder.data else []), f"threads = {self.threads.data}"])

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        return cls.parse_body(parser, parser.Delimiter.ANGLE).parameters

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.body()}>")


@irdl_attr_definition
class EncodingAttr(ParametrizedAttribute):
    """One BCR weight in its GEMM view, like MLIR's `#sparse_tensor.encoding`.

    `#bcr.encoding<matrix = [M, K], groups = G, block = [br, bc], keep = [kr, kc],
    balanced, density = d, schedule = {...}>`: G independent (M, K) matrices
    (conv groups, RNN directions) cut into br x bc blocks. `keep` is the most
    rows and columns any block keeps, always known, since it is what a kernel
    sizes its register tile by; `balanced` says every full block keeps exactly
    that many (so loops have fixed trip counts). `density` is stored values /
    (G*M*K), rounded for reading. `schedule` (`#bcr.schedule`) is omitted while
    it is the default.
    """

    name = "bcr.encoding"

    matrix: ArrayAttr[IntAttr] = param_def(ArrayAttr[IntAttr])
    groups: IntAttr = param_def(IntAttr)
    block: ArrayAttr[IntAttr] = param_def(ArrayAttr[IntAttr])
    keep: ArrayAttr[IntAttr] = param_def(ArrayAttr[IntAttr])
    balanced: IntAttr = param_def(IntAttr)
    density: FloatData = param_def(FloatData)
    schedule: ScheduleAttr = param_def(ScheduleAttr)

    def __init__(
        self,
        *,
        matrix: Sequence[int],
        block: Sequence[int],
        keep: Sequence[int],
        density: float,
        groups: int = 1,
        balanced: bool = False,
        schedule: ScheduleAttr | None = None,
    ):
        super().__init__(
            _pair_attr(matrix),
            IntAttr(groups),
            _pair_attr(block),
            _pair_attr(keep),
            IntAttr(int(balanced)),
            FloatData(float(density)),
            schedule or ScheduleAttr(),
        )

    @classmethod
    def describe(
        cls, matrices: Sequence[BCRMatrix], schedule: ScheduleAttr | None = None
    ) -> EncodingAttr:
        """The encoding of G same-shaped BCR matrices (one per group)."""
        first = matrices[0]
        keep = tuple(max(c) for c in zip(*(m.keep_counts() for m in matrices), strict=True))
        stored = sum(m.stored_values() for m in matrices)
        return cls(
            matrix=first.shape,
            groups=len(matrices),
            block=first.block,
            keep=keep,
            balanced=all(m.is_balanced(keep) for m in matrices),
            density=float(f"{stored / (len(matrices) * math.prod(first.shape)):.4g}"),
            schedule=schedule,
        )

    @property
    def matrix_shape(self) -> tuple[int, ...]:
        return _values(self.matrix)

    @property
    def block_shape(self) -> tuple[int, ...]:
        return _values(self.block)

    @property
    def keep_counts(self) -> tuple[int, ...]:
        return _values(self.keep)

    @property
    def num_groups(self) -> int:
        return self.groups.data

    @property
    def is_balanced(self) -> bool:
        return bool(self.balanced.data)

    def verify(self) -> None:
        matrix, block, keep = self.matrix_shape, self.block_shape, self.keep_counts
        require(
            len(matrix) == len(block) == len(keep) == 2,
            "bcr.encoding: matrix, block and keep need 2 values each",
        )
        require(min(matrix) >= 1, f"bcr.encoding: matrix {list(matrix)} must be positive")
        require(self.num_groups >= 1, "bcr.encoding: groups must be >= 1")
        require(min(block) >= 1, f"bcr.encoding: block {list(block)} must be positive")
        for axis, what in enumerate(("rows", "columns")):
            bound = min(block[axis], matrix[axis])
            require(
                0 <= keep[axis] <= bound,
                f"bcr.encoding: keeps {keep[axis]} {what} per block, expected 0 to {bound}",
            )
        require(
            (keep[0] == 0) == (keep[1] == 0),
            "bcr.encoding: a block keeps rows iff it keeps columns",
        )
        density = self.density.data
        require(0.0 <= density <= 1.0, f"bcr.encoding: density {density} not in [0, 1]")
        require(
            (density == 0.0) == (keep[0] == 0),
            "bcr.encoding: density is 0 iff no block keeps anything",
        )
        require(self.balanced.data in (0, 1), "bcr.encoding: balanced must be 0 or 1")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        start = parser.pos
        fields: dict[str, FieldParser] = {
            "matrix": _parse_pair,
            "groups": _parse_int,
            "block": _parse_pair,
            "keep": _parse_pair,
            "density": lambda p: float(p.parse_number()),
            "schedule": lambda p: ScheduleAttr.parse_body(p, p.Delimiter.BRACES),
        }
        record = _parse_record(parser, parser.Delimiter.ANGLE, ("balanced",), fields)
        missing = [key for key in ("matrix", "block", "keep", "density") if key not in record]
        if missing:
            parser.raise_error(f"bcr.encoding: missing {', '.join(missing)}", start, parser.pos)
        return _build(parser, start, lambda: cls(**record)).parameters  # type: ignore[arg-type]

    def print_parameters(self, printer: Printer) -> None:
        entries = [
            f"matrix = {list(self.matrix_shape)}",
            f"groups = {self.num_groups}",
            f"block = {list(self.block_shape)}",
            f"keep = {list(self.keep_counts)}",
            *(["balanced"] if self.is_balanced else []),
            f"density = {_float_text(self.density.data)}",
        ]
        if self.schedule != ScheduleAttr():
            entries.append(f"schedule = {{{self.schedule.body()}}}")
        printer.print_string(f"<{', '.join(entries)}>")


# --------------------------------------------------------------------------
# ops


def check_weight_ref(
    op: IRDLOperation,
    key: StringAttr,
    encoding: EncodingAttr,
    groups: int,
    matrix: tuple[int, int],
    what: str,
) -> None:
    """A packed weight reference: a sanitized key and an encoding of the right GEMM view."""
    require(
        IDENTIFIER.match(key.data) is not None,
        f"{op.name}: {what} key '{key.data}' is not a sanitized identifier",
    )
    got = (encoding.num_groups, encoding.matrix_shape)
    require(
        got == (groups, matrix),
        f"{op.name}: {what} encoding holds {got[0]} x {list(got[1])}, "
        f"expected {groups} x {list(matrix)} (groups x [rows, cols])",
    )


class BCROp(IRDLOperation):
    """Common verification: f32 tensors everywhere, then op-specific checks."""

    traits = traits_def(Pure())

    def verify_(self) -> None:
        check_f32(self)
        self.verify_shapes()

    def verify_shapes(self) -> None:
        """Op-specific shape and attribute rules."""


def _optional(name: str, keyword: str | None = None) -> str:
    """Assembly for an optional operand: `keyword(%v : type)`."""
    return f"(`{keyword or name}` `(` ${name}^ `:` type(${name}) `)`)?"


def _weights(keyword: str, prefix: str) -> str:
    """Assembly for a packed weight reference: `keyword("key", #bcr.encoding<...>)`."""
    return f"`{keyword}` `(` ${prefix}weights `,` qualified(${prefix}encoding) `)`"


class SparseLinearOp(BCROp):
    """y = act(x (*) W^T + bias + residual), W a packed BCR weight with G groups of (M, K).

    Subclasses say which GEMM view their operand shapes imply (`gemm_view`);
    the bias is per output channel, [G*M] (a broadcast Gemm C becomes a residual
    or is reshaped when lowering, so kernels see one bias form).
    """

    x = operand_def(TensorType)
    b = opt_operand_def(TensorType)
    residual = opt_operand_def(TensorType)
    y = result_def(TensorType)
    weights = prop_def(StringAttr)
    encoding = prop_def(EncodingAttr)
    act = opt_prop_def(ActivationAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = (
        f"$x {_weights('weights', '')} {_optional('b', 'bias')} {_optional('residual')}"
        " attr-dict `:` type($x) `->` type($y)"
    )

    def gemm_view(self) -> tuple[int, tuple[int, int]]:
        """Check op-specific shapes; return (groups, (M, K)) the encoding must have."""
        raise NotImplementedError

    def verify_shapes(self) -> None:
        groups, matrix = self.gemm_view()
        check_weight_ref(self, self.weights, self.encoding, groups, matrix, "weights")
        outputs = groups * matrix[0]
        if self.b is not None:
            require(shape_of(self.b) == (outputs,), f"{self.name}: bias must be [{outputs}]")
        if self.residual is not None:
            require(self.residual.type == self.y.type, f"{self.name}: residual must match result")


@irdl_op_definition
class Conv2dOp(SparseLinearOp):
    """2-D convolution (ONNX Conv, NCHW) with a BCR weight.

    Per group the weight [Cout, Cin/g, kh, kw] is the (Cout/g, Cin/g*kh*kw) matrix
    whose column k = (ci, r, s) reads input channel ci shifted by (r, s).
    """

    name = "bcr.conv2d"
    kernel_shape = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr)

    def __init__(
        self,
        x: SSAValue,
        weights: str,
        encoding: EncodingAttr,
        b: SSAValue | None,
        out_shape: Sequence[int],
        kernel_shape: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int],
        dilations: Sequence[int],
        group: int,
        residual: SSAValue | None = None,
        act: ActivationAttr | None = None,
    ):
        super().__init__(
            operands=[x, b, residual],
            result_types=[tensor(out_shape)],
            properties={
                "weights": StringAttr(weights),
                "encoding": encoding,
                "kernel_shape": i64_array(kernel_shape),
                "strides": i64_array(strides),
                "pads": i64_array(pads),
                "dilations": i64_array(dilations),
                "group": i64_attr(group),
                "act": act,
            },
        )

    def gemm_view(self) -> tuple[int, tuple[int, int]]:
        xs, ys, kernel = shape_of(self.x), shape_of(self.y), ints(self.kernel_shape)
        group = self.group.value.data
        require(len(kernel) == 2, "bcr.conv2d: kernel_shape needs 2 values")
        require(len(ys) == 4, "bcr.conv2d: result must be NCHW")
        check_window(self, xs, ys, kernel)
        require(group >= 1, "bcr.conv2d: group must be >= 1")
        require(ys[0] == xs[0], f"bcr.conv2d: result batch must be {xs[0]}")
        require(
            xs[1] % group == 0 and ys[1] % group == 0,
            f"bcr.conv2d: channels {xs[1]} -> {ys[1]} not divisible by group {group}",
        )
        return group, (ys[1] // group, xs[1] // group * math.prod(kernel))


@irdl_op_definition
class MatMulOp(SparseLinearOp):
    """x [..., K] times a BCR weight W (M, K) transposed: y [..., M].

    ONNX Gemm (transB folded in, alpha and beta folded into W and bias) and
    MatMul with a constant right operand; leading dims of x are batch rows.
    """

    name = "bcr.matmul"

    def __init__(
        self,
        x: SSAValue,
        weights: str,
        encoding: EncodingAttr,
        b: SSAValue | None = None,
        residual: SSAValue | None = None,
        act: ActivationAttr | None = None,
    ):
        out = (*shape_of(x)[:-1], encoding.matrix_shape[0])
        super().__init__(
            operands=[x, b, residual],
            result_types=[tensor(out)],
            properties={"weights": StringAttr(weights), "encoding": encoding, "act": act},
        )

    def gemm_view(self) -> tuple[int, tuple[int, int]]:
        xs, ys = shape_of(self.x), shape_of(self.y)
        require(len(xs) >= 1 and len(ys) == len(xs), "bcr.matmul: x and y need the same rank >= 1")
        require(ys[:-1] == xs[:-1], f"bcr.matmul: result must be {list(xs[:-1])} + [M]")
        return 1, (ys[-1], xs[-1])


class RecurrentOp(BCROp, RecurrentFields):
    """ONNX RNN/GRU/LSTM (layout 0) with BCR weights W and R.

    `w(...)` is the input projection, `directions` matrices of (G*H, input);
    `r(...)` the recurrent one, `directions` matrices of (G*H, H). Operands,
    results and attributes are those of the graph ops (`RecurrentFields`).
    """

    x = operand_def(TensorType)
    w_weights = prop_def(StringAttr)
    w_encoding = prop_def(EncodingAttr)
    r_weights = prop_def(StringAttr)
    r_encoding = prop_def(EncodingAttr)

    def verify_shapes(self) -> None:
        dirs, rows, inp = check_recurrent(self, self.GATES)
        hidden = self.hidden_size.value.data
        check_weight_ref(self, self.w_weights, self.w_encoding, dirs, (rows, inp), "W")
        check_weight_ref(self, self.r_weights, self.r_encoding, dirs, (rows, hidden), "R")


def _recurrent_format(extra_optional: Sequence[str], extra_results: Sequence[str]) -> str:
    optional = " ".join(_optional(name) for name in ["b", "initial_h", *extra_optional])
    results = " `,` ".join(f"type(${r})" for r in ["y", "y_h", *extra_results])
    weights = f"{_weights('w', 'w_')} {_weights('r', 'r_')}"
    return f"$x {weights} {optional} attr-dict `:` type($x) `->` {results}"


@irdl_op_definition
class RNNOp(RecurrentOp):
    """ONNX RNN with the default Tanh activation."""

    name = "bcr.rnn"
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _recurrent_format((), ())


@irdl_op_definition
class GRUOp(RecurrentOp):
    """ONNX GRU (gates z, r, h) with default Sigmoid/Tanh activations."""

    name = "bcr.gru"
    GATES: ClassVar[int] = 3
    linear_before_reset = prop_def(IntegerAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _recurrent_format((), ())


@irdl_op_definition
class LSTMOp(RecurrentOp, LSTMFields):
    """ONNX LSTM (gates i, o, f, c) with default activations, optional peepholes."""

    name = "bcr.lstm"
    GATES: ClassVar[int] = 4
    input_forget = prop_def(IntegerAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _recurrent_format(("initial_c", "p"), ("y_c",))

    def verify_shapes(self) -> None:
        super().verify_shapes()
        check_lstm_state(self)


BCR = Dialect(
    "bcr",
    [Conv2dOp, MatMulOp, RNNOp, GRUOp, LSTMOp],
    [EncodingAttr, ScheduleAttr],
)
