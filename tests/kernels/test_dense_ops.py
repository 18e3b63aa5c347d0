"""Dense kernels (gemm/matmul, element-wise, pools, normalization, shape ops,
activations) against onnxruntime.

Every case is a small ONNX model built in code, taken through the whole flow
(frontend -> graph passes -> codegen -> clang -> host .so via ctypes) and
compared with onnxruntime at rtol 1e-4, atol 1e-5. Shapes are deliberately
not multiples of any vector width (masked tails), broadcasting covers scalar,
per-channel, per-row and two-sided cases.

Threading: with 2 threads the size thresholds below which a kernel stays
single-threaded are patched to zero (`force_threads`), so the small shapes
here really run their static task split, including tasks with empty ranges.

Targets: host (AVX2) and host-avx512 run natively; generic (scalar C) runs
natively too; aarch64 is compile-checked for every case with -Wall -Wextra
-Werror and a few cases run under qemu through the executable harness.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from grimc.artifacts import onnxruntime_reference
from grimc.emit import kernels as kernel_modules  # noqa: F401  (registers lowerings)
from grimc.emit.codegen import GeneratedModel
from grimc.emit.kernels import gemm
from grimc.frontend import import_onnx
from grimc.pipeline import GRAPH_PIPELINE, PipelineRunner
from grimc.runner import HostModel, write_sources
from grimc.target import resolve_target
from grimc.transforms import schedule_select
from tests.conftest import require
from tests.kernels.scheduled import generate
from tests.tiers import every, examples, spread

RTOL, ATOL = 1e-4, 1e-5
HAVE_CLANG = shutil.which("clang-19") is not None or shutil.which("clang") is not None


@pytest.fixture(autouse=True)
def _clang() -> None:
    require(HAVE_CLANG, "clang", "clang-19")


# --------------------------------------------------------------------------
# model construction


@dataclass
class Case:
    """One ONNX graph plus seeded inputs."""

    nodes: list[onnx.NodeProto]
    inputs: list[tuple[str, tuple[int, ...]]]
    inits: list[tuple[str, np.ndarray]] = field(default_factory=list)
    outputs: tuple[str, ...] = ("y",)
    opset: int = 17
    # onnxruntime, or a numpy function of the feeds where onnxruntime refuses the model
    reference: Callable[[dict[str, np.ndarray]], list[np.ndarray]] | None = None
    scale: float = 1.0  # input magnitude

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in self.inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in self.outputs],
            initializer=[numpy_helper.from_array(a.astype(np.float32), n) for n, a in self.inits],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])

    def feeds(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {n: (self.scale * rng.standard_normal(s)).astype(np.float32) for n, s in self.inputs}


def rand(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed + 7 * len(shape) + sum(shape)).standard_normal(shape)


def lrn_reference(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """ONNX LRN by its spec, in float64. onnxruntime only accepts odd sizes and
    onnx.reference's LRN loops over the batch axis instead of the channels."""
    x64 = x.astype(np.float64)
    channels = x.shape[1]
    before, after = (size - 1) // 2, math.ceil((size - 1) / 2)
    square_sum = np.stack(
        [
            (x64[:, max(0, c - before) : min(channels, c + after + 1)] ** 2).sum(axis=1)
            for c in range(channels)
        ],
        axis=1,
    )
    return (x64 / (bias + alpha / size * square_sum) ** beta).astype(np.float32)


def node(op: str, ins: list[str], out: str = "y", **attrs) -> onnx.NodeProto:
    return helper.make_node(op, ins, [out], **attrs)


# --------------------------------------------------------------------------
# the flow under test


def compile_model(model: onnx.ModelProto, target: str, threads: int) -> GeneratedModel:
    module = import_onnx(model)
    PipelineRunner().run(module, list(GRAPH_PIPELINE))
    return generate(module, resolve_target(target), threads=threads)


def reference(case: Case, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    if case.reference is not None:
        return case.reference(feeds)
    model = case.model()
    return onnxruntime_reference(model.SerializeToString(), [feeds[i.name] for i in model.graph.input])


def run_host(
    gen: GeneratedModel, feeds: dict[str, np.ndarray], target: str, threads: int, workdir: Path
) -> list[np.ndarray]:
    with HostModel.build(gen, workdir, threads=threads, target=target) as model:
        return model.run(list(feeds.values()))


def check_on_host(case: Case, target: str, threads: int, workdir: Path) -> None:
    """Compile `case` for a host target, run it there, compare with the reference."""
    feeds = case.feeds()
    gen = compile_model(case.model(), target, threads)
    assert_matches(run_host(gen, feeds, target, threads, workdir), reference(case, feeds))


def assert_matches(got: list[np.ndarray], want: list[np.ndarray], rtol=RTOL, atol=ATOL) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def force_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every kernel split its work, however small."""
    monkeypatch.setattr(schedule_select, "GEMM_MIN_PARALLEL_FLOPS", 0)
    monkeypatch.setattr(schedule_select, "SWEEP_MIN_PARALLEL_ELEMS", 0)
    monkeypatch.setattr(schedule_select, "MIN_TASK_ELEMS", 0)
    monkeypatch.setattr(schedule_select, "PLANE_MIN_PARALLEL_ELEMS", 0)


# --------------------------------------------------------------------------
# cases

GEMM_B = rand(19, 13)
CASES: dict[str, Callable[[], Case]] = {
    # --- gemm ---
    "gemm_transb_bias_alpha_beta_relu": lambda: Case(
        [node("Gemm", ["x", "w", "c"], "t", transB=1, alpha=0.5, beta=2.0), node("Relu", ["t"])],
        [("x", (7, 13))],
        [("w", GEMM_B), ("c", rand(19))],
    ),
    "gemm_transa_row_bias": lambda: Case(
        [node("Gemm", ["x", "w", "c"], transA=1)],
        [("x", (13, 7))],
        [("w", rand(13, 19)), ("c", rand(7, 1))],
    ),
    "gemm_full_bias_beta": lambda: Case(
        [node("Gemm", ["x", "w", "c"], beta=0.5)],
        [("x", (20, 13))],
        [("w", rand(13, 21)), ("c", rand(20, 21))],
    ),
    "gemm_scalar_bias": lambda: Case(
        [node("Gemm", ["x", "w", "c"])], [("x", (3, 5))], [("w", rand(5, 4)), ("c", rand(1))]
    ),
    "gemm_runtime_bias": lambda: Case(
        [node("Gemm", ["x", "w", "c"], beta=2.0)],
        [("x", (9, 13)), ("c", (1, 17))],
        [("w", rand(13, 17))],
    ),
    "gemm_residual_relu": lambda: Case(
        [node("Gemm", ["x", "w", "c"], "t"), node("Add", ["t", "r"], "u"), node("Relu", ["u"])],
        [("r", (5, 19)), ("x", (5, 13))],
        [("w", rand(13, 19)), ("c", rand(19))],
    ),
    "gemm_sigmoid_epilogue": lambda: Case(
        [node("Gemm", ["x", "w"], "t", transB=1), node("Sigmoid", ["t"])],
        [("x", (8, 13))],
        [("w", GEMM_B)],
    ),
    "gemm_runtime_b": lambda: Case(
        [node("Gemm", ["x", "b"], alpha=0.75)], [("x", (11, 21)), ("b", (21, 35))]
    ),
    "gemm_runtime_b_trans": lambda: Case(
        [node("Gemm", ["x", "b", "c"], transA=1, transB=1)],
        [("x", (300, 9)), ("b", (35, 300))],
        [("c", rand(35))],
    ),
    "gemv": lambda: Case(
        [node("Gemm", ["x", "w", "c"], transB=1)],
        [("x", (1, 300))],
        [("w", rand(77, 300) / math.sqrt(300)), ("c", rand(77))],
    ),
    "gemv_clip": lambda: Case(
        [node("Gemm", ["x", "w"], "t"), node("Clip", ["t", "lo", "hi"])],
        [("x", (1, 40))],
        [("w", rand(40, 130) / math.sqrt(40)), ("lo", np.float32(-0.5)), ("hi", np.float32(0.5))],
    ),
    "gemm_long_k": lambda: Case(
        [node("Gemm", ["x", "w"])], [("x", (13, 600))], [("w", rand(600, 50) / math.sqrt(600))]
    ),
    "gemm_const_a_runtime_b": lambda: Case(
        [node("Gemm", ["w", "x"], transB=1)], [("x", (5, 13))], [("w", rand(7, 13))]
    ),
    "gemm_beta_zero_ignores_c": lambda: Case(
        [node("Gemm", ["x", "w", "c"], beta=0.0)],
        [("x", (3, 4))],
        [("w", rand(4, 5)), ("c", rand(5))],
    ),
    # --- matmul ---
    "matmul_2d_const": lambda: Case(
        [node("MatMul", ["x", "w"])], [("x", (6, 10))], [("w", rand(10, 9))]
    ),
    "matmul_batched_a_folds": lambda: Case(
        [node("MatMul", ["x", "w"])], [("x", (2, 3, 5, 7))], [("w", rand(7, 11))]
    ),
    "matmul_broadcast_batches": lambda: Case(
        [node("MatMul", ["a", "b"])], [("a", (2, 1, 5, 7)), ("b", (3, 7, 4))]
    ),
    "matmul_batched_const_b": lambda: Case(
        [node("MatMul", ["x", "w"], "t"), node("Relu", ["t"])],
        [("x", (2, 3, 5, 7))],
        [("w", rand(3, 7, 18))],
    ),
    "matmul_vec_mat": lambda: Case([node("MatMul", ["a", "b"])], [("a", (7,)), ("b", (2, 7, 5))]),
    "matmul_mat_vec": lambda: Case([node("MatMul", ["x", "w"])], [("x", (5, 7))], [("w", rand(7))]),
    # --- element-wise ---
    "add_same_shape_relu": lambda: Case(
        [node("Add", ["a", "b"], "t"), node("Relu", ["t"])],
        [("a", (2, 3, 5, 7)), ("b", (2, 3, 5, 7))],
    ),
    "add_per_channel": lambda: Case(
        [node("Add", ["x", "c"])], [("x", (2, 5, 3, 7))], [("c", rand(1, 5, 1, 1))]
    ),
    "add_two_sided": lambda: Case([node("Add", ["a", "b"])], [("a", (4, 1)), ("b", (1, 5))]),
    "add_scalar_const": lambda: Case([node("Add", ["x", "c"])], [("x", (3, 11))], [("c", rand(1))]),
    "mul_last_axis": lambda: Case([node("Mul", ["a", "b"])], [("a", (3, 5, 7)), ("b", (7,))]),
    "mul_rows_sigmoid": lambda: Case(
        [node("Mul", ["a", "b"], "t"), node("Sigmoid", ["t"])],
        [("a", (2, 3, 5, 7)), ("b", (2, 3, 5, 1))],
    ),
    "mul_large_flat": lambda: Case(
        [node("Mul", ["a", "b"])], [("a", (1, 3, 41, 43)), ("b", (1, 3, 41, 43))]
    ),
    "sum_three_broadcast": lambda: Case(
        [node("Sum", ["a", "b", "c"])], [("a", (2, 3, 4)), ("b", (3, 1)), ("c", (4,))]
    ),
    "prelu_channel_slope": lambda: Case(
        [node("PRelu", ["x", "s"])], [("x", (2, 3, 4, 5))], [("s", rand(3, 1, 1))]
    ),
    "prelu_runtime_slope": lambda: Case(
        [node("PRelu", ["x", "s"])], [("x", (3, 37)), ("s", (3, 37))]
    ),
    # --- normalization ---
    "batch_norm": lambda: Case(
        [node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
        [("x", (2, 3, 5, 7))],
        [("s", rand(3)), ("b", rand(3)), ("m", rand(3)), ("v", np.abs(rand(3)) + 0.1)],
    ),
    "batch_norm_2d": lambda: Case(
        [node("BatchNormalization", ["x", "s", "b", "m", "v"])],
        [("x", (4, 9))],
        [("s", rand(9)), ("b", rand(9)), ("m", rand(9)), ("v", np.abs(rand(9)) + 0.1)],
    ),
    "lrn": lambda: Case(
        [node("LRN", ["x"], size=5, alpha=1e-2, beta=0.75, bias=2.0)], [("x", (2, 7, 5, 3))]
    ),
    "lrn_even_size": lambda: Case(
        [node("LRN", ["x"], size=4, alpha=2e-2, beta=0.5, bias=1.0)],
        [("x", (1, 6, 3, 5))],
        reference=lambda f: [lrn_reference(f["x"], 4, 2e-2, 0.5, 1.0)],
    ),
    "softmax_rows": lambda: Case(
        [node("Softmax", ["x"], axis=1)], [("x", (3, 1001))], opset=13, scale=5.0
    ),
    "softmax_inner": lambda: Case(
        [node("Softmax", ["x"], axis=1)], [("x", (2, 5, 70))], opset=13, scale=5.0
    ),
    "softmax_axis0": lambda: Case(
        [node("Softmax", ["x"], axis=0)], [("x", (3, 4))], opset=13, scale=5.0
    ),
    # --- pools ---
    "max_pool_2x2": lambda: Case(
        [node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])], [("x", (2, 3, 11, 13))]
    ),
    "max_pool_3x3_pad": lambda: Case(
        [node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        [("x", (1, 4, 12, 9))],
    ),
    "max_pool_ceil": lambda: Case(
        [
            node(
                "MaxPool",
                ["x"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 0, 0, 1],
                ceil_mode=1,
            )
        ],
        [("x", (2, 3, 11, 13))],
    ),
    "max_pool_dilated": lambda: Case(
        [
            node(
                "MaxPool",
                ["x"],
                kernel_shape=[3, 2],
                strides=[1, 2],
                pads=[1, 1, 1, 0],
                dilations=[2, 1],
            )
        ],
        [("x", (2, 3, 11, 13))],
        opset=12,
    ),
    "max_pool_1d": lambda: Case(
        [node("MaxPool", ["x"], kernel_shape=[3], strides=[2], pads=[1, 1], ceil_mode=1)],
        [("x", (2, 3, 20))],
    ),
    **{
        f"avg_pool_{name}_cip{cip}": (
            lambda kw=kw, cip=cip: Case(
                [node("AveragePool", ["x"], count_include_pad=cip, **kw)], [("x", (2, 3, 11, 13))]
            )
        )
        for name, kw in {
            "3x3_pad": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
            "ceil": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1], ceil_mode=1),
            "ceil_nopad": dict(kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1),
            "asym_s1": dict(kernel_shape=[2, 4], strides=[1, 1], pads=[0, 2, 1, 1]),
        }.items()
        for cip in (0, 1)
    },
    **{
        f"avg_pool_dilated_{name}_cip{cip}": (
            lambda kw=kw, cip=cip: Case(
                [node("AveragePool", ["x"], count_include_pad=cip, **kw)],
                [("x", (2, 3, 11, 13))],
                opset=19,
            )
        )
        for name, kw in {
            "pad": dict(kernel_shape=[3, 2], strides=[1, 2], pads=[2, 1, 1, 1], dilations=[2, 3]),
            "ceil": dict(kernel_shape=[2, 3], strides=[2, 3], pads=[1, 0, 0, 2], dilations=[3, 2],
                         ceil_mode=1),
        }.items()
        for cip in (0, 1)
    },  # fmt: skip
    "avg_pool_1d": lambda: Case(
        [node("AveragePool", ["x"], kernel_shape=[4], strides=[3], pads=[2, 1], ceil_mode=1)],
        [("x", (2, 3, 20))],
    ),
    "global_avg_pool": lambda: Case([node("GlobalAveragePool", ["x"])], [("x", (2, 3, 7, 9))]),
    # --- shape ops ---
    "concat_axis1_const": lambda: Case(
        [node("Concat", ["a", "b", "c"], axis=1)],
        [("a", (2, 3, 4)), ("b", (2, 1, 4))],
        [("c", rand(2, 2, 4))],
    ),
    "concat_axis0": lambda: Case(
        [node("Concat", ["a", "b"], axis=0)], [("a", (2, 5)), ("b", (3, 5))]
    ),
    "concat_last": lambda: Case(
        [node("Concat", ["a", "b"], axis=-1)], [("a", (2, 3, 5)), ("b", (2, 3, 2))]
    ),
    "transpose_nchw_nhwc": lambda: Case(
        [node("Transpose", ["x"], perm=[0, 2, 3, 1])], [("x", (2, 3, 5, 7))]
    ),
    "transpose_2d": lambda: Case([node("Transpose", ["x"], perm=[1, 0])], [("x", (37, 19))]),
    # whole 16x16 tiles (register transposes) beside partial ones, per batch row
    "transpose_tiles": lambda: Case(
        [node("Transpose", ["x"], perm=[0, 2, 1])], [("x", (2, 40, 48))]
    ),
    "transpose_reverse": lambda: Case(
        [node("Transpose", ["x"], perm=[2, 1, 0])], [("x", (3, 4, 5))]
    ),
    "transpose_keep_last": lambda: Case(
        [node("Transpose", ["x"], perm=[1, 0, 2])], [("x", (3, 4, 5))]
    ),
    "transpose_units": lambda: Case(
        [node("Transpose", ["x"], perm=[0, 3, 1, 2])], [("x", (1, 20, 1, 33))]
    ),
    "flatten_relu": lambda: Case(
        [node("Flatten", ["x"], "t", axis=1), node("Relu", ["t"])], [("x", (2, 3, 4))]
    ),
    # --- standalone activations ---
    "relu": lambda: Case([node("Relu", ["x"])], [("x", (3, 37))]),
    "clip": lambda: Case(
        [node("Clip", ["x", "lo", "hi"])],
        [("x", (5, 29))],
        [("lo", np.float32(-0.5)), ("hi", np.float32(1.5))],
    ),
    "leaky_relu": lambda: Case([node("LeakyRelu", ["x"], alpha=0.2)], [("x", (7, 11))]),
    "sigmoid": lambda: Case([node("Sigmoid", ["x"])], [("x", (3, 37))], scale=4.0),
    "tanh": lambda: Case([node("Tanh", ["x"])], [("x", (3,))], scale=2.0),
    "hard_sigmoid": lambda: Case(
        [node("HardSigmoid", ["x"], alpha=0.3, beta=0.4)], [("x", (5, 7))], scale=3.0
    ),
    "hard_swish": lambda: Case([node("HardSwish", ["x"])], [("x", (5, 7))], scale=4.0),
}

HOST_CONFIGS = [("host", 1), ("host", 2), ("host-avx512", 2), ("generic", 2)]


@pytest.mark.parametrize(
    "name,target,threads", spread(sorted(CASES), HOST_CONFIGS, lambda c, t, n: f"{c}-{t}-t{n}")
)
def test_matches_onnxruntime(
    name: str, target: str, threads: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if threads > 1:
        force_threads(monkeypatch)
    check_on_host(CASES[name](), target, threads, tmp_path)


@pytest.mark.parametrize("name", every(sorted(CASES), 3))
def test_compiles_for_aarch64(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NEON code (threaded paths included) is warning-free under -Wall -Wextra -Werror."""
    from grimc.toolchain import ToolchainError, compile_object

    force_threads(monkeypatch)
    gen = compile_model(CASES[name]().model(), "aarch64", threads=2)
    c_path, _, _ = write_sources(gen, tmp_path)
    try:
        obj = compile_object(c_path, tmp_path / "model.o", "aarch64")
    except ToolchainError as err:
        raise AssertionError(f"{err}\n{err.details}") from err
    assert obj.stat().st_size > 0


QEMU_CASES = [
    "gemm_transb_bias_alpha_beta_relu",
    "gemm_runtime_b_trans",
    "gemv",
    "matmul_broadcast_batches",
    "add_per_channel",
    "mul_rows_sigmoid",
    "avg_pool_ceil_cip1",
    "avg_pool_dilated_ceil_cip1",
    "max_pool_dilated",
    "softmax_inner",
    "lrn",
    "transpose_nchw_nhwc",
]


@pytest.mark.parametrize("name", QEMU_CASES)
def test_aarch64_under_qemu(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NEON kernels give the same numbers, run through the executable harness under qemu."""
    from grimc import runner

    force_threads(monkeypatch)
    case = CASES[name]()
    feeds = case.feeds()
    gen = compile_model(case.model(), "aarch64", threads=2)
    model = runner.ExeModel.build(gen, tmp_path, target="aarch64", threads=2)
    assert_matches(model.run(list(feeds.values())), reference(case, feeds))


# --------------------------------------------------------------------------
# gemm shapes by hypothesis


@st.composite
def gemm_problems(draw: st.DrawFn) -> dict:
    return dict(
        m=draw(st.integers(1, 20)),
        k=draw(st.integers(1, 40)),
        n=draw(st.integers(1, 40)),
        trans_a=draw(st.booleans()),
        trans_b=draw(st.booleans()),
        bias=draw(st.sampled_from(["none", "scalar", "row", "col", "full"])),
        const_b=draw(st.booleans()),
        act=draw(st.sampled_from([None, "Relu", "Tanh"])),
        target=draw(st.sampled_from(["host", "host-avx512"])),
        threads=draw(st.sampled_from([1, 2])),
    )


def gemm_case(p: dict) -> Case:
    m, k, n = p["m"], p["k"], p["n"]
    a_shape = (k, m) if p["trans_a"] else (m, k)
    b = rand(n, k) if p["trans_b"] else rand(k, n)
    bias_shape = {"scalar": (1,), "row": (n,), "col": (m, 1), "full": (m, n)}.get(p["bias"])
    ins = ["a", "b"] + (["c"] if bias_shape else [])
    inputs = [("a", a_shape)] + ([] if p["const_b"] else [("b", b.shape)])
    inits = ([("b", b)] if p["const_b"] else []) + (
        [("c", rand(*bias_shape))] if bias_shape else []
    )
    attrs = dict(transA=int(p["trans_a"]), transB=int(p["trans_b"]), alpha=0.5, beta=1.5)
    nodes = [node("Gemm", ins, "t" if p["act"] else "y", **attrs)]
    if p["act"]:
        nodes.append(node(p["act"], ["t"]))
    return Case(nodes, inputs, inits)


@examples(fast=6, full=15)
def test_gemm_shapes(examples: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    @settings(max_examples=examples, deadline=None)
    @given(problem=gemm_problems())
    def check(problem: dict) -> None:
        case = gemm_case(problem)
        feeds = case.feeds()
        gen = compile_model(case.model(), problem["target"], problem["threads"])
        workdir = tmp_path_factory.mktemp("gemm")
        got = run_host(gen, feeds, problem["target"], problem["threads"], workdir)
        assert_matches(got, reference(case, feeds))

    check()


# --------------------------------------------------------------------------
# properties of the generated code


def test_reshape_and_flatten_emit_no_code() -> None:
    case = Case(
        [
            node("Flatten", ["x"], "f", axis=2),
            node("Reshape", ["f", "shape"], "r"),
            node("Relu", ["r"]),
        ],
        [("x", (2, 3, 4, 5))],
        [("shape", np.array([6, 20]))],
    )
    model = case.model()
    model.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.array([6, 20], np.int64), "shape")
    )
    gen = compile_model(model, "host", 1)
    assert [k.kind for k in gen.kernels] == ["activation"]


def test_gemv_streams_packed_weights_once() -> None:
    """M = 1 picks the GEMV tile (one row, K unrolled) and the weight blob is the
    packed B alone: K x N rounded up to whole panels, read once in order."""
    k, n = 300, 77
    case = CASES["gemv"]()
    gen = compile_model(case.model(), "host", 2)
    (kern,) = gen.kernels
    p = kern.params
    assert (p["mr"], p["ku"], p["kc"], p["split"]) == (1, 2, k, "n")
    nr = p["nv"] * 8
    assert p["np"] == math.ceil(n / nr)
    packed_bytes = k * p["np"] * nr * 4
    assert packed_bytes <= len(gen.blob) < packed_bytes + 4096  # + bias, header, padding


def test_generated_code_is_deterministic() -> None:
    case = CASES["matmul_batched_const_b"]()
    first = compile_model(case.model(), "host-avx512", 2)
    second = compile_model(case.model(), "host-avx512", 2)
    assert first.source == second.source
    assert first.blob == second.blob


def test_gemm_packs_constant_b_into_panels() -> None:
    b = np.arange(3 * 5, dtype=np.float32).reshape(3, 5)
    packed = gemm.pack_panels(b, nr=4, alpha=2.0)
    assert packed.shape == (2, 3, 4)
    np.testing.assert_array_equal(packed[0], 2 * b[:, :4])
    np.testing.assert_array_equal(packed[1][:, 0], 2 * b[:, 4])
    assert not packed[1][:, 1:].any()
