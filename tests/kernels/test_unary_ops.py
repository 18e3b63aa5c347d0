"""Element-wise math ops (Exp, Log, Sqrt, Neg, Abs, Reciprocal, Erf, Gelu, Pow,
Sub, Div, Max, Min) and the vector transcendental activations (Sigmoid, Tanh,
SiLU, Softmax) against onnxruntime, through the whole flow, on host (AVX2),
host-avx512, generic C and aarch64 (compiled; a few run under qemu).

Inputs cover the saturating ranges (scale 30: sigmoid/tanh/erf at +-1, exp
near its overflow) and sizes that are not multiples of any vector width.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from grimc.frontend import import_onnx
from grimc.pipeline import GRAPH_PIPELINE, PipelineRunner
from tests.kernels.test_dense_ops import (
    Case,
    assert_matches,
    check_on_host,
    compile_model,
    force_threads,
    node,
    rand,
    reference,
)
from tests.tiers import spread


def positive(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.abs(v) + np.float32(1e-3) for k, v in feeds.items()}


class PosCase(Case):
    """A case whose inputs are strictly positive (Log, Sqrt, Pow with a real base)."""

    def feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        return positive(super().feeds(seed))


class BoolInitCase(Case):
    """A case whose bool initializers stay bool (Case casts initializers to float32)."""

    def model(self) -> onnx.ModelProto:
        model = super().model()
        for i, init in enumerate(model.graph.initializer):
            array = dict(self.inits)[init.name]
            if array.dtype == np.bool_:
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, init.name))
        return model


def silu_conv(extra_use: bool) -> Case:
    """Conv -> x * Sigmoid(x) as exporters write SiLU; optionally x has a third user."""
    nodes = [
        node("Conv", ["x", "w", "b"], "c", pads=[1, 1, 1, 1]),
        node("Sigmoid", ["c"], "s"),
        node("Mul", ["c", "s"], "y"),
    ]
    outputs: tuple[str, ...] = ("y",)
    if extra_use:
        nodes.append(node("Relu", ["c"], "r"))
        outputs = ("y", "r")
    return Case(
        nodes, [("x", (1, 3, 9, 11))], [("w", rand(5, 3, 3, 3)), ("b", rand(5))], outputs=outputs,
        scale=3.0,
    )  # fmt: skip


CASES: dict[str, Callable[[], Case]] = {
    "exp": lambda: Case([node("Exp", ["x"])], [("x", (3, 37))], scale=30.0),
    "log": lambda: PosCase([node("Log", ["x"])], [("x", (5, 29))], scale=100.0),
    "sqrt": lambda: PosCase([node("Sqrt", ["x"])], [("x", (5, 29))], scale=10.0),
    "neg_abs": lambda: Case(
        [node("Neg", ["x"], "n"), node("Abs", ["n"])], [("x", (4, 19))]
    ),
    "reciprocal": lambda: PosCase([node("Reciprocal", ["x"])], [("x", (3, 21))]),
    "erf": lambda: Case([node("Erf", ["x"])], [("x", (3, 37))], scale=3.0),
    "gelu": lambda: Case([node("Gelu", ["x"])], [("x", (3, 37))], opset=20, scale=4.0),
    "gelu_tanh": lambda: Case(
        [node("Gelu", ["x"], approximate="tanh")], [("x", (3, 37))], opset=20, scale=4.0
    ),
    "sigmoid_tails": lambda: Case([node("Sigmoid", ["x"])], [("x", (7, 41))], scale=30.0),
    "tanh_tails": lambda: Case([node("Tanh", ["x"])], [("x", (7, 41))], scale=10.0),
    "softmax_rows_wide": lambda: Case(
        [node("Softmax", ["x"], axis=-1)], [("x", (3, 77))], opset=13, scale=20.0
    ),
    "softmax_inner_tiles": lambda: Case(
        [node("Softmax", ["x"], axis=1)], [("x", (2, 6, 83))], opset=13, scale=10.0
    ),
    "matmul_gelu_epilogue": lambda: Case(
        [node("MatMul", ["x", "w"], "t"), node("Gelu", ["t"])],
        [("x", (5, 13))],
        [("w", rand(13, 19))],
        opset=20,
    ),
    "gemm_exp_epilogue": lambda: Case(
        [node("Gemm", ["x", "w"], "t"), node("Exp", ["t"])], [("x", (5, 13))], [("w", rand(13, 7))]
    ),
    "silu_conv": lambda: silu_conv(False),
    "silu_conv_third_user": lambda: silu_conv(True),
    "pow_runtime": lambda: PosCase(
        [node("Pow", ["x", "e"])], [("x", (3, 17)), ("e", (17,))], scale=2.0
    ),
    "pow_const_scalar": lambda: PosCase(
        [node("Pow", ["x", "e"])], [("x", (3, 17))], [("e", np.array(1.7))], scale=2.0
    ),
    "pow_square_sqrt": lambda: Case(
        [node("Pow", ["x", "two"], "s"), node("Pow", ["s", "half"])],
        [("x", (3, 17))],
        [("two", np.array(2.0)), ("half", np.array(0.5))],
    ),
    "pow_negative_base_integral": lambda: Case(
        [node("Pow", ["x", "e"])], [("x", (2, 9))], [("e", np.array([3.0, 2.0, -1.0] * 3))],
    ),
    "sub_runtime_bcast": lambda: Case(
        [node("Sub", ["a", "b"])], [("a", (2, 3, 5)), ("b", (3, 1))]
    ),
    "sub_const_lhs": lambda: Case([node("Sub", ["c", "x"])], [("x", (4, 6))], [("c", rand(6))]),
    "div_runtime": lambda: PosCase([node("Div", ["a", "b"])], [("a", (3, 7)), ("b", (3, 7))]),
    "div_const_with_zero_denominator_stays_div": lambda: Case(
        [node("Div", ["c", "x"])], [("x", (2, 3))], [("c", np.array([0.0, 1.0, 2.0]))], scale=2.0
    ),
    "max_variadic_bcast": lambda: Case(
        [node("Max", ["a", "b", "c"])], [("a", (2, 3, 5)), ("b", (3, 1)), ("c", (5,))]
    ),
    "min_two": lambda: Case([node("Min", ["a", "b"])], [("a", (4, 9)), ("b", (4, 9))]),
    # --- booleans (float 0/1 inside the graph) and Where ---
    "where_less": lambda: Case(
        [node("Less", ["a", "b"], "m"), node("Where", ["m", "a", "b"])],
        [("a", (3, 17)), ("b", (17,))],
    ),
    "where_greater_equal_scalar": lambda: Case(
        [node("GreaterOrEqual", ["a", "z"], "m"), node("Where", ["m", "a", "z2"])],
        [("a", (2, 3, 11))],
        [("z", np.array(0.25)), ("z2", np.array([-1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.0, 0.5]))],
    ),
    "where_not_and_or": lambda: Case(
        [
            node("Greater", ["a", "b"], "g"),
            node("LessOrEqual", ["a", "c"], "l"),
            node("And", ["g", "l"], "gl"),
            node("Equal", ["a", "b"], "e"),
            node("Or", ["gl", "e"], "o"),
            node("Not", ["o"], "n"),
            node("Where", ["n", "a", "c"]),
        ],
        [("a", (4, 13)), ("b", (4, 13)), ("c", (13,))],
    ),
    "where_const_bool_condition": lambda: BoolInitCase(
        [node("Where", ["m", "a", "b"])],
        [("a", (3, 5)), ("b", (3, 5))],
        [("m", np.array([True, False, True, True, False]))],
    ),
}

HOST_CONFIGS = [("host", 1), ("host-avx512", 2), ("generic", 1)]


@pytest.mark.parametrize(
    "name,target,threads", spread(sorted(CASES), HOST_CONFIGS, lambda c, t, n: f"{c}-{t}-t{n}")
)
def test_matches_onnxruntime(
    name: str, target: str, threads: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if threads > 1:
        force_threads(monkeypatch)
    check_on_host(CASES[name](), target, threads, tmp_path)


QEMU_CASES = [
    "exp", "log", "gelu", "silu_conv", "pow_negative_base_integral", "max_variadic_bcast",
    "where_not_and_or",
]  # fmt: skip


@pytest.mark.parametrize("name", QEMU_CASES)
def test_aarch64_under_qemu(name: str, tmp_path: Path) -> None:
    """NEON builds of the vector math give the same numbers (executable harness, qemu)."""
    from grimc.runner import ExeModel

    case = CASES[name]()
    feeds = case.feeds()
    gen = compile_model(case.model(), "aarch64", 1)
    model = ExeModel.build(gen, tmp_path, target="aarch64", threads=1)
    assert_matches(model.run(list(feeds.values())), reference(case, feeds))


def _ops_after_pipeline(case: Case) -> list[str]:
    module = import_onnx(case.model())
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    return [op.name for op in module.walk() if op.name.startswith("graph.")]


def test_silu_fuses_into_the_conv() -> None:
    """x * sigmoid(x) becomes the conv's epilogue although x has two users."""
    assert _ops_after_pipeline(silu_conv(False)) == ["graph.weight", "graph.weight", "graph.conv"]
    module = import_onnx(silu_conv(False).model())
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    conv = next(op for op in module.walk() if op.name == "graph.conv")
    assert conv.act.kind.data == "silu"


def test_silu_with_a_third_user_stays_one_vector_op() -> None:
    """With another user of the conv output, SiLU is one standalone silu op, not two sweeps."""
    ops = _ops_after_pipeline(silu_conv(True))
    assert ops.count("graph.silu") == 1 and "graph.sigmoid" not in ops and "graph.mul" not in ops


def test_erf_models_are_built_with_opset_20_gelu() -> None:
    """The Gelu cases really are opset-20 models (a guard on the test data)."""
    assert CASES["gelu"]().model().opset_import[0].version == 20
    assert helper.get_attribute_value(CASES["gelu_tanh"]().nodes[0].attribute[0]) == b"tanh"


def test_boolean_graph_output_is_refused() -> None:
    from grimc.frontend import FrontendError

    case = Case([node("Less", ["a", "b"])], [("a", (2, 3)), ("b", (2, 3))])
    with pytest.raises(FrontendError, match=r"\(Less\): a boolean graph output is not supported"):
        import_onnx(case.model())
