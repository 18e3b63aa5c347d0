"""`--precision` other than fp32 needs the opencl target: refused as soon as the
target is known, in one line, before the model is read or any pass runs."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from grimc import zoo
from grimc.driver import CompileOptions, compile_model
from grimc.errors import GrimcError

ONLY_OPENCL = "only --target opencl supports it"


def ir_file(run_cli, tmp_path: Path, target: str) -> Path:
    """small_cnn's optimized IR for `target` (it records the target), and its weights."""
    model = tmp_path / "m.onnx"
    onnx.save(zoo.small_cnn(), model)
    ir = tmp_path / f"{target}.mlir"
    proc = run_cli(["grimc", str(model), "--target", target, "--emit", "ir", "-o", str(ir)])
    assert proc.returncode == 0, proc.stderr
    return ir


@pytest.mark.parametrize("precision", ["fp16", "fp16-storage"])
@pytest.mark.parametrize("target", ["host", "generic", "aarch64", "native"])
def test_options_refuse_half_on_a_cpu_target(target: str, precision: str) -> None:
    with pytest.raises(GrimcError, match=f"^--precision {precision}: {ONLY_OPENCL}$"):
        CompileOptions(target=target, precision=precision)


def test_options_accept_half_on_opencl_and_unknown_targets() -> None:
    assert CompileOptions(target="opencl", precision="fp16").precision == "fp16"
    assert CompileOptions(precision="fp16-storage").target is None  # an IR file may record opencl


def test_unknown_precision_is_named() -> None:
    with pytest.raises(
        GrimcError, match="^--precision fp8: expected one of fp32, fp16-storage, fp16$"
    ):
        CompileOptions(target="opencl", precision="fp8")


@pytest.mark.parametrize("target", [["--target", "host"], []], ids=["host", "default"])
def test_cli_refuses_before_reading_the_model(run_cli, tmp_path: Path, target: list[str]) -> None:
    """The model file is not even ONNX: the precision error comes first, so no
    work (import, passes, code generation) happened before it."""
    model = tmp_path / "junk.onnx"
    model.write_bytes(b"not a model")
    out = tmp_path / "m.c"
    proc = run_cli(["grimc", str(model), "--precision", "fp16", *target, "-o", str(out)])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"grimc: error: --precision fp16: {ONLY_OPENCL}"]
    assert not out.exists() and not (tmp_path / "m.weights.bin").exists()


@pytest.mark.parametrize("command", ["run", "bench"])
@pytest.mark.parametrize("target", [["--target", "aarch64"], []], ids=["aarch64", "default"])
def test_run_and_bench_refuse_before_reading_the_model(
    run_cli, tmp_path: Path, command: str, target: list[str]
) -> None:
    model = tmp_path / "junk.onnx"
    model.write_bytes(b"not a model")
    proc = run_cli(["grimc", command, str(model), "--precision", "fp16-storage", *target])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"grimc: error: --precision fp16-storage: {ONLY_OPENCL}"
    ]


def test_ir_file_recording_a_cpu_target_refuses_half(run_cli, tmp_path: Path) -> None:
    """An IR file names its own target; fp16 storage for one recorded for host is
    refused when the driver reads that target, before the pipeline runs."""
    ir = ir_file(run_cli, tmp_path, "host")
    out = tmp_path / "m.c"
    proc = run_cli(["grimc", str(ir), "--precision", "fp16-storage", "-o", str(out)])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"grimc: error: --precision fp16-storage: {ONLY_OPENCL}"
    ]
    assert not out.exists()
    with pytest.raises(GrimcError, match=ONLY_OPENCL):
        compile_model(ir, precision="fp16-storage")


def test_ir_file_recording_opencl_compiles_half(run_cli, tmp_path: Path) -> None:
    ir = ir_file(run_cli, tmp_path, "opencl")
    gen = compile_model(ir, precision="fp16-storage")
    assert gen.target == "opencl" and "fp16 storage" in gen.source.splitlines()[0]


def test_onnx_model_proto_without_target_refuses_half() -> None:
    with pytest.raises(GrimcError, match=ONLY_OPENCL):
        compile_model(onnx.ModelProto(), precision="fp16")
