"""Reading ONNX files with their large payloads kept out of protobuf
(grimc.frontend.wire): the split-off payloads and the parsed rest must be
exactly what `onnx.load` + `numpy_helper.to_array` give, and a file the walk
cannot follow must be left to protobuf."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from grimc.frontend import FrontendError, import_onnx, wire
from grimc.frontend.load import initializers, input_names, load_for_import, load_model
from tests.frontend.helpers import model, node, rand, weights

SETTINGS = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

NUMPY_TYPES = [
    np.float32, np.float64, np.float16, np.int8, np.uint8, np.int16, np.uint16,
    np.int32, np.uint32, np.int64, np.uint64, np.bool_,
]


def _tensor(draw: st.DrawFn, name: str) -> TensorProto:
    """A tensor as exporters write them: raw_data, typed fields, bfloat16, strings,
    with a name and sometimes a doc string; now and then a repeated raw_data."""
    shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=3))
    kind = draw(st.sampled_from(["numpy", "numpy", "numpy", "bfloat16", "string"]))
    if kind == "string":
        values = np.array(draw(st.lists(st.text(max_size=3), min_size=int(np.prod(shape)),
                                        max_size=int(np.prod(shape)))), dtype=object)
        return numpy_helper.from_array(values.reshape(shape), name)
    if kind == "bfloat16":
        raw = np.random.default_rng(draw(st.integers(0, 99))).integers(
            0, 2**16, size=shape, dtype=np.uint16
        )
        return helper.make_tensor(name, TensorProto.BFLOAT16, shape, raw.tobytes(), raw=True)
    dtype = draw(st.sampled_from(NUMPY_TYPES))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    array = (rng.standard_normal(shape) * 100).astype(dtype)
    if draw(st.sampled_from([True, True, False])):
        tensor = numpy_helper.from_array(array, name)  # raw_data
    else:
        tensor = helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(array.dtype), shape,
                                    array.reshape(-1).tolist())
    if draw(st.booleans()):
        tensor.doc_string = "doc"
    if draw(st.integers(0, 9)) == 0:
        tensor.segment.end = 1  # numpy_helper refuses segments: so must the walk
    return tensor


@st.composite
def models(draw: st.DrawFn) -> bytes:
    count = draw(st.integers(0, 6))
    tensors = [_tensor(draw, f"t{i}") for i in range(count)]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        tensors,
    )
    data = helper.make_model(graph).SerializeToString()
    if draw(st.booleans()):
        # A second ModelProto appended: protobuf merges the graphs, so the
        # initializers of both count, in order.
        extra = onnx.ModelProto(graph=onnx.GraphProto(initializer=[_tensor(draw, "late")]))
        data += extra.SerializeToString()
    return data


def _walk(data: bytes, min_bytes: int) -> tuple[onnx.ModelProto, dict[int, np.ndarray]]:
    f = io.BytesIO(data)
    split = wire.split_payloads(f, len(data), min_bytes)
    parsed = onnx.load_model_from_string(split.model)
    arrays = {
        i: wire.read_payload(f, p, list(parsed.graph.initializer[i].dims), "t")
        for i, p in split.payloads.items()
    }
    return parsed, arrays


def _assert_same(data: bytes, parsed: onnx.ModelProto, arrays: dict[int, np.ndarray]) -> None:
    expected = onnx.load_model_from_string(data)
    try:
        want = initializers(expected, "m")
    except FrontendError:
        with pytest.raises(FrontendError):
            initializers(parsed, "m", arrays)
        return
    got = initializers(parsed, "m", arrays)
    assert list(got) == list(want)
    for name, array in want.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape
        np.testing.assert_array_equal(got[name], array)
    # Apart from the payloads, the parsed model is the model.
    for index in arrays:
        assert not parsed.graph.initializer[index].HasField("raw_data")
        expected.graph.initializer[index].ClearField("raw_data")
    assert parsed == expected


@SETTINGS
@given(models(), st.integers(0, 64))
def test_round_trip_matches_onnx_load(data: bytes, min_bytes: int) -> None:
    parsed, arrays = _walk(data, min_bytes)
    _assert_same(data, parsed, arrays)


def test_only_plain_raw_payloads_are_split() -> None:
    big = rand(64, 64)
    bf16 = helper.make_tensor("bf", TensorProto.BFLOAT16, [4096], bytes(8192), raw=True)
    typed = helper.make_tensor("typed", TensorProto.FLOAT, [4096], big.reshape(-1).tolist())
    external = numpy_helper.from_array(big, "ext")
    external.data_location = TensorProto.EXTERNAL
    graph = helper.make_graph(
        [], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(big, "plain"), bf16, typed, external],
    )
    data = helper.make_model(graph).SerializeToString()
    split = wire.split_payloads(io.BytesIO(data), len(data), 1024)
    assert list(split.payloads) == [0]
    assert split.payloads[0].nbytes == big.nbytes
    assert len(split.model) < len(data) - big.nbytes


@SETTINGS
@given(models(), st.data())
def test_truncated_or_mutated_files_are_walked_or_left_to_protobuf(
    data: bytes, draw: st.DataObject
) -> None:
    """Whatever the walk accepts, protobuf parses the split model exactly when
    it parses the file, with the same tensors."""
    buffer = bytearray(data)
    if draw.draw(st.booleans()):
        del buffer[draw.draw(st.integers(0, len(buffer))) :]
    for _ in range(draw.draw(st.integers(0, 3))):
        if buffer:
            buffer[draw.draw(st.integers(0, len(buffer) - 1))] = draw.draw(st.integers(0, 255))
    data = bytes(buffer)
    try:
        expected = load_model(data, "m")[0]
    except FrontendError:
        expected = None
    f = io.BytesIO(data)
    try:
        split = wire.split_payloads(f, len(data), 0)
    except wire.NotWalkable:
        return
    try:
        parsed = load_model(split.model, "m")[0]
    except FrontendError:
        assert expected is None
        return
    assert expected is not None
    try:
        arrays = {
            i: wire.read_payload(f, p, list(parsed.graph.initializer[i].dims), "t")
            for i, p in split.payloads.items()
        }
    except ValueError:  # dims and payload disagree: numpy_helper fails too
        with pytest.raises(FrontendError):
            initializers(expected, "m")
        return
    _assert_same(data, parsed, arrays)


# --------------------------------------------------------------------------
# the importer reads files this way


def _big_model(dtype: type = np.float32) -> tuple[onnx.ModelProto, np.ndarray]:
    w = rand(40, 1000).astype(dtype)  # 160 kB: split off
    nodes = [node("Gemm", ["x", "w"], ["y"], transB=1)]
    return model(nodes, {"x": [2, 1000]}, ["y"], {"w": w}), w


def test_file_import_reads_large_weights_directly(tmp_path: Path) -> None:
    onnx_model, w = _big_model()
    path = tmp_path / "m.onnx"
    onnx.save(onnx_model, path)
    loaded, _, stored = load_for_import(path, "m")
    assert list(stored) == [0] and not loaded.graph.initializer[0].HasField("raw_data")
    np.testing.assert_array_equal(weights(import_onnx(path))["w"], w)
    np.testing.assert_array_equal(weights(import_onnx(path.read_bytes()))["w"], w)
    assert input_names(path) == ["x"]


def test_float64_and_float_data_weights_from_a_file(tmp_path: Path) -> None:
    onnx_model, w = _big_model(np.float64)
    path = tmp_path / "m.onnx"
    onnx.save(onnx_model, path)
    np.testing.assert_array_equal(weights(import_onnx(path))["w"], w.astype(np.float32))
    typed = helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.reshape(-1).tolist())
    onnx_model.graph.initializer[0].CopyFrom(typed)
    onnx.save(onnx_model, path)
    np.testing.assert_array_equal(weights(import_onnx(path))["w"], w.astype(np.float32))


def test_dims_that_do_not_match_the_payload(tmp_path: Path) -> None:
    onnx_model, _ = _big_model()
    onnx_model.graph.initializer[0].dims[0] = 41
    path = tmp_path / "m.onnx"
    onnx.save(onnx_model, path)
    with pytest.raises(FrontendError) as info:
        import_onnx(path)
    assert str(info.value) == (
        f"{path}: tensor 'w': cannot read data: 160000 bytes of data do not make a "
        "float32 tensor of shape [41, 1000]"
    )


def test_file_cut_inside_a_payload(tmp_path: Path) -> None:
    data = _big_model()[0].SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrontendError) as info:
        import_onnx(path)
    assert str(info.value).startswith(f"{path}: not a valid ONNX model")


def test_file_that_shrinks_after_the_walk(tmp_path: Path) -> None:
    data = _big_model()[0].SerializeToString()
    f = io.BytesIO(data)
    split = wire.split_payloads(f, len(data))
    short = io.BytesIO(data[: split.payloads[0].offset + 10])
    with pytest.raises(ValueError, match="^w: the file ended inside the tensor's data$"):
        wire.read_payload(short, split.payloads[0], [40, 1000], "w")


BIG_SEED = model(
    [node("Gemm", ["x", "w", "b"], ["y"], transB=1)], {"x": [2, 1000]}, ["y"],
    {"b": rand(40), "w": rand(40, 1000)},  # the small tensor first: indices must agree
).SerializeToString()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_files_import_as_their_bytes_do(tmp_path_factory: pytest.TempPathFactory,
                                                data: st.DataObject) -> None:
    """A file with a split-off payload, its structure (the bytes around the
    payload) mutated or cut: importing it from its path succeeds exactly when
    importing its bytes does, with the same weights; failures are one line."""
    buffer = bytearray(BIG_SEED)
    edges = [*range(300), *range(len(buffer) - 300, len(buffer))]
    for _ in range(data.draw(st.integers(1, 4))):
        buffer[data.draw(st.sampled_from(edges))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del buffer[data.draw(st.sampled_from(edges)) :]
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    path.write_bytes(buffer)
    outcomes = []
    for source in (path, bytes(buffer)):
        try:
            outcomes.append(weights(import_onnx(source)))
        except FrontendError as exc:
            assert "\n" not in str(exc)
            outcomes.append(None)
    from_file, from_bytes = outcomes
    assert (from_file is None) == (from_bytes is None)
    if from_file is not None and from_bytes is not None:
        assert from_file.keys() == from_bytes.keys()
        for key in from_file:
            np.testing.assert_array_equal(from_file[key], from_bytes[key])
