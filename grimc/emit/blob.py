"""Writer for the GRIMCWB1 weight blob (format spec: runtime_c/include/grimc_rt.h)."""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

import numpy as np

MAGIC = b"GRIMCWB1"
VERSION = 1
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
    f.write(head)
    written = len(head)
    for (off, size), array in zip(table, arrays, strict=True):
        f.write(bytes(off - written))
        chunks = array.chunks() if isinstance(array, Deferred) else [array]
        done = 0
        for chunk in chunks:
            data = memoryview(_le(np.ascontiguousarray(chunk))).cast("B")
            f.write(data)
            done += len(data)
        if done != size:
            raise ValueError(f"blob entry of {size} bytes produced {done}")
        written = off + size
    f.write(bytes(offset - written))
