"""Reading an ONNX file without passing its large weights through protobuf.

`onnx.load` reads the whole file into bytes, protobuf parses it into a second
copy, and `numpy_helper.to_array` makes a third: VGG-16's 553 MB of weights
cost 1.6 GB before the importer starts. Here the protobuf wire format of the
file is walked instead (ModelProto.graph -> GraphProto.initializer ->
TensorProto.raw_data), each large `raw_data` payload is left in the file,
and protobuf parses the small rest. The payloads are then read straight
from the file into their numpy arrays, one at a time.

Only the plain case is split off: a top-level initializer whose payload is a
`raw_data` field of a fixed-size numeric type, stored in the file itself,
with no other data field. Everything else (float_data, strings, external
data, subgraph initializers, unusual dtypes) stays in the parsed model for
the usual readers. A file the walk cannot follow is reported as not
walkable; the caller then parses it whole, so protobuf's own diagnosis
stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

MIN_SPLIT_BYTES = 64 * 1024
"""Payloads at least this large are split off. Bigger than any tensor of at
most 1024 elements, so every tensor small enough for shape inference's data
propagation keeps its data in the parsed model."""

DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # FLOAT
    2: np.dtype("u1"),  # UINT8
    3: np.dtype("i1"),  # INT8
    4: np.dtype("<u2"),  # UINT16
    5: np.dtype("<i2"),  # INT16
    6: np.dtype("<i4"),  # INT32
    7: np.dtype("<i8"),  # INT64
    10: np.dtype("<f2"),  # FLOAT16
    11: np.dtype("<f8"),  # DOUBLE
    12: np.dtype("<u4"),  # UINT32
    13: np.dtype("<u8"),  # UINT64
}
"""ONNX data types whose raw_data is a little-endian array numpy reads as is."""

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_DATA_TYPE = 2
_TENSOR_RAW_DATA = 9
_TENSOR_DATA_LOCATION = 14
_TENSOR_PLAIN_FIELDS = frozenset({1, 2, 8, 9, 12, 14, 16})
"""dims, data_type, name, raw_data, doc_string, data_location, metadata_props:
any other field (segment, typed data, external_data) keeps the tensor whole."""

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class NotWalkable(Exception):
    """The file is not protobuf the walk can follow (truncated, groups, ...)."""


@dataclass(frozen=True)
class Payload:
    """Where the raw_data of one initializer lies in the file."""

    offset: int
    nbytes: int
    dtype: np.dtype


@dataclass
class Split:
    """The model's bytes less the split-off payloads, and those payloads by the
    index of their tensor in `graph.initializer` (as protobuf will parse it)."""

    model: bytes
    payloads: dict[int, Payload]


def split_payloads(f: BinaryIO, size: int, min_bytes: int = MIN_SPLIT_BYTES) -> Split:
    """Walk the `size`-byte ModelProto in `f` (positioned at its start)."""
    reader = _Reader(f, size)
    payloads: dict[int, Payload] = {}
    out: list[bytes] = []
    while reader.pos < reader.size:
        start = reader.pos
        field, wire = reader.tag()
        if field == _MODEL_GRAPH and wire == _BYTES:
            length = reader.length()
            body = _graph(reader, reader.pos + length, payloads, min_bytes)
            out.append(_tag(field, wire) + _varint(len(body)) + body)
        else:
            reader.skip(wire)
            out.append(reader.bytes_from(start))
    return Split(b"".join(out), payloads)


def _graph(reader: _Reader, end: int, payloads: dict[int, Payload], min_bytes: int) -> bytes:
    out: list[bytes] = []
    while reader.pos < end:
        start = reader.pos
        field, wire = reader.tag()
        if field == _GRAPH_INITIALIZER and wire == _BYTES:
            length = reader.length()
            if length < min_bytes:
                reader.seek(reader.pos + length, end)
                out.append(reader.bytes_from(start))
            else:
                body = _tensor(reader, reader.pos + length, payloads, min_bytes)
                out.append(_tag(field, wire) + _varint(len(body)) + body)
            reader.index += 1
        else:
            reader.skip(wire, end)
            out.append(reader.bytes_from(start))
    if reader.pos != end:
        raise NotWalkable("a field runs past the end of the graph")
    return b"".join(out)


def _tensor(reader: _Reader, end: int, payloads: dict[int, Payload], min_bytes: int) -> bytes:
    """The tensor's bytes, less its raw_data when that is split off."""
    begin = reader.pos
    kept: list[tuple[int, int]] = []  # byte ranges of the fields other than raw_data
    raw: tuple[int, int] | None = None  # the last raw_data wins, as in protobuf
    fields: set[int] = set()
    data_type = location = 0
    while reader.pos < end:
        start = reader.pos
        field, wire = reader.tag()
        fields.add(field)
        if field == _TENSOR_RAW_DATA and wire == _BYTES:
            length = reader.length()
            raw = (reader.pos, length)
            reader.seek(reader.pos + length, end)
            continue
        if field in (_TENSOR_DATA_TYPE, _TENSOR_DATA_LOCATION) and wire == _VARINT:
            value = reader.varint()
            data_type, location = (
                (value, location) if field == _TENSOR_DATA_TYPE else (data_type, value)
            )
        else:
            reader.skip(wire, end)
        kept.append((start, reader.pos))
    if reader.pos != end:
        raise NotWalkable("a field runs past the end of a tensor")
    dtype = DTYPES.get(data_type)
    plain = fields <= _TENSOR_PLAIN_FIELDS and location == 0 and dtype is not None
    if raw is None or raw[1] < min_bytes or not plain:
        return reader.read_range(begin, end)
    assert dtype is not None
    payloads[reader.index] = Payload(raw[0], raw[1], dtype)
    return b"".join(reader.read_range(a, b) for a, b in kept)


def read_payload(f: BinaryIO, payload: Payload, dims: list[int], what: str) -> np.ndarray:
    """The payload as a native-endian array of shape `dims`, read straight into
    its memory. Raises ValueError (one line, starting with `what`) when the dims
    do not match the payload or the file is shorter than it was."""
    itemsize = payload.dtype.itemsize
    if any(d < 0 for d in dims) or math.prod(dims) * itemsize != payload.nbytes:
        raise ValueError(
            f"{what}: {payload.nbytes} bytes of data do not make a {payload.dtype.name} "
            f"tensor of shape {list(dims)}"
        )
    array = np.empty(payload.nbytes // itemsize, dtype=payload.dtype)
    view = memoryview(array).cast("B")
    f.seek(payload.offset)
    done = 0
    while done < payload.nbytes:
        got = f.readinto(view[done:])
        if not got:
            raise ValueError(f"{what}: the file ended inside the tensor's data")
        done += got
    native = array.astype(payload.dtype.newbyteorder("="), copy=False)
    return native.reshape(dims)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Reader:
    """A bounds-checked cursor over the file; every read stays inside `size`."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f = f
        self.pos = f.tell()
        self.size = self.pos + size  # the end, as a file position
        self.index = 0  # of the next top-level initializer

    def _byte(self) -> int:
        if self.pos >= self.size:
            raise NotWalkable("truncated")
        data = self.f.read(1)
        if not data:
            raise NotWalkable("truncated")
        self.pos += 1
        return data[0]

    def varint(self) -> int:
        value = shift = 0
        for _ in range(10):
            byte = self._byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise NotWalkable("a varint longer than 10 bytes")

    def tag(self) -> tuple[int, int]:
        tag = self.varint()
        field, wire = tag >> 3, tag & 7
        if field == 0 or wire not in (_VARINT, _FIXED64, _BYTES, _FIXED32):
            raise NotWalkable(f"field {field} of wire type {wire}")
        return field, wire

    def length(self) -> int:
        length = self.varint()
        if length > self.size - self.pos:
            raise NotWalkable("a length past the end of the file")
        return length

    def seek(self, pos: int, end: int | None = None) -> None:
        if pos > (self.size if end is None else end):
            raise NotWalkable("a field runs past its end")
        self.f.seek(pos)
        self.pos = pos

    def skip(self, wire: int, end: int | None = None) -> None:
        if wire == _VARINT:
            self.varint()
            if end is not None and self.pos > end:
                raise NotWalkable("a field runs past its end")
        elif wire == _BYTES:
            length = self.length()
            self.seek(self.pos + length, end)
        else:
            self.seek(self.pos + (8 if wire == _FIXED64 else 4), end)

    def read_range(self, start: int, stop: int) -> bytes:
        self.f.seek(start)
        data = self.f.read(stop - start)
        if len(data) != stop - start:
            raise NotWalkable("truncated")
        self.f.seek(self.pos)
        return data

    def bytes_from(self, start: int) -> bytes:
        return self.read_range(start, self.pos)
