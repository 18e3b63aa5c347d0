"""Tampered weight blobs: `<prefix>_create` returns an error, never a crash.

The model (blob_model.py) is built once with AddressSanitizer and UBSan and
run through its harness on blobs changed in every header field, every table
field, every index array kind, and by seeded random bit flips. Most edits are
"resealed" (the checksum rewritten), as a deliberate attacker would: then the
structural checks and the pinned index arrays must catch them. Float weights
may legitimately change (a new blob for the same model), so a resealed flip in
a float payload must run cleanly, and one in padding must not change the output.
"""

from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from grimc.artifacts import onnxruntime_reference
from grimc.driver import compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.runner import ExeModel
from tests.adversarial.blob_model import INPUT_SHAPE, bcr_model, reseal

SAN_ENV = {
    "ASAN_OPTIONS": "exitcode=86:detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:exitcode=87",
}
CREATE_FAILED = "cannot create model"


@dataclass
class Built:
    gen: GeneratedModel
    exe: Path
    blob: bytes
    in_dir: Path
    reference: np.ndarray
    workdir: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    workdir = tmp_path_factory.mktemp("tamper")
    model = bcr_model()
    gen = compile_model(model, target="host")
    exe = ExeModel.build(gen, workdir, target="host", sanitize=("address", "undefined"))
    x = np.random.default_rng(1).standard_normal(INPUT_SHAPE).astype(np.float32)
    in_dir = workdir / "in"
    in_dir.mkdir()
    x.astype("<f4").tofile(in_dir / "input0.bin")
    (ref,) = onnxruntime_reference(model.SerializeToString(), [x])
    return Built(gen, exe.exe, gen.blob, in_dir, ref, workdir)


def run_blob(
    b: Built, blob: bytes | bytearray, tag: str
) -> tuple[subprocess.CompletedProcess[str], np.ndarray | None]:
    """Run the sanitized harness on `blob`; the output when it ran."""
    path = b.workdir / f"{tag}.bin"
    path.write_bytes(bytes(blob))
    out_dir = b.workdir / f"out_{tag}"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "output0.bin").unlink(missing_ok=True)
    proc = subprocess.run(
        [str(b.exe), str(path), "1", "1", str(b.in_dir), str(out_dir)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **SAN_ENV},
    )  # fmt: skip
    assert "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), f"{tag}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    out = None
    if proc.returncode == 0:
        out = np.fromfile(out_dir / "output0.bin", dtype="<f4").reshape(b.reference.shape)
    path.unlink()
    return proc, out


def assert_refused(b: Built, blob: bytes | bytearray, tag: str, message: str) -> None:
    proc, _ = run_blob(b, blob, tag)
    assert proc.returncode == 1 and CREATE_FAILED in proc.stderr, f"{tag}: accepted\n{proc.stderr}"
    assert message in proc.stderr, f"{tag}: {proc.stderr}"


def table(blob: bytes) -> list[tuple[int, int]]:
    count = struct.unpack_from("<I", blob, 12)[0]
    return [struct.unpack_from("<QQ", blob, 32 + 16 * i) for i in range(count)]


def index_entries(gen: GeneratedModel) -> list[tuple[str, int]]:
    """(kernel.argument, blob index) of every int32 array the kernels read."""
    return [
        (f"{k.fn}.{name}", ref.index)
        for k in gen.kernels
        for name, ref in k.inputs
        if getattr(ref, "ctype", None) == "int32_t"
    ]


def test_intact_blob_matches_onnxruntime(built: Built) -> None:
    proc, out = run_blob(built, built.blob, "intact")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(out, built.reference, rtol=1e-4, atol=1e-5)


def test_model_has_every_index_array_kind(built: Built) -> None:
    names = {n.split(".")[1] for n, _ in index_entries(built.gen)}
    assert {"off", "seg", "gseg", "orow", "mask", "cols", "gptr", "gw"} <= names


def _index_edits() -> list[tuple[str, int, int]]:
    """(what, element, new value): one changed integer per case."""
    return [
        ("first+1", 0, 1),
        ("last+1", -1, 1),
        ("huge", 0, 1 << 30),
        ("negative", -1, -(1 << 30)),
        ("middle-1", None, -1),  # type: ignore[list-item]
    ]


@pytest.mark.parametrize(
    ("what", "element", "delta"), _index_edits(), ids=[e[0] for e in _index_edits()]
)
def test_changed_index_array_is_refused(
    built: Built, what: str, element: int | None, delta: int
) -> None:
    """One changed integer in any BCR index array: create fails (it used to write out of bounds)."""
    for name, index in index_entries(built.gen):
        off, nbytes = table(built.blob)[index]
        n = nbytes // 4
        i = n // 2 if element is None else element % n
        blob = bytearray(built.blob)
        (v,) = struct.unpack_from("<i", blob, off + 4 * i)
        new = delta if what in ("huge", "negative") else v + delta
        struct.pack_into("<i", blob, off + 4 * i, new)
        reseal(blob)
        assert_refused(built, blob, f"{name}-{what}", "does not match the model")


HEADER_EDITS = {
    "magic": (0, "<8s", b"GRIMCWB0", "bad magic"),
    "version-1": (8, "<I", 1, "unsupported weight blob version"),
    "version-big": (8, "<I", 0xFFFFFFFF, "unsupported weight blob version"),
    "count-0": (12, "<I", 0, "does not match the model"),
    "count-minus-1": (12, "<I", None, "does not match the model"),
    "count-huge": (12, "<I", 0xFFFFFFFF, "entry out of bounds"),
    "total-short": (16, "<Q", None, "trailing bytes"),
    "total-huge": (16, "<Q", (1 << 64) - 64, "truncated"),
}


@pytest.mark.parametrize("field", sorted(HEADER_EDITS))
def test_changed_header_field_is_refused(built: Built, field: str) -> None:
    at, fmt, value, message = HEADER_EDITS[field]
    blob = bytearray(built.blob)
    if value is None:
        (old,) = struct.unpack_from(fmt, blob, at)
        value = old - 1 if field.startswith("count") else old - 64
    struct.pack_into(fmt, blob, at, value)
    reseal(blob)
    assert_refused(built, blob, field, message)


def test_checksum_catches_unsealed_edits(built: Built) -> None:
    """Without resealing, any change is a checksum error, even in a float weight."""
    off, nbytes = table(built.blob)[0]
    for at in (off, off + nbytes - 1, 24, len(built.blob) - 1):
        blob = bytearray(built.blob)
        blob[at] ^= 0x10
        assert_refused(built, blob, f"unsealed-{at}", "checksum mismatch")


def test_changed_table_entry_is_refused(built: Built) -> None:
    """Every entry's offset and size: moved, aliased, overlapping, misaligned, too long."""
    entries = table(built.blob)
    for i, (off, nbytes) in enumerate(entries):
        edits = {
            "misaligned": (off + 4, nbytes, "not 64-byte aligned"),
            "past-end": (len(built.blob), nbytes, "out of bounds"),
            "size+4": (off, nbytes + 4, None),
            "size-4": (off, nbytes - 4, None),
        }
        if i > 0:
            edits["aliased"] = (entries[i - 1][0], nbytes, "out of bounds")
        if i > 0 and entries[i - 1][1] > 64:
            edits["overlapping"] = (entries[i - 1][0] + 64, nbytes, "out of bounds")
        for what, (new_off, new_n, message) in edits.items():
            blob = bytearray(built.blob)
            struct.pack_into("<QQ", blob, 32 + 16 * i, new_off, new_n)
            reseal(blob)
            proc, _ = run_blob(built, blob, f"entry{i}-{what}")
            assert proc.returncode == 1 and CREATE_FAILED in proc.stderr, f"entry {i} {what}"
            assert message is None or message in proc.stderr, proc.stderr


def _regions(b: Built) -> tuple[set[int], set[int]]:
    """Byte positions of index array payloads, and of float payloads."""
    index_at, float_at = set(), set()
    ints = {i for _, i in index_entries(b.gen)}
    for i, (off, nbytes) in enumerate(table(b.blob)):
        (index_at if i in ints else float_at).update(range(off, off + nbytes))
    return index_at, float_at


def test_random_bit_flips_error_or_run(built: Built) -> None:
    """200 seeded single-bit flips, resealed: an index/header/table flip is refused,
    a float flip runs cleanly, a padding flip leaves the output unchanged."""
    rng = np.random.default_rng(13)
    index_at, float_at = _regions(built)
    table_end = 32 + 16 * len(table(built.blob))
    refused = 0
    for k, bit in enumerate(rng.integers(0, 8 * len(built.blob), size=200)):
        at = int(bit) // 8
        if 24 <= at < 32:
            continue  # the checksum field itself: reseal overwrites it
        blob = bytearray(built.blob)
        blob[at] ^= 1 << (int(bit) % 8)
        reseal(blob)
        proc, out = run_blob(built, blob, f"flip{k}")
        if at < table_end or at in index_at:
            assert proc.returncode == 1, f"flip at byte {at} accepted"
            refused += 1
        elif at in float_at:
            assert proc.returncode == 0, proc.stderr
        else:
            assert proc.returncode == 0, proc.stderr
            np.testing.assert_allclose(out, built.reference, rtol=1e-4, atol=1e-5)
    assert refused > 0
