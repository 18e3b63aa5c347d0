"""The ONNX backend node tests (onnx.backend.test data) through `grimc.backend`.

Selection: every node test of the onnx 1.17.0 wheel (see `node_tests.py`) whose
nodes are all default-domain ops in the frontend's `supported_ops()`. Each one
is, in exactly one way:

- run on the host through `grimc.backend.run_model` and compared with the
  test's expected outputs at the tolerance of onnx's own backend runner
  (rtol 1e-3, atol 1e-7), shapes and float32 dtype included;
- listed in EXCLUDED: a feature grimc rejects on purpose (non-float32 tensors,
  training mode, 3-D pools...); the test then asserts that
  grimc refuses the model with the one-line GrimcError written in the table,
  never a crash or a silently wrong result;
- listed in XFAIL: a grimc bug, diagnosed in the reason; strict, so the test
  flips to an error as soon as the bug is fixed.

Inputs grimc needs at compile time (weights, shapes, bounds) are bound as
initializers first (`bind_compile_time_inputs`). AARCH64_SUBSET runs under
qemu-aarch64 as well. Every model is built with 1 thread, once per test.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnx
import pytest

import grimc.backend as backend
from grimc.errors import GrimcError
from grimc.frontend.context import supported_ops
from tests.backend import node_tests
from tests.backend.node_tests import NodeTest, NodeTestArchive, bind_compile_time_inputs
from tests.conftest import require

RTOL, ATOL = 1e-3, 1e-7
"""onnx.backend.test.runner's defaults (`assert_similar_outputs`)."""

HAVE_CLANG = shutil.which("clang-19") is not None or shutil.which("clang") is not None
HAVE_QEMU = shutil.which("qemu-aarch64") is not None or shutil.which("qemu-aarch64-static")


@pytest.fixture(autouse=True)
def _clang() -> None:
    require(HAVE_CLANG, "clang", "clang-19")


@dataclass(frozen=True)
class Exclusion:
    reason: str
    error: str
    """Regex that grimc's one-line error must match."""


F32_ONLY = r"has dtype \w+; grimc computes in float32 only"

EXCLUDED: dict[str, Exclusion] = {
    # --- tensor types: grimc computes in float32 only ----------------------------
    "test_cast_*": Exclusion(
        "Cast from/to float16, double, bfloat16, float8, int4 or string tensors",
        rf"{F32_ONLY}|only casts to float32 are supported on activations",
    ),
    "test_castlike_*": Exclusion(
        "CastLike (expanded to Cast) between float32 and other element types", F32_ONLY
    ),
    "test_*_uint8": Exclusion("uint8 tensors", r"input '\w+' has dtype uint8; grimc computes"),
    "test_clip_default_int8_*": Exclusion("int8 tensors", r"input 'x' has dtype int8; grimc"),
    **{
        f"test_{op}_{types}": Exclusion(f"{op.capitalize()} on integer or non-float32 tensors", F32_ONLY)
        for op in ("max", "min")
        for types in ("int*", "uint[136]*", "float[16]?")
    },
    "test_pow_types_*": Exclusion("Pow with an integer base or exponent tensor", F32_ONLY),
    **{
        f"test_{name}_pad": Exclusion("Pad on int32 tensors", F32_ONLY)
        for name in ("edge", "reflect", "wrap")
    },
    **{
        pattern: Exclusion(
            "NegativeLogLikelihoodLoss (expanded): its int64 target is read by other ops "
            "than Gather/GatherElements indices (the *_weight_* ones without ii run)",
            r"input 'target' has dtype int64; grimc computes in float32 only",
        )
        for pattern in (
            "test_nllloss_*_ii_expanded", "test_nllloss_NC_expanded", "test_nllloss_NCd1_expanded",
            "test_nllloss_NCd1d2_expanded", "test_nllloss_NCd1d2_reduction_*_expanded",
            "test_nllloss_NCd1d2d3d4d5_none_no_weight_expanded",
        )
    },
    "test_center_crop_pad_*": Exclusion(
        "CenterCropPad (expanded) computing on its int64 `shape` input", F32_ONLY
    ),
    "test_resize_*cubic*": Exclusion("cubic Resize", r"mode 'cubic' is not supported"),
    "test_resize_*_linear_antialias": Exclusion(
        "antialiased Resize", r"antialias and exclude_outside are not supported"
    ),
    "test_resize_*_not_[ls]*": Exclusion(
        "Resize keeping the aspect ratio",
        r"keep_aspect_ratio_policy other than 'stretch' is not supported",
    ),
    "test_resize_tf_crop_and_resize*": Exclusion(
        "tf_crop_and_resize Resize (roi)",
        r"coordinate_transformation_mode 'tf_crop_and_resize' is not supported",
    ),
    "test_slice_start_out_of_bounds": Exclusion(
        "an empty slice (zero-size result)", r"an empty slice \(zero-size tensor\)"
    ),
    "test_reduce_*empty_set*": Exclusion(
        "reductions of zero-size tensors", r"input 'data' has a dynamic shape"
    ),
    "test_reduce_m??_bool_inputs": Exclusion("bool tensors", F32_ONLY),
    "test_split_zero_size_splits_*": Exclusion(
        "zero-size tensors", r"input 'input' has a dynamic shape"
    ),
    # booleans are float 0/1 tensors inside the graph: bool (and int) run-time inputs
    # are taken, bool graph outputs refused
    **{
        pattern: Exclusion(
            "a bool graph output", r"a boolean graph output is not supported"
        )
        for pattern in ("test_greater*", "test_less*", "test_and*", "test_or*", "test_not_*",
                        "test_equal", "test_equal_bcast")
    },
    "test_where_long_example": Exclusion("int64 data (Where's x and y)", F32_ONLY),
    "test_equal_string*": Exclusion("string graph inputs", F32_ONLY),
    "test_shape*": Exclusion(
        "the output is an int64 shape tensor", r"graph output: tensor 'y' has dtype int64"
    ),
    "test_size*": Exclusion(
        "the output is an int64 element count", r"graph output: tensor 'y' has dtype int64"
    ),
    "test_constantofshape_int_*": Exclusion(
        "the output is an int32 tensor", r"graph output: tensor 'y' has dtype int32"
    ),
    "test_identity_opt": Exclusion(
        "optional-typed input and output", r"input 'opt_in' is not a tensor"
    ),
    "test_identity_sequence": Exclusion(
        "sequence-typed input and output", r"input 'x' is not a tensor"
    ),
    "test_reshape_allowzero_reordered": Exclusion(
        "zero-size tensors (input [0, 3, 4]); grimc reads a declared 0 dim as unknown",
        r"input 'data' has a dynamic shape \(\[\?, 3, 4\]\)",
    ),
    # --- inference-only semantics --------------------------------------------------
    "test_batchnorm_*_training_mode": Exclusion(
        "training-mode BatchNormalization (batch statistics, running-mean outputs)",
        r"\(BatchNormalization\): training_mode=1 is not supported",
    ),
    "test_training_dropout*": Exclusion(
        "training-mode Dropout (random mask)", r"\(Dropout\): training_mode=1 is not supported"
    ),
    "test_dropout_default_mask*": Exclusion(
        "the Dropout mask output (bool)", r"the dropout mask \(output 1\) is not supported"
    ),
    "test_maxpool_with_argmax_2d_precomputed_pads": Exclusion(
        "the MaxPool Indices output (int64)", r"the Indices output \(output 1\) is not supported"
    ),
    "test_maxpool_with_argmax_2d_precomputed_strides": Exclusion(
        "the MaxPool Indices output in column-major storage order",
        r"storage_order=1 is not supported",
    ),
    # --- layouts and ranks the graph dialect does not have ----------------------------
    "test_averagepool_3d_*": Exclusion(
        "3-D pooling (the graph dialect is NCHW)", r"only 1-D and 2-D pools are supported"
    ),
    "test_maxpool_3d_*": Exclusion(
        "3-D pooling (the graph dialect is NCHW)", r"only 1-D and 2-D pools are supported"
    ),
    "test_if_*": Exclusion(
        "If branches that produce sequences or optionals (test_if itself runs, its "
        "condition given at compile time)",
        r"node #0 \(If\) (then|else)_branch: node #1 \(SequenceConstruct\): unsupported",
    ),
    "test_convtranspose_3d": Exclusion(
        "3-D transposed convolution (the graph dialect is NCHW)",
        r"only 1-D and 2-D transposed convolutions are supported",
    ),
}
"""fnmatch pattern -> why grimc refuses these node tests, and the error it gives."""

XFAIL: dict[str, str] = {}
"""Node test -> diagnosed grimc bug; strict xfail, flips once fixed."""

AARCH64_SUBSET = (
    "test_add_bcast",
    "test_averagepool_2d_pads_count_include_pad",
    "test_averagepool_2d_dilations",
    "test_basic_conv_with_padding",
    "test_convtranspose_group_2_image_3",
    "test_convtranspose_output_shape",
    "test_conv_with_strides_and_asymmetric_padding",
    "test_batchnorm_example",
    "test_clip_splitbounds",
    "test_concat_3d_axis_negative_2",
    "test_gemm_all_attributes",
    "test_matmul_4d",
    "test_maxpool_2d_same_lower",
    "test_softmax_large_number",
    "test_transpose_all_permutations_3",
    "test_lrn",
    "test_prelu_broadcast",
    "test_gru_with_initial_bias",
    "test_lstm_with_peepholes",
    "test_simple_rnn_with_initial_bias",
    "test_gather_2d_indices",
    "test_if",
)
"""One or two node tests per op family, run under qemu-aarch64 (NEON kernels)."""

SAME_MODEL_AS: dict[str, str] = {
    **{f"test_clip_{n}": "test_clip_example" for n in ("inbounds", "outbounds", "splitbounds")},
    "test_max_two_inputs": "test_max_float32",
    "test_min_two_inputs": "test_min_float32",
    "test_reduce_sum_empty_axes_input_noop_example": "test_reduce_sum_empty_axes_input_noop",
    "test_reduce_max_default_axes_keepdims_random": "test_reduce_max_default_axes_keepdim_example",
    **{
        f"test_reduce_{op}_{kind}_random": f"test_reduce_{op}_{kind}_example"
        for op in ("max", "mean", "min", "sum")
        for kind in (
            "default_axes_keepdims", "do_not_keepdims", "keepdims", "negative_axes_keepdims",
        )
        if (op, kind) != ("max", "default_axes_keepdims")
    },
}  # fmt: skip
"""Node test -> a node test whose compiled model is the same, byte for byte (once
compile-time inputs are bound): only the run-time data differ, so it builds the same
code. The fast tier runs the second one only; the slow tier runs both."""

RUN_TIME_INDICES = (
    "test_gather_0",
    "test_gather_negative_indices",
    "test_gather_elements_negative_indices",
    "test_gather_1",
    "test_gather_2d_indices",
    "test_gather_elements_0",
    "test_gather_elements_1",
)
"""Gather and GatherElements node tests run a second time with the int64
indices as run-time inputs instead of constants; the first three under qemu
too. (GatherND has no converter, so its tests are not selected.)"""


# --------------------------------------------------------------------------
# catalog


@dataclass(frozen=True)
class Catalog:
    """The selected node tests, split into run / excluded; or why there are none."""

    archive: NodeTestArchive | None
    selected: tuple[str, ...] = ()
    unavailable: str = ""

    def exclusion(self, name: str) -> Exclusion | None:
        matches = [e for pattern, e in EXCLUDED.items() if fnmatch.fnmatchcase(name, pattern)]
        assert len(matches) <= 1, f"{name} matches several EXCLUDED patterns"
        return matches[0] if matches else None

    @property
    def runnable(self) -> list[str]:
        return [n for n in self.selected if self.exclusion(n) is None]

    @property
    def excluded(self) -> list[str]:
        return [n for n in self.selected if self.exclusion(n) is not None]

    def load(self, name: str) -> NodeTest:
        assert self.archive is not None
        return self.archive.load(name)


def is_selected(model: onnx.ModelProto, supported: set[str]) -> bool:
    nodes = model.graph.node
    return bool(nodes) and all(
        n.domain in ("", "ai.onnx") and n.op_type in supported for n in nodes
    )


@functools.cache
def catalog() -> Catalog:
    try:
        archive = NodeTestArchive(node_tests.wheel_path())
    except node_tests.WheelUnavailable as exc:
        return Catalog(None, unavailable=str(exc))
    supported = set(supported_ops())
    selected = tuple(
        name
        for name in archive.names()
        if is_selected(onnx.load_model_from_string(archive.model_bytes(name)), supported)
    )
    return Catalog(archive, selected)


UNAVAILABLE = "node-test-data-unavailable"


def _params(names: list[str], twins_slow: bool = False) -> Iterator[object]:
    """Node test names as params, the diagnosed bugs marked xfail(strict); with
    `twins_slow`, the SAME_MODEL_AS twins in the slow tier only."""
    for name in names:
        marks = []
        if name in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, raises=GrimcError, reason=XFAIL[name]))
        if twins_slow and name in SAME_MODEL_AS:
            marks.append(pytest.mark.slow)
        yield pytest.param(name, marks=marks, id=name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize over the catalog; without test data, one case that explains why."""
    if "node_test" not in metafunc.fixturenames:
        return
    cat = catalog()
    if cat.archive is None:
        metafunc.parametrize("node_test", [UNAVAILABLE])
        return
    groups = {
        "test_host": cat.runnable,
        "test_excluded_fails_cleanly": cat.excluded,
        "test_aarch64": list(AARCH64_SUBSET),
        "test_run_time_indices": list(RUN_TIME_INDICES),
    }
    name = metafunc.function.__name__
    metafunc.parametrize("node_test", list(_params(groups[name], twins_slow=name == "test_host")))


def available_catalog() -> Catalog:
    """The catalog; fails (or skips under GRIMC_ALLOW_SKIP=1) when the data is missing."""
    cat = catalog()
    if cat.archive is None:
        if os.environ.get("GRIMC_ALLOW_SKIP") == "1":
            pytest.skip(cat.unavailable)
        pytest.fail(f"{cat.unavailable} (set GRIMC_ALLOW_SKIP=1 to skip)", pytrace=False)
    return cat


# --------------------------------------------------------------------------
# running one node test


def check_outputs(name: str, actual: tuple[np.ndarray, ...], expected: list) -> None:
    assert len(actual) == len(expected), f"{name}: {len(actual)} outputs, expected {len(expected)}"
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert got.dtype == want.dtype, f"{name} output {i}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{name} output {i}: shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} output {i}")


def run_node_test(
    cat: Catalog, name: str, target: str, run_time: tuple[str, ...] = ()
) -> None:
    """Run `name` against its expected outputs; the inputs of `run_time` op
    types stay run-time inputs (int64 indices), as do int64/int32/bool inputs grimc
    takes (conditions, compared values); all others and the outputs are float32."""
    test = cat.load(name)
    assert test.data_sets, f"{name}: no test data sets"
    for inputs, expected in test.data_sets:
        model, runtime = bind_compile_time_inputs(test.model, inputs, run_time)
        floats = [
            *(x for x in runtime if x is None or x.dtype not in (np.int64, np.int32, np.bool_)),
            *expected,
        ]
        dtypes = {"non-tensor" if x is None else str(x.dtype) for x in floats}
        assert dtypes == {"float32"}, (
            f"{name}: tensors are not all float32 ({sorted(dtypes)}); "
            "add it to EXCLUDED with grimc's error"
        )
        check_outputs(name, backend.run_model(model, runtime, target=target, threads=1), expected)


def test_host(node_test: str) -> None:
    run_node_test(available_catalog(), node_test, "host")


def test_excluded_fails_cleanly(node_test: str) -> None:
    cat = available_catalog()
    exclusion = cat.exclusion(node_test)
    assert exclusion is not None
    test = cat.load(node_test)
    model, _ = bind_compile_time_inputs(test.model, test.data_sets[0][0])
    try:
        backend.prepare(model, target="host").close()
    except GrimcError as exc:
        message = str(exc)
        assert "\n" not in message.strip(), f"multi-line error: {message!r}"
        assert re.search(exclusion.error, message), f"unexpected error: {message}"
    else:
        pytest.fail(f"{node_test} now compiles: move it from EXCLUDED to the run set")


def test_aarch64(node_test: str) -> None:
    require(bool(HAVE_QEMU), "qemu-aarch64", "qemu-user")
    run_node_test(available_catalog(), node_test, "aarch64")


def test_run_time_indices(node_test: str) -> None:
    """The Gather(Elements) node tests with their int64 indices fed at run time."""
    cat = available_catalog()
    test = cat.load(node_test)
    _, runtime = bind_compile_time_inputs(
        test.model, test.data_sets[0][0], ("Gather", "GatherElements")
    )
    assert runtime[-1].dtype == np.int64, "the indices must stay a run-time input"
    targets = ["host", "aarch64"] if node_test in RUN_TIME_INDICES[:3] and HAVE_QEMU else ["host"]
    for target in targets:
        run_node_test(cat, node_test, target, ("Gather", "GatherElements"))


# --------------------------------------------------------------------------
# the tables themselves


def test_tables_match_the_selection() -> None:
    """No stale entries: every pattern and name refers to a selected node test."""
    cat = available_catalog()
    selected = set(cat.selected)
    assert len(selected) >= 200, f"only {len(selected)} node tests selected"
    for pattern in EXCLUDED:
        assert fnmatch.filter(cat.selected, pattern), f"EXCLUDED {pattern!r} matches nothing"
    for name in XFAIL:
        assert name in selected and cat.exclusion(name) is None, name
    for name in (*AARCH64_SUBSET, *RUN_TIME_INDICES):
        assert name in cat.runnable and name not in XFAIL, name
    families = {op for n in AARCH64_SUBSET for op in cat.load(n).op_types}
    assert len(families) >= 15, sorted(families)


def _bound_models(cat: Catalog, name: str) -> list[bytes]:
    """The models `name` compiles, one per data set, without the names that differ."""
    test = cat.load(name)
    out = []
    for inputs, _ in test.data_sets:
        model, _ = bind_compile_time_inputs(test.model, inputs)
        model.graph.name = ""
        out.append(model.SerializeToString())
    return out


def test_same_model_twins_compile_the_same_model() -> None:
    """SAME_MODEL_AS is exact: each twin runs, and builds what its fast partner builds."""
    cat = available_catalog()
    for twin, partner in SAME_MODEL_AS.items():
        assert twin in cat.runnable and partner in cat.runnable, (twin, partner)
        assert partner not in SAME_MODEL_AS, partner
        assert _bound_models(cat, twin) == _bound_models(cat, partner), twin


def test_binding_keeps_activations_at_run_time() -> None:
    """Conv weights become initializers; Gemm operands and RNN states stay inputs."""
    cat = available_catalog()
    for name, kept in [
        ("test_basic_conv_with_padding", ["x"]),
        ("test_gemm_all_attributes", ["a", "b", "c"]),
        ("test_reshape_negative_dim", ["data"]),
    ]:
        test = cat.load(name)
        model, runtime = bind_compile_time_inputs(test.model, test.data_sets[0][0])
        assert [vi.name for vi in model.graph.input] == kept, name
        assert len(runtime) == len(kept)
        bound = {t.name for t in model.graph.initializer}
        assert bound | set(kept) == {vi.name for vi in test.model.graph.input}


def test_download_failure_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A failed pip download names the wheel, the cache and pip's last line."""

    class Failed:
        returncode, stdout, stderr = 1, "", "ERROR: No matching distribution found for onnx\n"

    monkeypatch.setattr(node_tests, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(node_tests.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(node_tests.WheelUnavailable, match=r"onnx 1\.17\.0 wheel.*No matching"):
        node_tests.wheel_path()
