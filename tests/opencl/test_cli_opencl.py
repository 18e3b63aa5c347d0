"""`--target opencl` through the CLI: compile, run against onnxruntime, bench with the device profile."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from grimc import zoo
from tests.opencl.clenv import device_reports_fp16, require_opencl


@pytest.fixture
def small_cnn(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    onnx.save(zoo.small_cnn(), path)
    return path


def test_run_check_on_opencl(run_cli, small_cnn: Path) -> None:
    require_opencl()
    proc = run_cli(["grimc", "run", str(small_cnn), "--target", "opencl", "--check"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout


@pytest.mark.slow
def test_bench_profile_fp16_on_opencl(run_cli, small_cnn: Path) -> None:
    require_opencl()
    args = ["grimc", "bench", str(small_cnn), "--target", "opencl", "--repeat", "2", "--profile",
            "--precision", "fp16-storage"]  # fmt: skip
    proc = run_cli(args)
    assert proc.returncode == 0, proc.stderr
    assert "target opencl" in proc.stdout
    assert "k0_conv" in proc.stdout and "sum of kernels" in proc.stdout


@pytest.mark.slow
def test_compile_writes_c_with_embedded_kernels(run_cli, small_cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.c"
    proc = run_cli(["grimc", str(small_cnn), "--target", "opencl", "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "__kernel void k0_conv(" in text and "grimc_cl_build" in text
    assert (tmp_path / "m.h").exists() and (tmp_path / "m.weights.bin").exists()


def test_precision_needs_opencl(run_cli, small_cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.c"
    proc = run_cli(["grimc", str(small_cnn), "--precision", "fp16-storage", "-o", str(out)])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "grimc: error: --precision fp16-storage: only --target opencl supports it"
    ]
    assert not out.exists()


@pytest.mark.slow
def test_unknown_device_is_named(run_cli, small_cnn: Path, monkeypatch) -> None:
    """A selector matching no device fails creation with GRIMC_E_NO_DEVICE's message."""
    require_opencl()
    monkeypatch.setenv("GRIMC_OPENCL_DEVICE", "no-such-device-zz")
    proc = run_cli(["grimc", "run", str(small_cnn), "--target", "opencl"])
    assert proc.returncode != 0
    assert "no OpenCL platform or no matching device" in proc.stderr


def test_fp16_needs_cl_khr_fp16(run_cli, small_cnn: Path) -> None:
    """--precision fp16 runs where the device reports cl_khr_fp16; elsewhere (PoCL)
    it fails with one line naming the missing extension, exit 2."""
    require_opencl()
    proc = run_cli(["grimc", "run", str(small_cnn), "--target", "opencl", "--precision", "fp16"])
    if device_reports_fp16():
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "lacks cl_khr_fp16 (half arithmetic)" in lines[0], proc.stderr


def test_csr_has_no_opencl_kernels(run_cli, small_cnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "csr.c"
    proc = run_cli(["grimc", str(small_cnn), "--target", "opencl", "--sparse-format", "csr",
                    "-o", str(out)])  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "grimc: error: schedule-select: target opencl has no CSR kernels (use bcr or dense)"
    ]
    assert not out.exists()


def test_generated_c_says_how_to_build_it(tmp_path: Path) -> None:
    """The build commands at the top of an OpenCL model's .c link the ICD loader,
    and building the file and a main.c with them works."""
    import shlex
    import subprocess

    from grimc.driver import compile_model
    from grimc.runner import write_sources

    gen = compile_model(zoo.small_cnn(), target="opencl", prefix="net")
    write_sources(gen, tmp_path)
    head = gen.source.split("*/")[0].splitlines()
    compile_cmd, link_cmd = (line.strip(" *") for line in head if "clang" in line)
    assert link_cmd.endswith("-lOpenCL -lm")
    (tmp_path / "main.c").write_text(
        '#include "net.h"\nint main(void) { return net_num_inputs() != 1; }\n'
    )
    for cmd in (compile_cmd, link_cmd):
        proc = subprocess.run(
            shlex.split(cmd), cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, cmd + "\n" + proc.stderr
    assert subprocess.run(["./main"], cwd=tmp_path, timeout=60).returncode == 0
