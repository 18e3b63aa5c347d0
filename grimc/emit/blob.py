"""Writer for the GRIMCWB1 weight blob (format spec: runtime_c/include/grimc_rt.h)."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

import numpy as np

MAGIC = b"GRIMCWB1"
VERSION = 2
CHECKSUM_AT = 24
HEADER_BYTES = 32
ENTRY_BYTES = 16
ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _le(a: np.ndarray) -> np.ndarray:
    kind = "<i4" if a.dtype == np.int32 else "<f4"
    return a.astype(kind, copy=False)


@dataclass(frozen=True)
class Deferred:
    """A float32 blob entry computed while the blob is written, in C-order chunks
    (the panels of a packed weight): its source stays the only copy in memory.
    `chunks` reads its source arrays then, so they must not change meanwhile."""

    shape: tuple[int, ...]
    chunks: Callable[[], Iterator[np.ndarray]]
    dtype: ClassVar[np.dtype] = np.dtype(np.float32)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


Entry = np.ndarray | Deferred


def write_blob(arrays: Sequence[Entry]) -> bytes:
    """The blob of `arrays` in memory (see `stream_blob`)."""
    out = io.BytesIO()
    stream_blob(arrays, out)
    return out.getvalue()


def stream_blob(arrays: Sequence[Entry], f: BinaryIO) -> None:
    """Serialize arrays in index order to `f`, each payload 64-byte aligned.

    float32 and int32 arrays keep their type (little-endian); others become float32.
    Payloads are written straight from the arrays: the blob is never built in
    memory (weights can be gigabytes).
    """
    sizes = [a.size * 4 for a in arrays]
    offset = _align(HEADER_BYTES + ENTRY_BYTES * len(arrays))
    table = []
    for size in sizes:
        table.append((offset, size))
        offset = _align(offset + size)
    head = bytearray(table[0][0] if table else offset)
    struct.pack_into("<8sIIQQ", head, 0, MAGIC, VERSION, len(arrays), offset, 0)
    for i, entry in enumerate(table):
        struct.pack_into("<QQ", head, HEADER_BYTES + ENTRY_BYTES * i, *entry)
    start = f.tell()
    crc = 0

    def put(data: bytes | memoryview) -> None:
        nonlocal crc
        crc = zlib.crc32(data, crc)
        f.write(data)

    put(head)  # its checksum field is zero, as the checksum rule reads it
    written = len(head)
    for (off, size), array in zip(table, arrays, strict=True):
        put(bytes(off - written))
        chunks = array.chunks() if isinstance(array, Deferred) else [array]
        done = 0
        for chunk in chunks:
            data = memoryview(_le(np.ascontiguousarray(chunk))).cast("B")
            put(data)
            done += len(data)
        if done != size:
            raise ValueError(f"blob entry of {size} bytes produced {done}")
        written = off + size
    put(bytes(offset - written))
    end = f.tell()
    f.seek(start + CHECKSUM_AT)
    f.write(struct.pack("<Q", crc))
    f.seek(end)


def checksum(blob: bytes | bytearray) -> int:
    """CRC-32 of the blob with its checksum field read as zero (the runtime's rule)."""
    view = memoryview(blob)
    crc = zlib.crc32(view[:CHECKSUM_AT])
    crc = zlib.crc32(bytes(HEADER_BYTES - CHECKSUM_AT), crc)
    return zlib.crc32(view[HEADER_BYTES:], crc)


@dataclass(frozen=True)
class EntrySpec:
    """What the generated model checks of entry i when it binds the blob."""

    nbytes: int
    sha256: bytes | None
    """Pinned digest of an index array (int32): kernels index memory with it."""


def entry_specs(arrays: Sequence[Entry]) -> list[EntrySpec]:
    """Sizes of all entries, and digests of the int32 ones (as `write_blob` stores them)."""
    specs = []
    for a in arrays:
        if isinstance(a, Deferred):  # float32 weights: not pinned
            specs.append(EntrySpec(a.nbytes, None))
            continue
        payload = _le(np.ascontiguousarray(a))
        pin = hashlib.sha256(payload.tobytes()).digest() if a.dtype == np.int32 else None
        specs.append(EntrySpec(payload.nbytes, pin))
    return specs
