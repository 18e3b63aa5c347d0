"""Slice, Split, Pad, Expand, Resize (nearest/linear), DepthToSpace and the
reductions (ReduceMax/Min/Sum/Mean, GlobalMaxPool) and LayerNormalization against
onnxruntime, through the whole flow, on host (AVX2), host-avx512 and generic C
(a few under qemu on aarch64). Index inputs are initializers (grimc needs them
at compile time); shapes are odd so no row is a multiple of a vector width.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from grimc.frontend import FrontendError, import_onnx
from tests.kernels.test_dense_ops import (
    Case,
    assert_matches,
    check_on_host,
    compile_model,
    node,
    reference,
    run_host,
)
from tests.tiers import spread


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


class IntInitCase(Case):
    """Initializers keep their integer dtype (Case casts them to float32)."""

    def model(self):
        from onnx import numpy_helper

        model = super().model()
        arrays = dict(self.inits)
        for init in model.graph.initializer:
            if arrays[init.name].dtype != np.float64:
                init.CopyFrom(numpy_helper.from_array(arrays[init.name], init.name))
        return model


def resize(mode: str, coords: str, *, scales=None, sizes=None, nearest="round_prefer_floor",
           shape=(1, 2, 5, 7)) -> Case:  # fmt: skip
    inits = [("roi", np.zeros(0, np.float32)), ("scales", np.array(scales or [], np.float32))]
    ins = ["x", "roi", "scales"]
    if sizes is not None:
        inits.append(("sizes", i64(*sizes)))
        ins.append("sizes")
    attrs = {"mode": mode, "coordinate_transformation_mode": coords, "nearest_mode": nearest}
    return IntInitCase([node("Resize", ins, **attrs)], [("x", shape)], inits, opset=13)


CASES: dict[str, Callable[[], Case]] = {
    "slice_steps_negative": lambda: IntInitCase(
        [node("Slice", ["x", "s", "e", "a", "st"])],
        [("x", (3, 10, 11))],
        [("s", i64(-1, 1)), ("e", i64(-12, 100)), ("a", i64(2, 1)), ("st", i64(-2, 3))],
    ),
    "slice_last_axis_contiguous": lambda: IntInitCase(
        [node("Slice", ["x", "s", "e"])], [("x", (4, 19))], [("s", i64(1, 2)), ("e", i64(3, 17))]
    ),
    "split_uneven_then_add": lambda: IntInitCase(
        [
            helper_node("Split", ["x", "sp"], ["a", "b", "c"], axis=1),
            node("Concat", ["c", "a", "b"], axis=1),
        ],
        [("x", (2, 9, 5))],
        [("sp", i64(2, 3, 4))],
    ),
    "split_equal_last": lambda: Case(
        [helper_node("Split", ["x"], ["a", "b"], axis=-1), node("Mul", ["a", "b"])],
        [("x", (3, 4, 10))],
    ),
    "pad_constant": lambda: IntInitCase(
        [node("Pad", ["x", "p", "v"], mode="constant")],
        [("x", (1, 3, 4, 5))],
        [("p", i64(0, 0, 1, 2, 0, 1, 3, 0)), ("v", np.array(1.5, np.float32))],
    ),
    "pad_reflect": lambda: IntInitCase(
        [node("Pad", ["x", "p"], mode="reflect")],
        [("x", (1, 2, 5, 6))],
        [("p", i64(0, 0, 2, 3, 0, 0, 4, 5))],
    ),
    "pad_edge": lambda: IntInitCase(
        [node("Pad", ["x", "p"], mode="edge")], [("x", (2, 3, 4))], [("p", i64(1, 0, 2, 0, 3, 1))]
    ),
    "expand_rank_up": lambda: IntInitCase(
        [node("Expand", ["x", "s"])], [("x", (3, 1))], [("s", i64(2, 3, 5))]
    ),
    "depth_to_space_dcr": lambda: Case(
        [node("DepthToSpace", ["x"], blocksize=2)], [("x", (1, 8, 3, 5))]
    ),
    "depth_to_space_crd": lambda: Case(
        [node("DepthToSpace", ["x"], blocksize=2, mode="CRD")], [("x", (2, 12, 2, 3))]
    ),
    "resize_nearest_x2_asymmetric_floor": lambda: resize(
        "nearest", "asymmetric", scales=[1, 1, 2, 2], nearest="floor"
    ),
    "resize_nearest_frac_half_pixel": lambda: resize("nearest", "half_pixel", scales=[1, 1, 1.7, 0.6]),
    "resize_nearest_sizes_ceil": lambda: resize(
        "nearest", "align_corners", sizes=[1, 2, 9, 4], nearest="ceil"
    ),
    "resize_linear_x2_half_pixel": lambda: resize("linear", "half_pixel", scales=[1, 1, 2, 2]),
    "resize_linear_frac_align_corners": lambda: resize(
        "linear", "align_corners", scales=[1, 1, 1.5, 0.75], shape=(1, 2, 4, 8)
    ),
    "resize_linear_pytorch_sizes": lambda: resize(
        "linear", "pytorch_half_pixel", sizes=[1, 2, 8, 1]
    ),
    "resize_linear_asymmetric_3d": lambda: resize(
        "linear", "asymmetric", scales=[1, 2.5, 3], shape=(3, 4, 5)
    ),
}


def helper_node(op: str, ins: list[str], outs: list[str], **attrs):
    from onnx import helper

    return helper.make_node(op, ins, outs, **attrs)


HOST_CONFIGS = [("host", 1), ("host-avx512", 1), ("generic", 1)]


@pytest.mark.parametrize(
    "name,target,threads", spread(sorted(CASES), HOST_CONFIGS, lambda c, t, n: f"{c}-{t}-t{n}")
)
def test_matches_onnxruntime(name: str, target: str, threads: int, tmp_path: Path) -> None:
    check_on_host(CASES[name](), target, threads, tmp_path)


@pytest.mark.parametrize("name", ["slice_steps_negative", "pad_reflect", "resize_linear_x2_half_pixel"])
def test_aarch64_under_qemu(name: str, tmp_path: Path) -> None:
    from grimc.runner import ExeModel

    case = CASES[name]()
    feeds = case.feeds()
    model = ExeModel.build(compile_model(case.model(), "aarch64", 1), tmp_path, target="aarch64", threads=1)
    assert_matches(model.run(list(feeds.values())), reference(case, feeds))


def test_wrap_pad_is_refused_in_one_line() -> None:
    case = IntInitCase([node("Pad", ["x", "p"], mode="wrap")], [("x", (2, 3))], [("p", i64(0, 1, 0, 1))])
    with pytest.raises(FrontendError, match=r"\(Pad\): mode 'wrap' is not supported"):
        import_onnx(case.model())


REDUCE_CASES: dict[str, Callable[[], Case]] = {
    "reduce_max_last_keep": lambda: Case([node("ReduceMax", ["x"], axes=[-1])], [("x", (3, 4, 37))]),
    "reduce_min_middle": lambda: Case(
        [node("ReduceMin", ["x"], axes=[1], keepdims=0)], [("x", (3, 5, 7))]
    ),
    "reduce_mean_two_axes": lambda: Case(
        [node("ReduceMean", ["x"], axes=[0, 2], keepdims=0)], [("x", (3, 5, 7))]
    ),
    "reduce_mean_spatial": lambda: Case(
        [node("ReduceMean", ["x"], axes=[2, 3])], [("x", (2, 3, 5, 9))]
    ),
    "reduce_sum_axes_input": lambda: IntInitCase(
        [node("ReduceSum", ["x", "a"], keepdims=0)], [("x", (4, 6, 5))], [("a", i64(-1, 0))]
    ),
    "reduce_sum_all": lambda: Case([node("ReduceSum", ["x"])], [("x", (4, 6))]),
    "global_max_pool": lambda: Case([node("GlobalMaxPool", ["x"])], [("x", (2, 3, 7, 5))]),
}


@pytest.mark.parametrize("target", ["host", "host-avx512", "generic"])
@pytest.mark.parametrize("name", sorted(REDUCE_CASES))
def test_reductions_match_onnxruntime(name: str, target: str, tmp_path: Path) -> None:
    case = REDUCE_CASES[name]()
    feeds = case.feeds()
    gen = compile_model(case.model(), target, 1)
    assert_matches(run_host(gen, feeds, target, 1, tmp_path), reference(case, feeds))


def test_reduction_under_qemu(tmp_path: Path) -> None:
    from grimc.runner import ExeModel

    case = REDUCE_CASES["reduce_mean_two_axes"]()
    feeds = case.feeds()
    model = ExeModel.build(compile_model(case.model(), "aarch64", 1), tmp_path, target="aarch64", threads=1)
    assert_matches(model.run(list(feeds.values())), reference(case, feeds))


def layer_norm(shape: tuple[int, ...], axis: int, bias: bool, scale_shape=None) -> Case:
    trailing = scale_shape or shape[axis:]
    inits = [("g", np.random.default_rng(3).standard_normal(trailing))]
    ins = ["x", "g"]
    if bias:
        inits.append(("b", np.random.default_rng(4).standard_normal(trailing)))
        ins.append("b")
    return Case([node("LayerNormalization", ins, axis=axis, epsilon=1e-3)], [("x", shape)], inits)


LAYER_NORM_CASES: dict[str, Callable[[], Case]] = {
    "last_axis_bias": lambda: layer_norm((2, 5, 37), -1, True),
    "two_axes_no_bias": lambda: layer_norm((3, 4, 9), 1, False),
    "broadcast_scale": lambda: layer_norm((2, 3, 17), 1, True, scale_shape=(17,)),
}


@pytest.mark.parametrize("target", ["host", "host-avx512", "generic"])
@pytest.mark.parametrize("name", sorted(LAYER_NORM_CASES))
def test_layer_norm_matches_onnxruntime(name: str, target: str, tmp_path: Path) -> None:
    case = LAYER_NORM_CASES[name]()
    feeds = case.feeds()
    gen = compile_model(case.model(), target, 1)
    assert_matches(run_host(gen, feeds, target, 1, tmp_path), reference(case, feeds))
