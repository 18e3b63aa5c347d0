"""The `graph` dialect: grimc's nn-level ops, following ONNX semantics.

One op per supported ONNX operator (after import-time normalisation: auto_pad
resolved to explicit pads, opset differences removed, Constant/Identity/Dropout
folded away). Weights are not stored in the IR: `graph.weight` names an entry
of the module's weight store (see `grimc.weights`). Every op verifies its shapes
and attributes, so a pass that breaks the graph is caught where it happens.

Conventions: activations are NCHW float32 tensors with static shapes; `pads` is
ONNX order `[top, left, bottom, right]`; recurrent ops use ONNX layout 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    Float32Type,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    f32,
    i64,
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
    var_operand_def,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

WEIGHT_STORE_ATTR = "graph.weight_store"
"""Module attribute holding the weight store location (see grimc.weights)."""

NAME_ATTR = "graph.name"
"""Function argument/result attribute holding the sanitized tensor name."""

DTYPE_ATTR = "graph.dtype"
"""Function argument attribute naming the element type the caller passes
(INDEX_DTYPES); absent for float32. Inside the graph every tensor is float32:
integer and bool inputs are converted (exactly) on entry. The frontend lets them
be gather indices, compared, cast to float32, or conditions (If, Where, Not,
And, Or, Xor), where float values mean the same."""

EXACT_INT = 1 << 24
"""Integers of smaller magnitude are exact in float32 (integer inputs are held so)."""

INDEX_DTYPES = {"int64": 8, "int32": 4, "bool": 1}
"""Non-float input element types -> bytes; integers must be exact in float32
(|v| < 2^24), bools 0 or 1."""

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

# --------------------------------------------------------------------------
# helpers shared by the verifiers


def shape_of(value: SSAValue) -> tuple[int, ...]:
    """Static shape of a tensor-typed value."""
    assert isinstance(value.type, TensorType)
    return tuple(value.type.get_shape())


def ints(attr: DenseArrayBase | None) -> tuple[int, ...]:
    """Values of an i64 dense array property (empty when absent)."""
    return () if attr is None else tuple(int(v) for v in attr.get_values())


def i64_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, [int(v) for v in values])


def f32_attr(value: float) -> FloatAttr:
    return FloatAttr(float(value), f32)


def i64_attr(value: int) -> IntegerAttr:
    return IntegerAttr(int(value), i64)


def tensor(shape: Sequence[int]) -> TensorType:
    """A float32 tensor type, the only element type grimc computes in."""
    return TensorType(f32, list(shape))


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise VerifyException(msg)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Numpy/ONNX multidirectional broadcasting; raises VerifyException."""
    rank = max(len(s) for s in shapes)
    out: list[int] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        require(len(dims) <= 1, f"shapes {list(map(list, shapes))} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def pooled_size(
    size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int, ceil: bool
) -> int:
    """Output extent of a conv/pool window along one axis (ONNX formula)."""
    span = dilation * (kernel - 1) + 1
    steps = (size + pads[0] + pads[1] - span) / stride
    out = (math.ceil(steps) if ceil else math.floor(steps)) + 1
    if ceil and (out - 1) * stride >= size + pads[0]:
        # ONNX/PyTorch: the last window must start inside the input or its left pad.
        out -= 1
    return out


def check_f32(op: IRDLOperation) -> None:
    for value in (*op.operands, *op.results):
        ok = isinstance(value.type, TensorType) and isinstance(value.type.element_type, Float32Type)
        if not ok:  # message built only on failure: printing a type is slow
            raise VerifyException(f"{op.name}: expected f32 tensors, got {value.type}")


def check_window(
    op: IRDLOperation,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    kernel: tuple[int, ...],
    ceil: bool = False,
) -> None:
    """Shared conv/pool check: attribute lengths and spatial output extents."""
    strides = ints(op.properties.get("strides"))  # type: ignore[arg-type]
    pads = ints(op.properties.get("pads"))  # type: ignore[arg-type]
    dilations = ints(op.properties.get("dilations")) or (1,) * len(kernel)
    spatial = len(kernel)
    require(len(in_shape) == spatial + 2, f"{op.name}: input must be rank {spatial + 2}")
    require(len(strides) == spatial, f"{op.name}: strides needs {spatial} values")
    require(len(dilations) == spatial, f"{op.name}: dilations needs {spatial} values")
    require(len(pads) == 2 * spatial, f"{op.name}: pads needs {2 * spatial} values")
    require(min(strides + dilations + kernel) >= 1, f"{op.name}: non-positive window")
    require(min(pads) >= 0, f"{op.name}: negative pads")
    for axis in range(spatial):
        want = pooled_size(
            in_shape[axis + 2],
            kernel[axis],
            strides[axis],
            (pads[axis], pads[axis + spatial]),
            dilations[axis],
            ceil,
        )
        require(
            out_shape[axis + 2] == want,
            f"{op.name}: spatial dim {axis} is {out_shape[axis + 2]}, expected {want}",
        )


# --------------------------------------------------------------------------
# attributes


@irdl_attr_definition
class ActivationAttr(ParametrizedAttribute):
    """An element-wise activation fused into a producer's epilogue.

    `#graph.act<relu>`, `#graph.act<clip, 0.0, 6.0>`; kinds and parameters
    follow the standalone ops (clip: min, max; leaky_relu: alpha;
    hard_sigmoid: alpha, beta).
    """

    name = "graph.act"

    kind: StringAttr = param_def(StringAttr)
    params: ArrayAttr[FloatAttr] = param_def(ArrayAttr[FloatAttr])

    ARITY: ClassVar[dict[str, int]] = {
        "relu": 0,
        "sigmoid": 0,
        "tanh": 0,
        "hard_swish": 0,
        "clip": 2,
        "leaky_relu": 1,
        "hard_sigmoid": 2,
        "silu": 0,
        "exp": 0,
        "log": 0,
        "sqrt": 0,
        "neg": 0,
        "abs": 0,
        "reciprocal": 0,
        "erf": 0,
        "gelu": 0,
        "gelu_tanh": 0,
        "not": 0,
    }

    def __init__(self, kind: str, params: Sequence[float] = ()):
        super().__init__(StringAttr(kind), ArrayAttr([f32_attr(p) for p in params]))

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(p.value.data for p in self.params.data)

    def verify(self) -> None:
        kind = self.kind.data
        require(kind in self.ARITY, f"unknown activation '{kind}'")
        require(
            len(self.params.data) == self.ARITY[kind],
            f"activation {kind} takes {self.ARITY[kind]} parameters",
        )
        require(all(math.isfinite(v) for v in self.values), f"activation {kind}: non-finite parameter")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            kind = parser.parse_identifier("activation kind")
            params: list[FloatAttr] = []
            while parser.parse_optional_punctuation(",") is not None:
                params.append(f32_attr(parser.parse_float()))
        return (StringAttr(kind), ArrayAttr(params))

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.kind.data)
            for value in self.values:
                # shortest text that round-trips the f32 value (0.1, not 0.10000000149)
                printer.print_string(f", {np.float32(value)}")


# --------------------------------------------------------------------------
# base classes


class GraphOp(IRDLOperation):
    """Common verification: f32 tensors everywhere, then op-specific checks."""

    def verify_(self) -> None:
        check_f32(self)
        self.verify_shapes()

    def verify_shapes(self) -> None:
        """Op-specific shape and attribute rules."""


class SingleInputOp(GraphOp):
    """One tensor in, one tensor out: `graph.op %x {props} : type -> type`."""

    x = operand_def(TensorType)
    y = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$x attr-dict `:` type($x) `->` type($y)"


class UnaryOp(SingleInputOp):
    """Element-wise op: result has the input's type."""

    def __init__(self, x: SSAValue, **props: Attribute):
        super().__init__(operands=[x], result_types=[x.type], properties=props)

    def verify_shapes(self) -> None:
        require(self.x.type == self.y.type, f"{self.name}: result type must equal input")

    ACT: ClassVar[str] = ""
    """The ActivationAttr kind of this op; its parameters are its float properties
    in ActivationAttr order (clip: min, max; leaky_relu: alpha; ...)."""
    ACT_PARAMS: ClassVar[tuple[str, ...]] = ()

    def activation(self) -> ActivationAttr:
        """The epilogue form of this op, for activation fusion."""
        values = tuple(self.properties[p].value.data for p in self.ACT_PARAMS)  # type: ignore[attr-defined]
        return ActivationAttr(self.ACT, values)


class BinaryOp(GraphOp):
    """Element-wise binary op with multidirectional broadcasting."""

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    y = result_def(TensorType)
    act = opt_prop_def(ActivationAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($y)"

    def __init__(self, lhs: SSAValue, rhs: SSAValue, act: ActivationAttr | None = None):
        shape = broadcast_shapes(shape_of(lhs), shape_of(rhs))
        super().__init__(
            operands=[lhs, rhs], result_types=[tensor(shape)], properties={"act": act}
        )

    def verify_shapes(self) -> None:
        want = broadcast_shapes(shape_of(self.lhs), shape_of(self.rhs))
        require(shape_of(self.y) == want, f"{self.name}: result shape must be {list(want)}")


# --------------------------------------------------------------------------
# weights


@irdl_op_definition
class WeightOp(GraphOp):
    """A constant tensor held in the module's weight store under `key`."""

    name = "graph.weight"
    key = prop_def(StringAttr)
    result = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$key attr-dict `:` type($result)"

    def __init__(self, key: str, shape: Sequence[int]):
        super().__init__(result_types=[tensor(shape)], properties={"key": StringAttr(key)})

    def verify_shapes(self) -> None:
        require(
            IDENTIFIER.match(self.key.data) is not None,
            f"graph.weight: key '{self.key.data}' is not a sanitized identifier",
        )


# --------------------------------------------------------------------------
# linear algebra


@irdl_op_definition
class ConvOp(GraphOp):
    """2-D convolution (ONNX Conv), with optional fused residual add and activation.

    y = act(conv(x, w) + b + residual)
    """

    name = "graph.conv"
    x = operand_def(TensorType)
    w = operand_def(TensorType)
    b = opt_operand_def(TensorType)
    residual = opt_operand_def(TensorType)
    y = result_def(TensorType)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    dilations = prop_def(DenseArrayBase)
    group = prop_def(IntegerAttr)
    act = opt_prop_def(ActivationAttr)
    traits = traits_def(Pure())
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = (
        "$x `,` $w (`bias` `(` $b^ `:` type($b) `)`)?"
        " (`residual` `(` $residual^ `:` type($residual) `)`)?"
        " attr-dict `:` type($x) `,` type($w) `->` type($y)"
    )

    def __init__(
        self,
        x: SSAValue,
        w: SSAValue,
        b: SSAValue | None,
        out_shape: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int],
        dilations: Sequence[int],
        group: int,
        residual: SSAValue | None = None,
        act: ActivationAttr | None = None,
    ):
        super().__init__(
            operands=[x, w, b, residual],
            result_types=[tensor(out_shape)],
            properties={
                "strides": i64_array(strides),
                "pads": i64_array(pads),
                "dilations": i64_array(dilations),
                "group": i64_attr(group),
                "act": act,
            },
        )

    def verify_shapes(self) -> None:
        xs, ws, ys = shape_of(self.x), shape_of(self.w), shape_of(self.y)
        group = self.group.value.data
        require(len(ws) == len(xs), "graph.conv: weight rank must equal input rank")
        require(group >= 1, "graph.conv: group must be >= 1")
        require(xs[1] == ws[1] * group, f"graph.conv: {xs[1]} input channels, weight expects {ws[1] * group}")
        require(ws[0] % group == 0, "graph.conv: output channels not divisible by group")
        require(ys[:2] == (xs[0], ws[0]), f"graph.conv: result must be [{xs[0]}, {ws[0]}, ...]")
        check_window(self, xs, ys, ws[2:])
        if self.b is not None:
            require(shape_of(self.b) == (ws[0],), f"graph.conv: bias must be [{ws[0]}]")
        if self.residual is not None:
            require(self.residual.type == self.y.type, "graph.conv: residual must match result")


@irdl_op_definition
class GemmOp(GraphOp):
    """ONNX Gemm: y = act(alpha * A' B' + beta * C + residual)."""

    name = "graph.gemm"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    c = opt_operand_def(TensorType)
    residual = opt_operand_def(TensorType)
    y = result_def(TensorType)
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    trans_a = prop_def(IntegerAttr)
    trans_b = prop_def(IntegerAttr)
    act = opt_prop_def(ActivationAttr)
    traits = traits_def(Pure())
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = (
        "$a `,` $b (`bias` `(` $c^ `:` type($c) `)`)?"
        " (`residual` `(` $residual^ `:` type($residual) `)`)?"
        " attr-dict `:` type($a) `,` type($b) `->` type($y)"
    )

    def __init__(
        self,
        a: SSAValue,
        b: SSAValue,
        c: SSAValue | None,
        alpha: float = 1.0,
        beta: float = 1.0,
        trans_a: int = 0,
        trans_b: int = 0,
        residual: SSAValue | None = None,
        act: ActivationAttr | None = None,
    ):
        m = shape_of(a)[1 if trans_a else 0]
        n = shape_of(b)[0 if trans_b else 1]
        super().__init__(
            operands=[a, b, c, residual],
            result_types=[tensor((m, n))],
            properties={
                "alpha": f32_attr(alpha),
                "beta": f32_attr(beta),
                "trans_a": i64_attr(trans_a),
                "trans_b": i64_attr(trans_b),
                "act": act,
            },
        )

    def verify_shapes(self) -> None:
        a, b = shape_of(self.a), shape_of(self.b)
        require(len(a) == 2 and len(b) == 2, "graph.gemm: A and B must be 2-D")
        m, k = (a[1], a[0]) if self.trans_a.value.data else a
        k2, n = (b[1], b[0]) if self.trans_b.value.data else b
        require(k == k2, f"graph.gemm: inner dimensions {k} and {k2} differ")
        require(shape_of(self.y) == (m, n), f"graph.gemm: result must be [{m}, {n}]")
        if self.c is not None:
            require(
                broadcast_shapes(shape_of(self.c), (m, n)) == (m, n),
                "graph.gemm: C does not broadcast to the result",
            )
        if self.residual is not None:
            require(self.residual.type == self.y.type, "graph.gemm: residual must match result")


def matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """numpy.matmul result shape (1-D operands promoted then squeezed)."""
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    require(a2[-1] == b2[-2], f"matmul inner dimensions {a2[-1]} and {b2[-2]} differ")
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = [*batch, a2[-2], b2[-1]]
    if len(b) == 1:
        out.pop()
    if len(a) == 1:
        out.pop(-2 if len(b) != 1 else -1)
    return tuple(out)


@irdl_op_definition
class MatMulOp(GraphOp):
    """ONNX MatMul (numpy semantics, batched)."""

    name = "graph.matmul"
    a = operand_def(TensorType)
    b = operand_def(TensorType)
    y = result_def(TensorType)
    act = opt_prop_def(ActivationAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$a `,` $b attr-dict `:` type($a) `,` type($b) `->` type($y)"

    def __init__(self, a: SSAValue, b: SSAValue):
        shape = matmul_shape(shape_of(a), shape_of(b))
        super().__init__(operands=[a, b], result_types=[tensor(shape)])

    def verify_shapes(self) -> None:
        want = matmul_shape(shape_of(self.a), shape_of(self.b))
        require(shape_of(self.y) == want, f"graph.matmul: result must be {list(want)}")


# --------------------------------------------------------------------------
# element-wise


@irdl_op_definition
class AddOp(BinaryOp):
    name = "graph.add"


@irdl_op_definition
class MulOp(BinaryOp):
    name = "graph.mul"


@irdl_op_definition
class SumOp(GraphOp):
    """ONNX Sum: element-wise sum of any number of broadcastable inputs."""

    name = "graph.sum"
    inputs = var_operand_def(TensorType)
    y = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$inputs attr-dict `:` type($inputs) `->` type($y)"

    def __init__(self, inputs: Sequence[SSAValue]):
        shape = broadcast_shapes(*(shape_of(v) for v in inputs))
        super().__init__(operands=[list(inputs)], result_types=[tensor(shape)])

    def verify_shapes(self) -> None:
        require(len(self.inputs) >= 1, "graph.sum: needs at least one input")
        want = broadcast_shapes(*(shape_of(v) for v in self.inputs))
        require(shape_of(self.y) == want, f"graph.sum: result shape must be {list(want)}")


@irdl_op_definition
class ReluOp(UnaryOp):
    name = "graph.relu"

    ACT: ClassVar[str] = "relu"


@irdl_op_definition
class SigmoidOp(UnaryOp):
    name = "graph.sigmoid"

    ACT: ClassVar[str] = "sigmoid"


@irdl_op_definition
class TanhOp(UnaryOp):
    name = "graph.tanh"

    ACT: ClassVar[str] = "tanh"


@irdl_op_definition
class HardSwishOp(UnaryOp):
    name = "graph.hard_swish"

    ACT: ClassVar[str] = "hard_swish"


@irdl_op_definition
class ClipOp(UnaryOp):
    """ONNX Clip with constant bounds (±inf when absent)."""

    name = "graph.clip"
    min = prop_def(FloatAttr)
    max = prop_def(FloatAttr)

    ACT: ClassVar[str] = "clip"
    ACT_PARAMS: ClassVar[tuple[str, ...]] = ("min", "max")

    def verify_shapes(self) -> None:
        super().verify_shapes()
        require(self.min.value.data <= self.max.value.data, "graph.clip: min > max")


@irdl_op_definition
class LeakyReluOp(UnaryOp):
    name = "graph.leaky_relu"
    alpha = prop_def(FloatAttr)

    ACT: ClassVar[str] = "leaky_relu"
    ACT_PARAMS: ClassVar[tuple[str, ...]] = ("alpha",)


@irdl_op_definition
class HardSigmoidOp(UnaryOp):
    name = "graph.hard_sigmoid"
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)

    ACT: ClassVar[str] = "hard_sigmoid"
    ACT_PARAMS: ClassVar[tuple[str, ...]] = ("alpha", "beta")


@irdl_op_definition
class PReluOp(GraphOp):
    """ONNX PRelu: slope broadcasts unidirectionally to x."""

    name = "graph.prelu"
    x = operand_def(TensorType)
    slope = operand_def(TensorType)
    y = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$x `,` $slope attr-dict `:` type($x) `,` type($slope) `->` type($y)"

    def __init__(self, x: SSAValue, slope: SSAValue):
        super().__init__(operands=[x, slope], result_types=[x.type])

    def verify_shapes(self) -> None:
        xs = shape_of(self.x)
        require(self.y.type == self.x.type, "graph.prelu: result type must equal input")
        require(
            broadcast_shapes(xs, shape_of(self.slope)) == xs,
            "graph.prelu: slope does not broadcast to the input",
        )


@irdl_op_definition
class SiluOp(UnaryOp):
    """x * sigmoid(x) (SiLU/Swish): ONNX has no such op; graph-fuse-activations
    forms it from Mul(x, Sigmoid(x)) so it can fuse into x's producer."""

    name = "graph.silu"

    ACT: ClassVar[str] = "silu"


@irdl_op_definition
class ExpOp(UnaryOp):
    name = "graph.exp"

    ACT: ClassVar[str] = "exp"


@irdl_op_definition
class LogOp(UnaryOp):
    name = "graph.log"

    ACT: ClassVar[str] = "log"


@irdl_op_definition
class SqrtOp(UnaryOp):
    name = "graph.sqrt"

    ACT: ClassVar[str] = "sqrt"


@irdl_op_definition
class NegOp(UnaryOp):
    name = "graph.neg"

    ACT: ClassVar[str] = "neg"


@irdl_op_definition
class AbsOp(UnaryOp):
    name = "graph.abs"

    ACT: ClassVar[str] = "abs"


@irdl_op_definition
class ReciprocalOp(UnaryOp):
    name = "graph.reciprocal"

    ACT: ClassVar[str] = "reciprocal"


@irdl_op_definition
class ErfOp(UnaryOp):
    name = "graph.erf"

    ACT: ClassVar[str] = "erf"


@irdl_op_definition
class GeluOp(UnaryOp):
    """ONNX Gelu (opset 20): exact (erf) or, with approximate = "tanh", the tanh form."""

    name = "graph.gelu"
    approximate = prop_def(StringAttr)

    def verify_shapes(self) -> None:
        super().verify_shapes()
        require(
            self.approximate.data in ("none", "tanh"),
            "graph.gelu: approximate must be 'none' or 'tanh'",
        )

    def activation(self) -> ActivationAttr:
        return ActivationAttr("gelu_tanh" if self.approximate.data == "tanh" else "gelu")


@irdl_op_definition
class SubOp(BinaryOp):
    name = "graph.sub"


@irdl_op_definition
class DivOp(BinaryOp):
    name = "graph.div"


@irdl_op_definition
class PowOp(BinaryOp):
    """ONNX Pow on float32: x ** y, NaN for a negative base and a non-integer exponent."""

    name = "graph.pow"


class VariadicOp(GraphOp):
    """Element-wise op over any number of broadcastable inputs (ONNX Sum/Max/Min)."""

    inputs = var_operand_def(TensorType)
    y = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$inputs attr-dict `:` type($inputs) `->` type($y)"

    def __init__(self, inputs: Sequence[SSAValue]):
        shape = broadcast_shapes(*(shape_of(v) for v in inputs))
        super().__init__(operands=[list(inputs)], result_types=[tensor(shape)])

    def verify_shapes(self) -> None:
        require(len(self.inputs) >= 1, f"{self.name}: needs at least one input")
        want = broadcast_shapes(*(shape_of(v) for v in self.inputs))
        require(shape_of(self.y) == want, f"{self.name}: result shape must be {list(want)}")


@irdl_op_definition
class MaxOp(VariadicOp):
    """ONNX Max: element-wise maximum, NaN if any input is NaN."""

    name = "graph.max"


@irdl_op_definition
class MinOp(VariadicOp):
    """ONNX Min: element-wise minimum, NaN if any input is NaN."""

    name = "graph.min"


# Boolean tensors (comparison results, Not/And/Or, Where's condition) are
# float32 tensors holding exactly 0.0 (false) or 1.0 (true): kernels, buffers
# and epilogues stay float-only, and Where selects on `cond != 0`.


@irdl_op_definition
class NotOp(UnaryOp):
    """ONNX Not on a 0/1 boolean tensor: 1 - x."""

    name = "graph.not"

    ACT: ClassVar[str] = "not"


@irdl_op_definition
class EqualOp(BinaryOp):
    """ONNX Equal: 1.0 where lhs == rhs, else 0.0."""

    name = "graph.equal"


@irdl_op_definition
class LessOp(BinaryOp):
    """ONNX Less (Greater swaps the operands): 1.0 where lhs < rhs, else 0.0."""

    name = "graph.less"


@irdl_op_definition
class LessOrEqualOp(BinaryOp):
    """ONNX LessOrEqual (GreaterOrEqual swaps the operands)."""

    name = "graph.less_or_equal"


@irdl_op_definition
class AndOp(BinaryOp):
    """ONNX And on 0/1 boolean tensors."""

    name = "graph.and"


@irdl_op_definition
class OrOp(BinaryOp):
    """ONNX Or on 0/1 boolean tensors."""

    name = "graph.or"


@irdl_op_definition
class WhereOp(GraphOp):
    """ONNX Where: x where cond != 0, else y; all three broadcast together."""

    name = "graph.where"
    cond = operand_def(TensorType)
    x = operand_def(TensorType)
    y_in = operand_def(TensorType)
    y = result_def(TensorType)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$cond `,` $x `,` $y_in attr-dict `:` type($cond) `,` type($x) `,` type($y_in) `->` type($y)"
    )

    def __init__(self, cond: SSAValue, x: SSAValue, y: SSAValue):
        shape = broadcast_shapes(shape_of(cond), shape_of(x), shape_of(y))
        super().__init__(operands=[cond, x, y], result_types=[tensor(shape)])

    def verify_shapes(self) -> None:
        want = broadcast_shapes(shape_of(self.cond), shape_of(self.x), shape_of(self.y_in))
        require(shape_of(self.y) == want, f"graph.where: result shape must be {list(want)}")


UNARY_MATH_OPS: tuple[type[UnaryOp], ...] = (
    SiluOp, ExpOp, LogOp, SqrtOp, NegOp, AbsOp, ReciprocalOp, ErfOp, GeluOp, NotOp,
)  # fmt: skip
"""Element-wise math ops with an ActivationAttr form (beyond the classic activations)."""


# --------------------------------------------------------------------------
# normalization and pooling


@irdl_op_definition
class BatchNormOp(GraphOp):
    """ONNX BatchNormalization in inference mode (running statistics)."""

    name = "graph.batch_norm"
    x = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    y = result_def(TensorType)
    epsilon = prop_def(FloatAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$x `,` $scale `,` $bias `,` $mean `,` $var attr-dict `:` type($x) `,`"
        " type($scale) `,` type($bias) `,` type($mean) `,` type($var) `->` type($y)"
    )

    def __init__(
        self,
        x: SSAValue,
        scale: SSAValue,
        bias: SSAValue,
        mean: SSAValue,
        var: SSAValue,
        epsilon: float,
    ):
        super().__init__(
            operands=[x, scale, bias, mean, var],
            result_types=[x.type],
            properties={"epsilon": f32_attr(epsilon)},
        )

    def verify_shapes(self) -> None:
        xs = shape_of(self.x)
        require(len(xs) >= 2, "graph.batch_norm: input must have a channel axis")
        for operand in (self.scale, self.bias, self.mean, self.var):
            require(shape_of(operand) == (xs[1],), f"graph.batch_norm: statistics must be [{xs[1]}]")
        require(self.y.type == self.x.type, "graph.batch_norm: result type must equal input")


class PoolOp(SingleInputOp):
    kernel_shape = prop_def(DenseArrayBase)
    strides = prop_def(DenseArrayBase)
    pads = prop_def(DenseArrayBase)
    ceil_mode = prop_def(IntegerAttr)

    def verify_shapes(self) -> None:
        xs, ys = shape_of(self.x), shape_of(self.y)
        require(ys[:2] == xs[:2], f"{self.name}: batch and channels must be preserved")
        check_window(self, xs, ys, ints(self.kernel_shape), bool(self.ceil_mode.value.data))


@irdl_op_definition
class MaxPoolOp(PoolOp):
    name = "graph.max_pool"
    dilations = prop_def(DenseArrayBase)


@irdl_op_definition
class AvgPoolOp(PoolOp):
    name = "graph.avg_pool"
    count_include_pad = prop_def(IntegerAttr)
    dilations = opt_prop_def(DenseArrayBase)
    """Absent means 1 on every axis (dilated averages exist from opset 19)."""


@irdl_op_definition
class GlobalAvgPoolOp(SingleInputOp):
    name = "graph.global_avg_pool"

    def __init__(self, x: SSAValue):
        xs = shape_of(x)
        super().__init__(operands=[x], result_types=[tensor((*xs[:2], *[1] * (len(xs) - 2)))])

    def verify_shapes(self) -> None:
        xs, ys = shape_of(self.x), shape_of(self.y)
        require(len(xs) >= 3, "graph.global_avg_pool: input must have spatial axes")
        require(ys == (*xs[:2], *[1] * (len(xs) - 2)), "graph.global_avg_pool: bad result shape")


@irdl_op_definition
class LRNOp(SingleInputOp):
    """ONNX LRN across channels."""

    name = "graph.lrn"
    size = prop_def(IntegerAttr)
    alpha = prop_def(FloatAttr)
    beta = prop_def(FloatAttr)
    bias = prop_def(FloatAttr)

    def verify_shapes(self) -> None:
        require(self.y.type == self.x.type, "graph.lrn: result type must equal input")
        require(len(shape_of(self.x)) >= 3, "graph.lrn: input must be at least 3-D")
        require(self.size.value.data >= 1, "graph.lrn: size must be >= 1")


@irdl_op_definition
class SoftmaxOp(SingleInputOp):
    """Softmax along one axis (opset-13 semantics; older opsets are rewritten)."""

    name = "graph.softmax"
    axis = prop_def(IntegerAttr)

    def verify_shapes(self) -> None:
        rank = len(shape_of(self.x))
        require(self.y.type == self.x.type, "graph.softmax: result type must equal input")
        require(0 <= self.axis.value.data < rank, f"graph.softmax: axis must be in [0, {rank})")


# --------------------------------------------------------------------------
# shape manipulation


@irdl_op_definition
class FlattenOp(SingleInputOp):
    name = "graph.flatten"
    axis = prop_def(IntegerAttr)

    def verify_shapes(self) -> None:
        xs, axis = shape_of(self.x), self.axis.value.data
        require(0 <= axis <= len(xs), "graph.flatten: axis out of range")
        want = (math.prod(xs[:axis]), math.prod(xs[axis:]))
        require(shape_of(self.y) == want, f"graph.flatten: result must be {list(want)}")


@irdl_op_definition
class ReshapeOp(SingleInputOp):
    """Reshape to the (static) result type; element count is preserved."""

    name = "graph.reshape"

    def __init__(self, x: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[x], result_types=[tensor(shape)])

    def verify_shapes(self) -> None:
        require(
            math.prod(shape_of(self.x)) == math.prod(shape_of(self.y)),
            "graph.reshape: element count changes",
        )


@irdl_op_definition
class TransposeOp(SingleInputOp):
    name = "graph.transpose"
    perm = prop_def(DenseArrayBase)

    def __init__(self, x: SSAValue, perm: Sequence[int]):
        xs = shape_of(x)
        super().__init__(
            operands=[x],
            result_types=[tensor([xs[p] for p in perm])],
            properties={"perm": i64_array(perm)},
        )

    def verify_shapes(self) -> None:
        xs, perm = shape_of(self.x), ints(self.perm)
        require(sorted(perm) == list(range(len(xs))), "graph.transpose: perm is not a permutation")
        require(
            shape_of(self.y) == tuple(xs[p] for p in perm),
            "graph.transpose: result shape does not match perm",
        )


@irdl_op_definition
class ConcatOp(GraphOp):
    name = "graph.concat"
    inputs = var_operand_def(TensorType)
    y = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$inputs attr-dict `:` type($inputs) `->` type($y)"

    def __init__(self, inputs: Sequence[SSAValue], axis: int):
        shapes = [shape_of(v) for v in inputs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        super().__init__(
            operands=[list(inputs)], result_types=[tensor(out)], properties={"axis": i64_attr(axis)}
        )

    def verify_shapes(self) -> None:
        shapes = [shape_of(v) for v in self.inputs]
        axis = self.axis.value.data
        require(len(shapes) >= 1, "graph.concat: needs at least one input")
        rank = len(shapes[0])
        require(0 <= axis < rank, f"graph.concat: axis must be in [0, {rank})")
        for s in shapes:
            require(
                len(s) == rank and s[:axis] + s[axis + 1 :] == shapes[0][:axis] + shapes[0][axis + 1 :],
                "graph.concat: inputs differ outside the concat axis",
            )
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        require(shape_of(self.y) == tuple(out), f"graph.concat: result must be {out}")


def gathered_shape(xs: Sequence[int], indices: Sequence[int], axis: int) -> tuple[int, ...]:
    return (*xs[:axis], *indices, *xs[axis + 1 :])


@irdl_op_definition
class GatherOp(GraphOp):
    """ONNX Gather by run-time `indices` (integers held in float32, negative ones
    counting from the end; their range is checked where they enter the model):
    y[a..., i..., b...] = x[a..., indices[i...], b...] on `axis`. Constant
    indices are strided slices instead (see the frontend)."""

    name = "graph.gather"
    x = operand_def(TensorType)
    indices = operand_def(TensorType)
    y = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$x `,` $indices attr-dict `:` type($x) `,` type($indices) `->` type($y)"

    def __init__(self, x: SSAValue, indices: SSAValue, axis: int):
        out = gathered_shape(shape_of(x), shape_of(indices), axis)
        super().__init__(
            operands=[x, indices], result_types=[tensor(out)], properties={"axis": i64_attr(axis)}
        )

    def verify_shapes(self) -> None:
        xs, axis = shape_of(self.x), self.axis.value.data
        require(0 <= axis < len(xs), f"graph.gather: axis must be in [0, {len(xs)})")
        want = gathered_shape(xs, shape_of(self.indices), axis)
        require(shape_of(self.y) == want, f"graph.gather: result shape must be {list(want)}")


@irdl_op_definition
class GatherElementsOp(GraphOp):
    """ONNX GatherElements: y[..., j, ...] = x[..., indices[..., j, ...], ...] on
    `axis`, y shaped like `indices` (integers held in float32, negative ones
    counting from the end; constant ones are checked at import, run-time ones
    where they enter the model)."""

    name = "graph.gather_elements"
    x = operand_def(TensorType)
    indices = operand_def(TensorType)
    y = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$x `,` $indices attr-dict `:` type($x) `,` type($indices) `->` type($y)"

    def __init__(self, x: SSAValue, indices: SSAValue, axis: int):
        super().__init__(
            operands=[x, indices],
            result_types=[tensor(shape_of(indices))],
            properties={"axis": i64_attr(axis)},
        )

    def verify_shapes(self) -> None:
        xs, ids, axis = shape_of(self.x), shape_of(self.indices), self.axis.value.data
        require(0 <= axis < len(xs), f"graph.gather_elements: axis must be in [0, {len(xs)})")
        require(
            len(ids) == len(xs) and all(i <= n for a, (i, n) in enumerate(zip(ids, xs, strict=True)) if a != axis),
            "graph.gather_elements: indices must have the input's rank and fit it off the axis",
        )
        require(shape_of(self.y) == ids, "graph.gather_elements: result must be shaped like indices")


# --------------------------------------------------------------------------
# data movement (Slice, Pad, Expand, Resize): every output element reads one
# input element chosen per axis (or, for linear Resize, two per resized axis)


@irdl_op_definition
class SliceOp(SingleInputOp):
    """y[i] = x[starts + i * steps] on every axis (ONNX Slice after clamping:
    starts in range, steps nonzero, the result extent given by the type)."""

    name = "graph.slice"
    starts = prop_def(DenseArrayBase)
    steps = prop_def(DenseArrayBase)

    def verify_shapes(self) -> None:
        xs, ys = shape_of(self.x), shape_of(self.y)
        starts, steps = ints(self.starts), ints(self.steps)
        require(len(ys) == len(xs), "graph.slice: result rank must equal input rank")
        require(len(starts) == len(steps) == len(xs), "graph.slice: starts/steps need one value per axis")
        for axis, (n, m, start, step) in enumerate(zip(xs, ys, starts, steps, strict=True)):
            last = start + (m - 1) * step
            require(
                step != 0 and m >= 1 and 0 <= start < n and 0 <= last < n,
                f"graph.slice: axis {axis} reads outside the input",
            )


PAD_MODES = ("constant", "reflect", "edge")


@irdl_op_definition
class PadOp(SingleInputOp):
    """ONNX Pad (constant, reflect, edge) with non-negative pads [begins..., ends...]."""

    name = "graph.pad"
    pads = prop_def(DenseArrayBase)
    mode = prop_def(StringAttr)
    value = prop_def(FloatAttr)

    def verify_shapes(self) -> None:
        xs, ys, pads = shape_of(self.x), shape_of(self.y), ints(self.pads)
        rank = len(xs)
        require(len(pads) == 2 * rank, f"graph.pad: pads needs {2 * rank} values")
        require(min(pads, default=0) >= 0, "graph.pad: negative pads")
        require(self.mode.data in PAD_MODES, f"graph.pad: mode must be one of {', '.join(PAD_MODES)}")
        want = tuple(n + pads[a] + pads[a + rank] for a, n in enumerate(xs))
        require(ys == want, f"graph.pad: result must be {list(want)}")
        if self.mode.data == "reflect":
            require(
                all(pads[a] < n and pads[a + rank] < n for a, n in enumerate(xs)),
                "graph.pad: reflect pads must be smaller than the axis",
            )


@irdl_op_definition
class ExpandOp(SingleInputOp):
    """ONNX Expand: x broadcast to the result shape."""

    name = "graph.expand"

    def verify_shapes(self) -> None:
        xs, ys = shape_of(self.x), shape_of(self.y)
        require(
            len(ys) >= len(xs) and broadcast_shapes(xs, ys) == ys,
            f"graph.expand: {list(xs)} does not broadcast to {list(ys)}",
        )


RESIZE_MODES = ("nearest", "linear")
RESIZE_COORDINATES = (
    "half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric",
)  # fmt: skip
RESIZE_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@irdl_op_definition
class ResizeOp(SingleInputOp):
    """ONNX Resize (nearest or linear) with per-axis `scales` (output / input,
    as ONNX uses them in the coordinate transformation)."""

    name = "graph.resize"
    mode = prop_def(StringAttr)
    coordinate_mode = prop_def(StringAttr)
    nearest_mode = prop_def(StringAttr)
    scales = prop_def(ArrayAttr[FloatAttr])

    def scale_values(self) -> tuple[float, ...]:
        return tuple(a.value.data for a in self.scales.data)

    def verify_shapes(self) -> None:
        xs, ys = shape_of(self.x), shape_of(self.y)
        require(len(ys) == len(xs), "graph.resize: result rank must equal input rank")
        require(self.mode.data in RESIZE_MODES, "graph.resize: mode must be nearest or linear")
        require(
            self.coordinate_mode.data in RESIZE_COORDINATES,
            f"graph.resize: unknown coordinate mode '{self.coordinate_mode.data}'",
        )
        require(
            self.nearest_mode.data in RESIZE_NEAREST,
            f"graph.resize: unknown nearest mode '{self.nearest_mode.data}'",
        )
        scales = self.scale_values()
        require(len(scales) == len(xs), "graph.resize: scales needs one value per axis")
        require(all(sc > 0 for sc in scales), "graph.resize: scales must be positive")


# --------------------------------------------------------------------------
# reductions


REDUCE_KINDS = ("max", "min", "sum", "mean")


def reduced_shape(xs: Sequence[int], axes: Sequence[int], keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if a in axes else n for a, n in enumerate(xs))
    return tuple(n for a, n in enumerate(xs) if a not in axes)


@irdl_op_definition
class ReduceOp(SingleInputOp):
    """ONNX ReduceMax/Min/Sum/Mean (and GlobalMaxPool) over sorted, distinct `axes`."""

    name = "graph.reduce"
    kind = prop_def(StringAttr)
    axes = prop_def(DenseArrayBase)
    keepdims = prop_def(IntegerAttr)

    def verify_shapes(self) -> None:
        xs, axes = shape_of(self.x), ints(self.axes)
        require(self.kind.data in REDUCE_KINDS, f"graph.reduce: kind must be one of {', '.join(REDUCE_KINDS)}")
        require(
            len(axes) >= 1 and list(axes) == sorted(set(axes)) and 0 <= axes[0] and axes[-1] < len(xs),
            "graph.reduce: axes must be sorted, distinct and in range",
        )
        want = reduced_shape(xs, axes, bool(self.keepdims.value.data))
        require(shape_of(self.y) == want, f"graph.reduce: result must be {list(want)}")


@irdl_op_definition
class LayerNormOp(GraphOp):
    """ONNX LayerNormalization over the axes from `axis` on: y = (x - mean) *
    inv_std * scale + bias, with the per-row mean and inv_std as results too
    ([x dims before axis, 1...])."""

    name = "graph.layer_norm"
    x = operand_def(TensorType)
    scale = operand_def(TensorType)
    bias = opt_operand_def(TensorType)
    y = result_def(TensorType)
    mean = result_def(TensorType)
    inv_std = result_def(TensorType)
    axis = prop_def(IntegerAttr)
    epsilon = prop_def(FloatAttr)
    traits = traits_def(Pure())
    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = (
        "$x `,` $scale (`bias` `(` $bias^ `:` type($bias) `)`)? attr-dict `:` type($x) `,`"
        " type($scale) `->` type($y) `,` type($mean) `,` type($inv_std)"
    )

    def verify_shapes(self) -> None:
        xs, axis = shape_of(self.x), self.axis.value.data
        require(0 <= axis < len(xs), f"graph.layer_norm: axis must be in [0, {len(xs)})")
        require(self.y.type == self.x.type, "graph.layer_norm: result type must equal input")
        require(shape_of(self.scale) == xs[axis:], f"graph.layer_norm: scale must be {list(xs[axis:])}")
        if self.bias is not None:
            require(shape_of(self.bias) == xs[axis:], f"graph.layer_norm: bias must be {list(xs[axis:])}")
        stats = (*xs[:axis], *[1] * (len(xs) - axis))
        for value in (self.mean, self.inv_std):
            require(shape_of(value) == stats, f"graph.layer_norm: mean and inv_std must be {list(stats)}")
        require(self.epsilon.value.data > 0, "graph.layer_norm: epsilon must be positive")


# --------------------------------------------------------------------------
# recurrent cells


class RecurrentFields:
    """Operands, results and properties of every RNN/GRU/LSTM op, dense (`graph`) or
    sparse (`bcr`), after X and the weights.

    A mixin listed after the op's IRDL base: xDSL collects fields along the MRO, a
    subclass's own first, so these follow the op's X and W/R, and `LSTMFields`
    listed after the op class follows these: the operands and results keep the
    ONNX order (X, W, R, B, initial_h, initial_c, P; Y, Y_h, Y_c). The cell
    ops keep their own properties and `irdl_options` in their bodies: passes
    rebuild ops with the properties in definition order, which the IR prints.
    """

    GATES: ClassVar[int] = 1
    b = opt_operand_def(TensorType)
    initial_h = opt_operand_def(TensorType)
    y = result_def(TensorType)
    y_h = result_def(TensorType)
    hidden_size = prop_def(IntegerAttr)
    direction = prop_def(StringAttr)
    clip = opt_prop_def(FloatAttr)

    @property
    def num_directions(self) -> int:
        return 2 if self.direction.data == "bidirectional" else 1


class LSTMFields:
    """LSTM's operands and result beyond `RecurrentFields` (the mixin after the op
    class in an LSTM op's bases, so that they come last)."""

    initial_c = opt_operand_def(TensorType)
    p = opt_operand_def(TensorType)
    y_c = result_def(TensorType)


class RecurrentOp(GraphOp, RecurrentFields):
    """Shared structure of ONNX RNN/GRU/LSTM (layout 0: X is [seq, batch, input]).

    Results are always materialised: Y [seq, dirs, batch, H] and Y_h
    [dirs, batch, H] (+ Y_c for LSTM); dead-code elimination leaves them alone
    because one cell computes all of them.
    """

    x = operand_def(TensorType)
    w = operand_def(TensorType)
    r = operand_def(TensorType)
    traits = traits_def(Pure())

    def verify_shapes(self) -> None:
        dirs, rows, inp = check_recurrent(self, self.GATES)
        hidden = self.hidden_size.value.data
        require(shape_of(self.w) == (dirs, rows, inp), f"{self.name}: W must be [{dirs}, {rows}, {inp}]")
        require(shape_of(self.r) == (dirs, rows, hidden), f"{self.name}: R must be [{dirs}, {rows}, {hidden}]")


def check_recurrent(op: Any, gates: int) -> tuple[int, int, int]:
    """RNN/GRU/LSTM checks shared by dense and sparse cells: all but W and R.

    Returns (directions, gates * hidden, input size), the per-direction GEMM
    view that W [rows, input] and R [rows, hidden] must have.
    """
    hidden = op.hidden_size.value.data
    xs = shape_of(op.x)
    require(len(xs) == 3, f"{op.name}: X must be [seq, batch, input]")
    require(hidden >= 1, f"{op.name}: hidden_size must be >= 1")
    seq, batch, inp = xs
    require(
        op.direction.data in ("forward", "reverse", "bidirectional"),
        f"{op.name}: direction must be forward, reverse or bidirectional",
    )
    dirs = 2 if op.direction.data == "bidirectional" else 1
    if op.b is not None:
        require(shape_of(op.b) == (dirs, 2 * gates * hidden), f"{op.name}: B must be [{dirs}, {2 * gates * hidden}]")
    state = (dirs, batch, hidden)
    if op.initial_h is not None:
        require(shape_of(op.initial_h) == state, f"{op.name}: initial_h must be {list(state)}")
    require(shape_of(op.y) == (seq, dirs, batch, hidden), f"{op.name}: Y must be [{seq}, {dirs}, {batch}, {hidden}]")
    require(shape_of(op.y_h) == state, f"{op.name}: Y_h must be {list(state)}")
    return dirs, gates * hidden, inp


def check_lstm_state(op: Any) -> None:
    """LSTM cell-state and peephole checks (after `check_recurrent`)."""
    state = shape_of(op.y_h)
    require(shape_of(op.y_c) == state, f"{op.name}: Y_c must be {list(state)}")
    if op.initial_c is not None:
        require(shape_of(op.initial_c) == state, f"{op.name}: initial_c must be {list(state)}")
    if op.p is not None:
        want = (state[0], 3 * op.hidden_size.value.data)
        require(shape_of(op.p) == want, f"{op.name}: P must be {list(want)}")


def _recurrent_format(extra_optional: Sequence[str], extra_results: Sequence[str]) -> str:
    optional = ["b", "initial_h", *extra_optional]
    opt = " ".join(f"(`{name}` `(` ${name}^ `:` type(${name}) `)`)?" for name in optional)
    results = " `,` ".join(f"type(${r})" for r in ["y", "y_h", *extra_results])
    return f"$x `,` $w `,` $r {opt} attr-dict `:` type($x) `,` type($w) `,` type($r) `->` {results}"


@irdl_op_definition
class RNNOp(RecurrentOp):
    """ONNX RNN with the default Tanh activation."""

    name = "graph.rnn"
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _recurrent_format((), ())


@irdl_op_definition
class GRUOp(RecurrentOp):
    """ONNX GRU (gates z, r, h) with default Sigmoid/Tanh activations."""

    name = "graph.gru"
    GATES: ClassVar[int] = 3
    linear_before_reset = prop_def(IntegerAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _recurrent_format((), ())


@irdl_op_definition
class LSTMOp(RecurrentOp, LSTMFields):
    """ONNX LSTM (gates i, o, f, c) with default activations, optional peepholes."""

    name = "graph.lstm"
    GATES: ClassVar[int] = 4
    input_forget = prop_def(IntegerAttr)
    irdl_options = (AttrSizedOperandSegments(as_property=True), ParsePropInAttrDict())
    assembly_format = _recurrent_format(("initial_c", "p"), ("y_c",))

    def verify_shapes(self) -> None:
        super().verify_shapes()
        check_lstm_state(self)


Graph = Dialect(
    "graph",
    [
        WeightOp,
        ConvOp,
        GemmOp,
        MatMulOp,
        AddOp,
        MulOp,
        SumOp,
        SubOp,
        DivOp,
        PowOp,
        MaxOp,
        MinOp,
        SiluOp,
        ExpOp,
        LogOp,
        SqrtOp,
        NegOp,
        AbsOp,
        ReciprocalOp,
        ErfOp,
        GeluOp,
        NotOp,
        EqualOp,
        LessOp,
        LessOrEqualOp,
        AndOp,
        OrOp,
        WhereOp,
        ReluOp,
        SigmoidOp,
        TanhOp,
        HardSwishOp,
        ClipOp,
        LeakyReluOp,
        HardSigmoidOp,
        PReluOp,
        BatchNormOp,
        MaxPoolOp,
        AvgPoolOp,
        GlobalAvgPoolOp,
        LRNOp,
        SoftmaxOp,
        FlattenOp,
        ReshapeOp,
        TransposeOp,
        ConcatOp,
        GatherOp,
        GatherElementsOp,
        SliceOp,
        PadOp,
        ExpandOp,
        ResizeOp,
        ReduceOp,
        LayerNormOp,
        RNNOp,
        GRUOp,
        LSTMOp,
    ],
    [ActivationAttr],
)
