"""Numerics of the graph passes, checked with the ONNX reference evaluator.

Each test builds a small graph-IR module with its weight store, exports it to
ONNX (`to_onnx`, a test-only exporter that spells every fused `act`/`residual`
as separate ONNX nodes), runs the passes, exports again, and compares what
`onnx.reference.ReferenceEvaluator` computes for both, at rtol 1e-4, atol 1e-5.
Imported ONNX models are compared with the reference run of the original model,
and the zoo CNNs (small variants) with onnxruntime. Structure is checked too
(what was folded/fused away), so a pass that silently does nothing fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Block, Operation, Region, SSAValue

from grimc.artifacts import onnxruntime_reference
from grimc.dialects import graph as g
from grimc.frontend import import_onnx
from grimc.transforms import graph_constant_fold
from grimc.universe import PASSES, make_context
from grimc.weights import WeightStore, attach, save_beside, store_for
from grimc.zoo import build
from tests.conftest import run_tool

RTOL, ATOL = 1e-4, 1e-5
GRAPH_PASSES = ["graph-bn-fold", "graph-fuse-activations", "graph-constant-fold", "graph-dce"]
PIPELINE = ["graph-constant-fold", "graph-bn-fold", "graph-fuse-activations", "graph-dce"]

# --------------------------------------------------------------------------
# building IR


class Builder:
    """One function `main` in a module with its own in-memory weight store."""

    def __init__(self, *input_shapes: Sequence[int], seed: int = 0) -> None:
        self.store = WeightStore()
        self.block = Block(arg_types=[g.tensor(s) for s in input_shapes])
        self.rng = np.random.default_rng(seed)

    @property
    def args(self) -> tuple[SSAValue, ...]:
        return tuple(self.block.args)

    def op(self, op: Operation) -> SSAValue:
        self.block.add_op(op)
        return op.results[0]

    def weight(self, shape: Sequence[int], hint: str = "w", positive: bool = False) -> SSAValue:
        array = self.rng.standard_normal(shape).astype(np.float32)
        if positive:
            array = np.abs(array) + 0.5
        return self.op(g.WeightOp(self.store.add(hint, array), shape))

    def conv(
        self, x: SSAValue, cout: int, bias: bool = True, group: int = 1, stride: int = 1
    ) -> SSAValue:
        """A 3x3 'same'-padded conv with random weights."""
        n, cin, h, w = g.shape_of(x)
        out = (n, cout, (h - 1) // stride + 1, (w - 1) // stride + 1)
        wv = self.weight((cout, cin // group, 3, 3), "conv_w")
        bv = self.weight((cout,), "conv_b") if bias else None
        return self.op(g.ConvOp(x, wv, bv, out, (stride,) * 2, (1,) * 4, (1, 1), group))

    def batch_norm(self, x: SSAValue) -> SSAValue:
        c = g.shape_of(x)[1]
        scale, bias, mean = (self.weight((c,), h) for h in ("bn_scale", "bn_bias", "bn_mean"))
        var = self.weight((c,), "bn_var", positive=True)
        return self.op(g.BatchNormOp(x, scale, bias, mean, var, 1e-3))

    def module(self, *results: SSAValue) -> ModuleOp:
        self.block.add_op(func.ReturnOp(*results))
        signature = ([a.type for a in self.args], [r.type for r in results])
        module = ModuleOp([func.FuncOp("main", signature, Region(self.block))])
        attach(module, self.store)
        module.verify()
        return module


def run_passes(module: ModuleOp, names: Sequence[str]) -> ModuleOp:
    """Apply passes through the lazy registry, verifying after each."""
    ctx = make_context()
    for name in names:
        PASSES[name]()().apply(ctx, module)
        module.verify()
    return module


def graph_ops(module: ModuleOp) -> list[str]:
    """Names of the non-weight graph ops, in order."""
    return [
        op.name
        for op in module.walk()
        if op.name.startswith("graph.") and op.name != "graph.weight"
    ]


def only(module: ModuleOp, kind: type[Operation]) -> Operation:
    [op] = [op for op in module.walk() if isinstance(op, kind)]
    return op


# --------------------------------------------------------------------------
# IR -> ONNX, for the reference evaluator

_ACT_NODES = {
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "hard_swish": "HardSwish",
    "leaky_relu": "LeakyRelu",
    "hard_sigmoid": "HardSigmoid",
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "neg": "Neg",
    "abs": "Abs",
    "reciprocal": "Reciprocal",
    "erf": "Erf",
}


class OnnxExporter:
    """Spells graph ops as ONNX nodes; fused epilogues become separate nodes."""

    def __init__(self, store: WeightStore) -> None:
        self.store = store
        self.names: dict[SSAValue, str] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []

    def name(self, value: SSAValue) -> str:
        return self.names.setdefault(value, f"v{len(self.names)}")

    def const(self, array: np.ndarray) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op_type: str, inputs: Sequence[str], out: str | None = None, **attrs) -> str:
        out = out or f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def activation(self, act: g.ActivationAttr, x: str) -> str:
        kind, p = act.kind.data, act.values
        if kind == "clip":
            return self.node(
                "Clip", [x, self.const(np.float32(p[0])), self.const(np.float32(p[1]))]
            )
        if kind == "not":  # 1 - x, as on 0/1 booleans
            return self.node("Sub", [self.const(np.float32(1)), x])
        if kind == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x])])
        if kind in ("gelu", "gelu_tanh"):  # opset 18 has no Gelu: spelled out
            if kind == "gelu":
                inner = self.node("Erf", [self.node("Mul", [x, self.const(np.float32(0.5**0.5))])])
            else:
                cube = self.node("Mul", [x, self.node("Mul", [x, x])])
                u = self.node("Add", [x, self.node("Mul", [cube, self.const(np.float32(0.044715))])])
                c = np.float32((2 / np.pi) ** 0.5)
                inner = self.node("Tanh", [self.node("Mul", [u, self.const(c)])])
            half = self.node("Mul", [x, self.const(np.float32(0.5))])
            return self.node("Add", [half, self.node("Mul", [half, inner])])
        names = {"leaky_relu": ("alpha",), "hard_sigmoid": ("alpha", "beta")}.get(kind, ())
        return self.node(_ACT_NODES[kind], [x], **dict(zip(names, p, strict=True)))

    def epilogue(self, op: Operation, y: str) -> None:
        """Residual add, then act, writing the op's result name."""
        residual = getattr(op, "residual", None)
        if residual is not None:
            y = self.node("Add", [y, self.name(residual)])
        act = getattr(op, "act", None)
        if act is not None:
            y = self.activation(act, y)
        self.node("Identity", [y], self.name(op.results[0]))

    def operands(self, *values: SSAValue | None) -> list[str]:
        return [self.name(v) for v in values if v is not None]

    def pool(self, op: g.MaxPoolOp | g.AvgPoolOp, out: str) -> None:
        names = ["kernel_shape", "strides", "pads", "dilations"]
        attrs: dict = {k: list(g.ints(op.properties[k])) for k in names if k in op.properties}
        attrs["ceil_mode"] = op.ceil_mode.value.data
        if isinstance(op, g.AvgPoolOp):
            attrs["count_include_pad"] = op.count_include_pad.value.data
        kind = "MaxPool" if isinstance(op, g.MaxPoolOp) else "AveragePool"
        self.node(kind, [self.name(op.x)], out, **attrs)

    def op(self, op: Operation) -> None:
        out = self.name(op.results[0]) if op.results else ""
        if isinstance(op, g.WeightOp):
            self.inits.append(numpy_helper.from_array(self.store[op.key.data], out))
        elif isinstance(op, g.ConvOp):
            attrs = {k: list(g.ints(getattr(op, k))) for k in ("strides", "pads", "dilations")}
            y = self.node(
                "Conv", self.operands(op.x, op.w, op.b), group=op.group.value.data, **attrs
            )
            self.epilogue(op, y)
        elif isinstance(op, g.GemmOp):
            attrs = {"alpha": op.alpha.value.data, "beta": op.beta.value.data}
            attrs |= {"transA": op.trans_a.value.data, "transB": op.trans_b.value.data}
            self.epilogue(op, self.node("Gemm", self.operands(op.a, op.b, op.c), **attrs))
        elif isinstance(op, g.MatMulOp):
            self.epilogue(op, self.node("MatMul", self.operands(op.a, op.b)))
        elif isinstance(op, g.AddOp | g.MulOp):
            kind = "Add" if isinstance(op, g.AddOp) else "Mul"
            self.epilogue(op, self.node(kind, self.operands(op.lhs, op.rhs)))
        elif isinstance(op, g.UnaryOp):
            self.node("Identity", [self.activation(op.activation(), self.name(op.x))], out)
        elif isinstance(op, g.BatchNormOp):
            ins = self.operands(op.x, op.scale, op.bias, op.mean, op.var)
            self.node("BatchNormalization", ins, out, epsilon=op.epsilon.value.data)
        elif isinstance(op, g.PReluOp):
            self.node("PRelu", self.operands(op.x, op.slope), out)
        elif isinstance(op, g.TransposeOp):
            self.node("Transpose", [self.name(op.x)], out, perm=list(g.ints(op.perm)))
        elif isinstance(op, g.ReshapeOp):
            shape = self.const(np.array(g.shape_of(op.y), np.int64))
            self.node("Reshape", [self.name(op.x), shape], out)
        elif isinstance(op, g.FlattenOp):
            self.node("Flatten", [self.name(op.x)], out, axis=op.axis.value.data)
        elif isinstance(op, g.ConcatOp):
            self.node("Concat", self.operands(*op.inputs), out, axis=op.axis.value.data)
        elif isinstance(op, g.SumOp):
            self.node("Sum", self.operands(*op.inputs), out)
        elif isinstance(op, g.MaxPoolOp | g.AvgPoolOp):
            self.pool(op, out)
        elif isinstance(op, g.GlobalAvgPoolOp):
            self.node("GlobalAveragePool", [self.name(op.x)], out)
        elif isinstance(op, g.SoftmaxOp):
            self.node("Softmax", [self.name(op.x)], out, axis=op.axis.value.data)
        else:
            raise NotImplementedError(op.name)


def to_onnx(module: ModuleOp) -> onnx.ModelProto:
    main = only(module, func.FuncOp)
    exporter = OnnxExporter(store_for(module))

    def info(value: SSAValue) -> onnx.ValueInfoProto:
        shape = list(g.shape_of(value))
        return helper.make_tensor_value_info(exporter.name(value), TensorProto.FLOAT, shape)

    inputs = [info(a) for a in main.body.block.args]
    for op in main.body.block.ops:
        if isinstance(op, func.ReturnOp):
            outputs = [info(v) for v in op.operands]
        else:
            exporter.op(op)
    model_graph = helper.make_graph(exporter.nodes, "main", inputs, outputs, exporter.inits)
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return model


def evaluate(module: ModuleOp, *inputs: np.ndarray) -> list[np.ndarray]:
    model = to_onnx(module)
    feeds = {i.name: x for i, x in zip(model.graph.input, inputs, strict=True)}
    return ReferenceEvaluator(model).run(None, feeds)


def random_inputs(module: ModuleOp, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    main = only(module, func.FuncOp)
    return [rng.standard_normal(g.shape_of(a)).astype(np.float32) for a in main.body.block.args]


def check_preserves_numerics(module: ModuleOp, passes: Sequence[str]) -> ModuleOp:
    """Run `passes` on `module` and compare reference outputs before and after."""
    inputs = random_inputs(module)
    before = evaluate(module, *inputs)
    after = evaluate(run_passes(module, passes), *inputs)
    for want, got in zip(before, after, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return module


# --------------------------------------------------------------------------
# graph-bn-fold


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("group, stride", [(1, 1), (1, 2), (4, 1)])
def test_conv_bn_relu_becomes_one_conv(bias: bool, group: int, stride: int) -> None:
    b = Builder((2, 4, 7, 7))
    y = b.conv(b.args[0], 8, bias=bias, group=group, stride=stride)
    module = b.module(b.op(g.ReluOp(b.batch_norm(y))))
    check_preserves_numerics(module, PIPELINE)
    assert graph_ops(module) == ["graph.conv"]
    conv = only(module, g.ConvOp)
    assert conv.act == g.ActivationAttr("relu") and conv.b is not None


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (6,), (3, 6), (3, 1), ()])
def test_gemm_bn_folds_per_column(trans_b: int, c_shape: tuple[int, ...] | None) -> None:
    b = Builder((3, 5))
    w = b.weight((6, 5) if trans_b else (5, 6), "fc_w")
    c = None if c_shape is None else b.weight(c_shape, "fc_b")
    y = b.op(g.GemmOp(b.args[0], w, c, alpha=1.5, beta=0.5, trans_b=trans_b))
    module = b.module(b.batch_norm(y))
    check_preserves_numerics(module, ["graph-bn-fold", "graph-dce"])
    assert graph_ops(module) == ["graph.gemm"]
    assert only(module, g.GemmOp).beta.value.data == 1.0


def test_bn_fold_keeps_shared_weights_intact() -> None:
    b = Builder((1, 3, 5, 5))
    conv = b.conv(b.args[0], 4).owner
    assert isinstance(conv, g.ConvOp)
    folded = b.batch_norm(conv.y)
    other = b.op(conv.clone())  # same weight and bias values
    module = b.module(folded, other)
    originals = {k: v.copy() for k, v in b.store.items()}
    check_preserves_numerics(module, ["graph-bn-fold"])
    assert "graph.batch_norm" not in graph_ops(module)
    for key, array in originals.items():
        np.testing.assert_array_equal(b.store[key], array)


def test_bn_without_foldable_producer_is_left_alone() -> None:
    b = Builder((1, 4, 5, 5))
    y = b.conv(b.args[0], 4)
    module = b.module(b.batch_norm(y), y)
    run_passes(module, ["graph-bn-fold"])
    assert graph_ops(module) == ["graph.conv", "graph.batch_norm"]


# --------------------------------------------------------------------------
# graph-fuse-activations


def test_resnet_block_fuses_bn_residual_and_relu() -> None:
    b = Builder((1, 4, 6, 6))
    x = b.args[0]
    h = b.op(g.ReluOp(b.batch_norm(b.conv(x, 4, bias=False))))
    y = b.batch_norm(b.conv(h, 4, bias=False))
    module = b.module(b.op(g.ReluOp(b.op(g.AddOp(y, x)))))
    check_preserves_numerics(module, PIPELINE)
    assert graph_ops(module) == ["graph.conv", "graph.conv"]
    last = [op for op in module.walk() if isinstance(op, g.ConvOp)][-1]
    assert last.residual is x and last.act == g.ActivationAttr("relu")


@pytest.mark.parametrize(
    "unary",
    [
        lambda x: g.ReluOp(x),
        lambda x: g.SigmoidOp(x),
        lambda x: g.TanhOp(x),
        lambda x: g.HardSwishOp(x),
        lambda x: g.ClipOp(x, min=g.f32_attr(-0.5), max=g.f32_attr(0.25)),
        lambda x: g.LeakyReluOp(x, alpha=g.f32_attr(0.1)),
        lambda x: g.HardSigmoidOp(x, alpha=g.f32_attr(0.3), beta=g.f32_attr(0.4)),
    ],
)
def test_every_activation_fuses_with_the_same_meaning(
    unary: Callable[[SSAValue], Operation],
) -> None:
    b = Builder((2, 5), (5, 4))
    a, w = b.args
    residual = b.op(g.MatMulOp(a, w))
    gemm = b.op(g.GemmOp(a, w, None))
    module = b.module(b.op(unary(b.op(g.AddOp(gemm, residual)))))
    check_preserves_numerics(module, ["graph-fuse-activations"])
    assert graph_ops(module) == ["graph.matmul", "graph.gemm"]


# --------------------------------------------------------------------------
# graph-constant-fold

CONSTANT_CASES = {
    g.TransposeOp: lambda w: g.TransposeOp(w((3, 4)), (1, 0)),
    g.ReshapeOp: lambda w: g.ReshapeOp(w((3, 4)), (2, 6)),
    g.FlattenOp: lambda w: g.FlattenOp.build(
        operands=[w((2, 3, 4))], result_types=[g.tensor((6, 4))], properties={"axis": g.i64_attr(2)}
    ),
    g.AddOp: lambda w: g.AddOp(w((3, 4)), w((4,)), g.ActivationAttr("leaky_relu", (0.2,))),
    g.MulOp: lambda w: g.MulOp(w((3, 1)), w((4,))),
    g.SumOp: lambda w: g.SumOp([w((3, 4)), w((4,)), w((3, 1))]),
    g.ConcatOp: lambda w: g.ConcatOp([w((3, 4)), w((2, 4))], 0),
    g.MatMulOp: lambda w: g.MatMulOp(w((2, 3, 4)), w((4, 5))),
    g.GemmOp: lambda w: g.GemmOp(
        w((4, 3)), w((5, 4)), w((5,)), 0.5, 2.0, 1, 1, w((3, 5)), g.ActivationAttr("clip", (-1, 1))
    ),
    g.PReluOp: lambda w: g.PReluOp(w((3, 4)), w((4,))),
    g.ReluOp: lambda w: g.ReluOp(w((3, 4))),
    g.SigmoidOp: lambda w: g.SigmoidOp(w((3, 4))),
    g.TanhOp: lambda w: g.TanhOp(w((3, 4))),
    g.HardSwishOp: lambda w: g.HardSwishOp(w((3, 4))),
    g.ClipOp: lambda w: g.ClipOp(w((3, 4)), min=g.f32_attr(-0.3), max=g.f32_attr(0.6)),
    g.LeakyReluOp: lambda w: g.LeakyReluOp(w((3, 4)), alpha=g.f32_attr(0.05)),
    g.HardSigmoidOp: lambda w: g.HardSigmoidOp(
        w((3, 4)), alpha=g.f32_attr(0.3), beta=g.f32_attr(0.6)
    ),
    g.SiluOp: lambda w: g.SiluOp(w((3, 4))),
    g.ExpOp: lambda w: g.ExpOp(w((3, 4))),
    g.LogOp: lambda w: g.LogOp(w((3, 4), positive=True)),
    g.SqrtOp: lambda w: g.SqrtOp(w((3, 4), positive=True)),
    g.NegOp: lambda w: g.NegOp(w((3, 4))),
    g.AbsOp: lambda w: g.AbsOp(w((3, 4))),
    g.ReciprocalOp: lambda w: g.ReciprocalOp(w((3, 4))),
    g.ErfOp: lambda w: g.ErfOp(w((3, 4))),
    g.GeluOp: lambda w: g.GeluOp(w((3, 4)), approximate=StringAttr("tanh")),
    g.NotOp: lambda w: g.NotOp(w((3, 4))),
}
"""One op per evaluator type, built from `w(shape)` -> a random constant."""


def test_every_evaluator_has_a_case() -> None:
    assert set(CONSTANT_CASES) == set(graph_constant_fold.EVALUATORS)


@pytest.mark.parametrize("kind", list(CONSTANT_CASES), ids=lambda k: k.name)
def test_constant_fold_matches_onnx(kind: type[Operation]) -> None:
    b = Builder()
    y = b.op(CONSTANT_CASES[kind](b.weight))
    module = check_preserves_numerics(b.module(y), ["graph-constant-fold", "graph-dce"])
    assert graph_ops(module) == []


def test_large_matmul_is_not_folded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_constant_fold, "MAX_FOLD_FLOPS", 2 * 3 * 4 * 5 - 1)
    b = Builder()
    module = b.module(b.op(g.MatMulOp(b.weight((3, 4)), b.weight((4, 5)))))
    run_passes(module, ["graph-constant-fold"])
    assert graph_ops(module) == ["graph.matmul"]


# --------------------------------------------------------------------------
# graph-dce and registration


def test_dce_drops_ops_but_not_store_entries() -> None:
    b = Builder((4,))
    dead = b.op(g.ReluOp(b.weight((4,), "dead")))
    module = b.module(b.op(g.AddOp(b.args[0], b.weight((4,), "live"))))
    assert dead.owner.parent is not None
    run_passes(module, ["graph-dce"])
    keys = [op.key.data for op in module.walk() if isinstance(op, g.WeightOp)]
    assert keys == ["live"] and "dead" in b.store
    assert graph_ops(module) == ["graph.add"]


@pytest.mark.parametrize("name", GRAPH_PASSES)
def test_pass_is_registered_and_runs_in_xdsl_opt(name: str, tmp_path) -> None:
    assert PASSES[name]().name == name
    b = Builder((1, 4))
    module = b.module(b.op(g.ReluOp(b.op(g.MatMulOp(b.args[0], b.weight((4, 4)))))))
    save_beside(module, tmp_path / "w.npz")
    (tmp_path / "in.mlir").write_text(str(module))
    proc = run_tool(["xdsl-opt", str(tmp_path / "in.mlir"), "-p", name])
    assert proc.returncode == 0, proc.stderr
    assert "graph.matmul" in proc.stdout


# --------------------------------------------------------------------------
# the whole pipeline on imported ONNX models, against the original model


def onnx_model(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, tuple[int, ...]],
    outputs: dict[str, tuple[int, ...]],
    weights: dict[str, tuple[int, ...]],
) -> onnx.ModelProto:
    """An opset-17 model with random initializers (BN variances are positive)."""
    rng = np.random.default_rng(3)

    def init(name: str, shape: tuple[int, ...]) -> TensorProto:
        array = rng.standard_normal(shape).astype(np.float32)
        return numpy_helper.from_array(np.abs(array) + 0.5 if "var" in name else array, name)

    def infos(specs: dict[str, tuple[int, ...]]) -> list[onnx.ValueInfoProto]:
        return [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in specs.items()]

    model_graph = helper.make_graph(
        nodes, "m", infos(inputs), infos(outputs), [init(n, s) for n, s in weights.items()]
    )
    return helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", 17)])


def bn_node(
    x: str, y: str, prefix: str, channels: int, weights: dict[str, tuple[int, ...]]
) -> onnx.NodeProto:
    """A BatchNormalization node; its statistics are added to `weights`."""
    stats = [f"{prefix}_{s}" for s in ("scale", "bias", "mean", "var")]
    weights.update(dict.fromkeys(stats, (channels,)))
    return helper.make_node("BatchNormalization", [x, *stats], [y], epsilon=1e-3)


def check_imported_pipeline(model: onnx.ModelProto) -> ModuleOp:
    """Import, run the graph pipeline, compare with the reference on `model`."""
    module = run_passes(import_onnx(model), PIPELINE)
    inputs = random_inputs(module)
    feeds = {i.name: x for i, x in zip(model.graph.input, inputs, strict=True)}
    want = ReferenceEvaluator(model).run(None, feeds)
    for expected, got in zip(want, evaluate(module, *inputs), strict=True):
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    return module


def test_imported_conv_bn_relu() -> None:
    weights = {"W": (8, 3, 3, 3), "B": (8,)}
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        bn_node("c", "n", "bn", 8, weights),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    model = onnx_model(nodes, {"x": (1, 3, 9, 9)}, {"y": (1, 8, 5, 5)}, weights)
    module = check_imported_pipeline(model)
    assert graph_ops(module) == ["graph.conv"]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_imported_gemm_bn(trans_b: int) -> None:
    weights = {"W": (6, 5) if trans_b else (5, 6), "C": (6,)}
    nodes = [
        helper.make_node("Gemm", ["x", "W", "C"], ["g"], transB=trans_b, beta=0.5),
        bn_node("g", "y", "bn", 6, weights),
    ]
    model = onnx_model(nodes, {"x": (3, 5)}, {"y": (3, 6)}, weights)
    assert graph_ops(check_imported_pipeline(model)) == ["graph.gemm"]


def test_imported_resnet_block() -> None:
    weights = {"W1": (4, 4, 3, 3), "W2": (4, 4, 3, 3)}
    conv = dict(pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["c1"], **conv),
        bn_node("c1", "n1", "bn1", 4, weights),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], **conv),
        bn_node("c2", "n2", "bn2", 4, weights),
        helper.make_node("Add", ["n2", "x"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    model = onnx_model(nodes, {"x": (1, 4, 6, 6)}, {"y": (1, 4, 6, 6)}, weights)
    module = check_imported_pipeline(model)
    assert graph_ops(module) == ["graph.conv", "graph.conv"]
    last = [op for op in module.walk() if isinstance(op, g.ConvOp)][-1]
    assert last.residual is not None and last.act == g.ActivationAttr("relu")


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("small_cnn", {}),
        ("resnet18", {"image_size": 32, "width": 0.25, "num_classes": 10}),
        ("resnet50", {"image_size": 32, "width": 0.125, "num_classes": 10}),
        ("mobilenet_v2", {"image_size": 32, "width": 0.25, "num_classes": 10}),
    ],
)
def test_zoo_cnn_pipeline_matches_onnxruntime(name: str, kwargs: dict) -> None:
    """Every BN folds and every activation/residual fuses on the paper's CNNs."""
    model = build(name, **kwargs)
    module = run_passes(import_onnx(model), PIPELINE)
    left = set(graph_ops(module))
    assert not left & {"graph.batch_norm", "graph.relu", "graph.clip", "graph.add"}, left
    [x] = random_inputs(module)

    def run(m: onnx.ModelProto) -> np.ndarray:
        return onnxruntime_reference(m.SerializeToString(), [x])[0]

    np.testing.assert_allclose(run(to_onnx(module)), run(model), rtol=RTOL, atol=ATOL)
