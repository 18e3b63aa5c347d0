"""Writer for the GRIMCWB1 weight blob (format spec: runtime_c/include/grimc_rt.h)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

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


def write_blob(arrays: Sequence[np.ndarray]) -> bytes:
    """Serialize arrays in index order, each payload 64-byte aligned.

    float32 and int32 arrays keep their type (little-endian); others become float32.
    """
    payloads = [_le(np.ascontiguousarray(a)).tobytes() for a in arrays]
    offset = _align(HEADER_BYTES + ENTRY_BYTES * len(payloads))
    table = []
    for payload in payloads:
        table.append((offset, len(payload)))
        offset = _align(offset + len(payload))
    total = offset
    out = bytearray(total)
    struct.pack_into("<8sIIQQ", out, 0, MAGIC, VERSION, len(payloads), total, 0)
    for i, ((off, size), payload) in enumerate(zip(table, payloads, strict=True)):
        struct.pack_into("<QQ", out, HEADER_BYTES + ENTRY_BYTES * i, off, size)
        out[off : off + size] = payload
    struct.pack_into("<Q", out, CHECKSUM_AT, checksum(out))
    return bytes(out)


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


def entry_specs(arrays: Sequence[np.ndarray]) -> list[EntrySpec]:
    """Sizes of all entries, and digests of the int32 ones (as `write_blob` stores them)."""
    specs = []
    for a in arrays:
        payload = _le(np.ascontiguousarray(a))
        pin = hashlib.sha256(payload.tobytes()).digest() if a.dtype == np.int32 else None
        specs.append(EntrySpec(payload.nbytes, pin))
    return specs
