"""Writer for the GRIMCWB1 weight blob (format spec: runtime_c/include/grimc_rt.h)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

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


def write_blob(arrays: Sequence[np.ndarray]) -> bytearray:
    """Serialize arrays in index order, each payload 64-byte aligned.

    float32 and int32 arrays keep their type (little-endian); others become float32.
    Payloads are copied once, straight into the result (weights can be gigabytes).
    """
    payloads = [memoryview(_le(np.ascontiguousarray(a))).cast("B") for a in arrays]
    offset = _align(HEADER_BYTES + ENTRY_BYTES * len(payloads))
    table = []
    for payload in payloads:
        table.append((offset, len(payload)))
        offset = _align(offset + len(payload))
    total = offset
    out = bytearray(total)
    struct.pack_into("<8sIIQQ", out, 0, MAGIC, VERSION, len(payloads), total, 0)
    view = memoryview(out)  # slice assignment into a bytearray would copy the payload first
    for i, ((off, size), payload) in enumerate(zip(table, payloads, strict=True)):
        struct.pack_into("<QQ", out, HEADER_BYTES + ENTRY_BYTES * i, off, size)
        view[off : off + size] = payload
    return out
