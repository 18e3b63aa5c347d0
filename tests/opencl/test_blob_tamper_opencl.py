"""A tampered weight blob under `--target opencl`: the index arrays are pinned as on the CPU.

The blob's CRC only catches accidents; an edit resealed with a new checksum
(blob_model.reseal) must still be refused when it changes an index array the
kernels address memory with. The OpenCL model binds the blob through the same
`grimc_blob_bind` and SHA-256 pins as the C model, so it refuses the same
edits with the same status and message, and `grimc run` reports it in one line.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from grimc.cli import main as grimc_main
from grimc.driver import compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.runner import ExeModel
from tests.adversarial.blob_model import INPUT_SHAPE, bcr_model, reseal
from tests.adversarial.test_blob_tamper import index_entries, table
from tests.opencl.clenv import require_opencl

CREATE_FAILED = "cannot create model: "


def tampered(gen: GeneratedModel, entry: int, element: int) -> bytes:
    """The model's blob with one integer of blob entry `entry` incremented, resealed."""
    blob = bytearray(gen.blob)
    off, nbytes = table(bytes(blob))[entry]
    at = off + 4 * (element % (nbytes // 4))
    (v,) = struct.unpack_from("<i", blob, at)
    struct.pack_into("<i", blob, at, v + 1)
    reseal(blob)
    return bytes(blob)


def run_harness(exe: ExeModel, blob: bytes, workdir: Path) -> subprocess.CompletedProcess[str]:
    path = workdir / "tampered.bin"
    path.write_bytes(blob)
    x = np.random.default_rng(1).standard_normal(INPUT_SHAPE).astype("<f4")
    in_dir, out_dir = workdir / "in", workdir / "out"
    in_dir.mkdir(exist_ok=True)
    out_dir.mkdir(exist_ok=True)
    x.tofile(in_dir / "input0.bin")
    return subprocess.run(
        [str(exe.exe), str(path), "1", "1", str(in_dir), str(out_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def refusal(proc: subprocess.CompletedProcess[str]) -> str:
    """The harness's create-failure message (the model's strerror)."""
    lines = [line for line in proc.stderr.splitlines() if CREATE_FAILED in line]
    assert proc.returncode == 1 and lines, f"tampered blob accepted\n{proc.stderr[-2000:]}"
    return lines[-1].split(CREATE_FAILED, 1)[1]


def test_changed_index_array_is_refused_like_the_c_path(tmp_path: Path) -> None:
    """Every index array of the OpenCL model, one integer changed and resealed: create
    fails with the C model's status for the same kind of edit."""
    require_opencl()
    model = bcr_model()
    c_gen = compile_model(model, target="generic")
    c_exe = ExeModel.build(c_gen, tmp_path / "c", target="generic")
    _, c_index = index_entries(c_gen)[0]
    c_message = refusal(run_harness(c_exe, tampered(c_gen, c_index, 0), tmp_path / "c"))

    cl_gen = compile_model(model, target="opencl")
    cl_exe = ExeModel.build(cl_gen, tmp_path / "cl", target="opencl")
    entries = index_entries(cl_gen)
    assert entries, "the OpenCL model reads no index arrays"
    for name, index in entries:
        proc = run_harness(cl_exe, tampered(cl_gen, index, -1), tmp_path / "cl")
        assert refusal(proc) == c_message, name


def test_grimc_run_reports_a_tampered_index_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`grimc run --target opencl` on a blob whose index array changed after compiling
    (written resealed where the model reads it): exit 2, one line naming the mismatch."""
    require_opencl()
    path = tmp_path / "m.onnx"
    onnx.save(bcr_model(), path)
    write_blob = GeneratedModel.write_blob

    def write_tampered(gen: GeneratedModel, out: Path) -> None:
        write_blob(gen, out)
        _, index = index_entries(gen)[0]
        out.write_bytes(tampered(gen, index, 0))

    monkeypatch.setattr(GeneratedModel, "write_blob", write_tampered)
    status = grimc_main(["run", str(path), "--target", "opencl", "-q"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2, lines
    assert len(lines) == 1, lines
    assert "weight blob does not match the model" in lines[0], lines
