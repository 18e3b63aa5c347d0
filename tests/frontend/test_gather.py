"""Gather by constant indices (strided slices joined by a concat) and by
run-time int64/int32 indices (`graph.gather`, range-checked on entry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc.artifacts import onnxruntime_reference
from grimc.driver import build_model, compile_model
from grimc.frontend import import_onnx
from grimc.runner import RunError
from tests.frontend.helpers import model, node, op_names, prop, rand, result_shapes
from tests.frontend.test_errors import error_of

XS = [4, 6, 5]


def gather_model(indices: np.ndarray, axis: int) -> onnx.ModelProto:
    """y = Gather(Relu(x), indices): the data is an activation, the indices constant."""
    nodes = [node("Relu", ["x"], ["r"]), node("Gather", ["r", "ids"], ["y"], axis=axis)]
    return model(nodes, {"x": XS}, ["y"], {"ids": indices})


CASES = {
    "reorder": (np.array([2, 0, 1], np.int64), 1),
    "reverse_negative": (np.array([-1, -2, -3, -4], np.int64), 0),
    "strided_2d": (np.array([[0, 2], [4, 1]], np.int64), -1),
    "repeated_int32": (np.array([3, 3, 0, 3], np.int32), 1),
    "scalar": (np.array(4, np.int64), 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gather_shapes_and_ops(case: str) -> None:
    indices, axis = CASES[case]
    module = import_onnx(gather_model(indices, axis))
    a = axis % len(XS)
    expected = (*XS[:a], *indices.shape, *XS[a + 1 :])
    assert result_shapes(module) == [expected]
    assert "graph.slice" in op_names(module)


def test_runs_of_evenly_spaced_indices_are_one_slice() -> None:
    module = import_onnx(gather_model(np.array([5, 3, 1, 0], np.int64), 1))
    ops = op_names(module)
    assert ops.count("graph.slice") == 2 and ops.count("graph.concat") == 1
    first = next(op for op in module.walk() if op.name == "graph.slice")
    assert prop(first, "starts") == (0, 5, 0) and prop(first, "steps") == (1, -2, 1)


def test_all_indices_in_order_is_no_op() -> None:
    assert op_names(import_onnx(gather_model(np.arange(6), 1))) == ["graph.relu"]


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        (np.array([0, 6]), "node #1 (Gather): index 6 is out of range for axis 1 of size 6"),
        (np.zeros(0, np.int64), "node #1 (Gather): empty indices"),
    ],
)
def test_bad_indices(indices: np.ndarray, message: str) -> None:
    assert message in error_of(gather_model(indices, 1))


def runtime_gather_model(
    dims: list[int], axis: int, elem: int = onnx.TensorProto.INT64, data: np.ndarray | None = None
) -> onnx.ModelProto:
    """y = Gather(Relu(x), ids) with ids an integer graph input of shape `dims`;
    with `data`, y = Gather(data, ids) + x (a constant table, e.g. embeddings)."""
    if data is None:
        nodes = [node("Relu", ["x"], ["r"]), node("Gather", ["r", "ids"], ["y"], axis=axis)]
        onnx_model = model(nodes, {"x": XS}, ["y"])
    else:
        nodes = [node("Gather", ["table", "ids"], ["g"], axis=axis), node("Add", ["g", "x"], ["y"])]
        out = [*data.shape[:axis], *dims, *data.shape[axis + 1 :]]
        onnx_model = model(nodes, {"x": out}, ["y"], {"table": data})
    onnx_model.graph.input.append(onnx.helper.make_tensor_value_info("ids", elem, dims))
    return onnx_model


def test_run_time_indices_are_a_gather_op() -> None:
    """Indices from an int64 graph input stay an input (marked int64) read by
    graph.gather; --input-value still makes them constants (strided slices)."""
    onnx_model = runtime_gather_model([2], 1)
    module = import_onnx(onnx_model)
    assert op_names(module) == ["graph.relu", "graph.gather"]
    assert result_shapes(module) == [(4, 2, 5)]
    assert 'graph.dtype = "int64"' in str(module)
    module = import_onnx(onnx_model, input_values={"ids": np.array([5, 0])})
    assert result_shapes(module) == [(4, 2, 5)] and "graph.gather" not in op_names(module)


@pytest.mark.parametrize(
    ("nodes", "output"),
    [
        ([node("Add", ["x", "ids"], ["y"])], "y"),  # arithmetic on an integer input
        ([node("Relu", ["x"], ["y"]), node("Gather", ["ids", "zero"], ["z"])], "z"),  # as data
        ([node("Relu", ["x"], ["y"]), node("Identity", ["ids"], ["z"])], "z"),  # returned
    ],
)
def test_integer_inputs_are_only_indices(nodes: list[onnx.NodeProto], output: str) -> None:
    onnx_model = model(nodes, {"x": [6]}, [output], {"zero": np.array([0], np.int64)})
    onnx_model.graph.input.append(onnx.helper.make_tensor_value_info("ids", 7, [6]))
    assert error_of(onnx_model, name="m") == (
        "m: input 'ids' has dtype int64; grimc computes in float32 only: "
        "give it a compile-time value with --input-value ids=VALUE"
    )


RUNTIME_CASES = {
    # name: (indices, axis, elem type, constant data or None)
    "negative_2d_int64": (np.array([[0, 5, -1], [2, -6, 3]], np.int64), 1, None),
    "int32_axis0": (np.array([3, -4, 3], np.int32), 0, None),
    "scalar_last_axis": (np.array(-2, np.int64), 2, None),
    "embedding_table": (np.array([[7, 0, 9, 7]], np.int64), 0, rand(10, 8, seed=3)),
}


def _ort(onnx_model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    inputs = [feeds[i.name] for i in onnx_model.graph.input]
    return onnxruntime_reference(onnx_model.SerializeToString(), inputs)[0]


@pytest.mark.parametrize(
    ("target", "cases"),
    [("host", sorted(RUNTIME_CASES)), ("aarch64", ["negative_2d_int64", "embedding_table"])],
)
def test_run_time_indices_match_onnxruntime(target: str, cases: list[str], tmp_path: Path) -> None:
    """Several index values through one compiled model, bit-exact with onnxruntime."""
    for case in cases:
        indices, axis, data = RUNTIME_CASES[case]
        elem = onnx.helper.np_dtype_to_tensor_dtype(indices.dtype)
        onnx_model = runtime_gather_model(list(indices.shape), axis, elem, data)
        x_shape = XS if data is None else [*data.shape[:axis], *indices.shape, *data.shape[axis + 1 :]]
        n = (XS if data is None else list(data.shape))[axis]
        with build_model(onnx_model, tmp_path / case, target=target) as compiled:
            for ids in (indices, (indices + 1) % n - (n if case.startswith("negative") else 0)):
                ids = np.asarray(ids, indices.dtype)
                x = rand(*x_shape)
                (got,) = compiled.run([x, ids])
                np.testing.assert_array_equal(got, _ort(onnx_model, {"x": x, "ids": ids}), case)


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_out_of_range_indices_are_refused(target: str, tmp_path: Path) -> None:
    """An index outside [-n, n) never reaches a kernel: the run fails with one
    line naming the input and the value (GRIMC_E_RANGE from the C model)."""
    onnx_model = runtime_gather_model([3], 1)
    with build_model(onnx_model, tmp_path, target=target) as compiled:
        for bad, value in (([0, 6, 1], 6), ([-7, 0, 0], -7), ([0, 0, 1 << 40], 1 << 40)):
            with pytest.raises(RunError) as info:
                compiled.run([rand(*XS), np.array(bad, np.int64)])
            assert str(info.value) == f"input 'ids': index {value} is out of range [-6, 6)"
        with pytest.raises(RunError, match="input 'ids': expected dtype int64, got int32"):
            compiled.run([rand(*XS), np.array([0, 1, 2], np.int32)])
        (ok,) = compiled.run([rand(*XS), np.array([5, -6, 0], np.int64)])
        assert ok.shape == (4, 3, 5)


def test_generated_api_of_integer_inputs() -> None:
    """The header says what a C caller passes: void pointers, dtypes, ranges."""
    gen = compile_model(runtime_gather_model([3], 1), prefix="net")
    assert "int net_run(net *model, const void *const *inputs, float *const *outputs);" in (
        gen.header
    )
    assert " *   ids: [-6, 6)" in gen.header and "const char *dtype;" in gen.header
    assert [(d.name, d.dtype, d.bounds) for d in gen.inputs] == [
        ("x", "float32", None),
        ("ids", "int64", (-6, 6)),
    ]
    plain = compile_model(gather_model(np.array([1]), 1), prefix="net")
    assert "const float *const *inputs" in plain.header and "dtype" not in plain.header


@pytest.mark.parametrize(
    ("target", "cases"), [("host", sorted(CASES)), ("aarch64", ["strided_2d", "repeated_int32"])]
)
def test_gather_matches_numpy_and_onnxruntime(
    target: str, cases: list[str], tmp_path: Path
) -> None:
    x = rand(*XS)
    for case in cases:
        indices, axis = CASES[case]
        onnx_model = gather_model(indices, axis)
        expected = onnxruntime_reference(onnx_model.SerializeToString(), [x])[0]
        np.testing.assert_array_equal(expected, np.take(np.maximum(x, 0), indices, axis=axis))
        with build_model(onnx_model, tmp_path / case, target=target) as compiled:
            (got,) = compiled.run([x])
        np.testing.assert_array_equal(got, expected)


def test_index_checks_under_sanitizers(tmp_path: Path) -> None:
    """The harness under ASan/UBSan: valid indices (negative included) run clean,
    an out-of-range one is refused without a report (nothing read out of bounds,
    nothing leaked on the failing path)."""
    from grimc.runner import ExeModel

    gen = compile_model(runtime_gather_model([3], 1), target="host", prefix="g")
    exe = ExeModel.build(gen, tmp_path, target="host", sanitize=("address", "undefined"))
    x = rand(*XS)
    (got,) = exe.run([x, np.array([5, -6, 0], np.int64)])
    np.testing.assert_array_equal(got, np.take(np.maximum(x, 0), [5, -6, 0], axis=1))
    with pytest.raises(RunError, match=r"input 'ids': index -7 is out of range \[-6, 6\)"):
        exe.run([x, np.array([5, -7, 0], np.int64)])


@pytest.mark.parametrize("name", ["test_Embedding", "test_Embedding_sparse"])
def test_bundled_embedding_runs(name: str) -> None:
    """PyTorch's exported nn.Embedding (onnx's bundled model and data): int64
    token ids at run time look up the constant table; bit-exact."""
    import grimc.backend as backend

    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted" / name
    data = folder / "test_data_set_0"
    ids = onnx.numpy_helper.to_array(onnx.load_tensor(str(data / "input_0.pb")))
    expected = onnx.numpy_helper.to_array(onnx.load_tensor(str(data / "output_0.pb")))
    assert ids.dtype == np.int64
    (got,) = backend.run_model(onnx.load(folder / "model.onnx"), [ids])
    np.testing.assert_array_equal(got, expected)


def test_range_message_is_the_c_one() -> None:
    """The runner recognizes a refused harness run by grimc_strerror(GRIMC_E_RANGE)."""
    from grimc.runner import RANGE_MESSAGE
    from tests.conftest import REPO

    blob_c = (REPO / "runtime_c" / "src" / "blob.c").read_text()
    assert f'case GRIMC_E_RANGE: return "{RANGE_MESSAGE}";' in blob_c


def elements_model(indices: np.ndarray | None, axis: int, dims: list[int]) -> onnx.ModelProto:
    """y = GatherElements(Relu(x), ids): constant `indices`, or (None) an int64
    input of shape `dims`."""
    nodes = [node("Relu", ["x"], ["r"]), node("GatherElements", ["r", "ids"], ["y"], axis=axis)]
    onnx_model = model(nodes, {"x": XS}, ["y"], {} if indices is None else {"ids": indices})
    if indices is None:
        onnx_model.graph.input.append(onnx.helper.make_tensor_value_info("ids", 7, dims))
    return onnx_model


ELEMENTS = [  # indices, axis: shaped like x off the axis, or smaller
    (np.array([[[3, 0, -1, 2, 1]] * 6] * 4, np.int64), 2),
    (np.array([[[0], [5]], [[-6], [2]]], np.int64), 1),
    (np.array([[[3, -4, 0]]], np.int64), 0),
]


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_gather_elements_matches_onnxruntime(target: str, tmp_path: Path) -> None:
    """Constant and run-time indices, bit-exact with onnxruntime."""
    for case, (indices, axis) in enumerate(ELEMENTS[: 3 if target == "host" else 1]):
        x = rand(*XS, seed=case)
        constant = elements_model(indices, axis, [])
        expected = _ort(constant, {"x": x})
        r = np.maximum(x, 0)
        by_definition = [
            r[(*e[:axis], indices[e] % XS[axis], *e[axis + 1 :])] for e in np.ndindex(indices.shape)
        ]
        np.testing.assert_array_equal(expected.reshape(-1), by_definition)
        with build_model(constant, tmp_path / f"c{case}", target=target) as compiled:
            np.testing.assert_array_equal(compiled.run([x])[0], expected)
        runtime = elements_model(None, axis, list(indices.shape))
        with build_model(runtime, tmp_path / f"r{case}", target=target) as compiled:
            np.testing.assert_array_equal(compiled.run([x, indices])[0], expected)
            bad = indices.copy()
            bad.flat[-1] = XS[axis]
            with pytest.raises(RunError, match=rf"index {XS[axis]} is out of range"):
                compiled.run([x, bad])


def test_gather_elements_bad_constant_indices() -> None:
    bad = np.array([[[0, 7, 0]]], np.int64)
    assert "(GatherElements): index 7 is out of range for axis 2 of size 5" in error_of(
        elements_model(bad, 2, [])
    )
    wide = np.zeros((4, 7, 5), np.int64)
    assert "indices [4, 7, 5] do not fit data [4, 6, 5] off axis 2" in error_of(
        elements_model(wide, 2, [])
    )
