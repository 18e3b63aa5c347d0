"""Misusing the command line gets one line on stderr and exit status 2, and
leaves no output behind (issue 13 item 11)."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.conftest import BIN_DIR, run_tool, tool_env
from tests.frontend.helpers import model, node

MAIN = "builtin.module {{\n  func.func @main(%x: {t}) -> {t} {{\n{body}    func.return {ret} : {t}\n  }}\n}}\n"
F4 = "tensor<4xf32>"

BAD_IR = {
    "type_mismatch": (
        MAIN.format(
            t=F4, ret="%y", body='    %y = "graph.relu"(%x) : (tensor<4xf32>) -> tensor<5xf32>\n'
        ),
        "4:17: operand is used with type tensor<4xf32>, but has been previously used or "
        "defined with type tensor<5xf32>",
    ),
    "truncated": ("builtin.module {\n  func.func @main(\n", "3:1: Expected argument or type"),
    "unknown_op": ("garbage {{{", "1:9: Operation garbage is not registered"),
    "not_utf8": (b"\xff\xfe", "not a text file (not UTF-8)"),
    "int_tensor": (
        MAIN.format(t="tensor<4xi32>", ret="%x", body=""),
        "func.func has a tensor<4xi32>; grimc computes in float32 only",
    ),
    "dynamic": (
        MAIN.format(t="tensor<?xf32>", ret="%x", body=""),
        "func.func has a tensor<?xf32>; grimc needs static shapes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IR))
def test_malformed_ir_file(case: str, tmp_path: Path) -> None:
    text, expected = BAD_IR[case]
    path = tmp_path / "bad.mlir"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    proc = run_tool(["grimc", str(path), "-o", str(tmp_path / "bad.c")])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"grimc: error: {path}: {expected}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mlir"]


# --------------------------------------------------------------------------
# item 6: weights given beside an IR file are checked against the IR

WEIGHT_IR = (
    'builtin.module @model attributes {{graph.weight_store = "{npz}"}} {{\n'
    "  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {{\n"
    '    %w = graph.weight "w" : tensor<8xf32>\n'
    "    %y = graph.add %x, %w : tensor<8xf32>, tensor<8xf32> -> tensor<8xf32>\n"
    "    func.return %y : tensor<8xf32>\n  }}\n}}\n"
)


def nan_weights() -> np.ndarray:
    w = np.ones(8, np.float32)
    w[3] = np.nan
    return w


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        (np.ones(5, np.float32), "weight 'w' has shape [5]; the IR declares [8]"),
        (np.ones(8, np.int64), "weight 'w' has dtype int64; the IR needs float32"),
        (np.ones(8, np.float64), "weight 'w' has dtype float64; the IR needs float32"),
        (nan_weights(), "weight 'w' has non-finite values (NaN or Inf)"),
    ],
)
def test_ir_weights_must_match_the_ir(weights: np.ndarray, expected: str, tmp_path: Path) -> None:
    npz = tmp_path / "m.npz"
    np.savez(npz, w=weights)
    path = tmp_path / "m.mlir"
    path.write_text(WEIGHT_IR.format(npz=npz))
    proc = run_tool(["grimc", str(path), "-o", str(tmp_path / "m.c")])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"grimc: error: {path}: {expected}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mlir", "m.npz"]


def test_ir_weights_that_match_compile(tmp_path: Path) -> None:
    npz = tmp_path / "m.npz"
    np.savez(npz, w=np.ones(8, np.float32))
    path = tmp_path / "m.mlir"
    path.write_text(WEIGHT_IR.format(npz=npz))
    proc = run_tool(["grimc", str(path), "-o", str(tmp_path / "m.c")])
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# item 11: option misuse


def relu_model(tmp_path: Path) -> Path:
    path = tmp_path / "relu.onnx"
    onnx.save(model([node("Relu", ["x"], ["y"])], {"x": [1, 8]}, ["y"]), path)
    return path


def one_line_exit_2(args: list[str], tmp_path: Path, expected: str, keep: set[str]) -> None:
    proc = run_tool(["grimc", *args], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"grimc: error: {expected}\n"
    assert {p.name for p in tmp_path.iterdir()} == keep


def test_ir_dump_dir_naming_a_file(tmp_path: Path) -> None:
    src = relu_model(tmp_path)
    (tmp_path / "afile").write_text("x")
    one_line_exit_2(
        [str(src), "--ir-dump-dir", "afile", "--emit", "ir", "-o", "m.mlir"],
        tmp_path,
        "--ir-dump-dir afile: cannot create the directory (File exists)",
        {"relu.onnx", "afile"},
    )


@pytest.mark.parametrize("threads", ["2147483648", "4294967297", "1025"])
def test_threads_beyond_the_limit(threads: str, tmp_path: Path) -> None:
    src = relu_model(tmp_path)
    one_line_exit_2(
        [str(src), "--threads", threads, "-o", "m.c"],
        tmp_path,
        f"--threads {threads}: must be between 1 and 1024",
        {"relu.onnx"},
    )


# --------------------------------------------------------------------------
# item 5: `grimc run --input` binds by the original ONNX name


def test_run_binds_inputs_whose_names_collide_after_sanitizing(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    nodes = [node("Concat", ["a.b", "a_b"], ["y"], axis=0)]
    onnx.save(model(nodes, {"a.b": [4], "a_b": [4]}, ["y"]), path)
    a, b = np.arange(4, dtype=np.float32), np.full(4, 10, np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    proc = run_tool(
        ["grimc", "run", str(path), "--input", f"a.b={tmp_path / 'a.npy'}",
         "--input", f"a_b={tmp_path / 'b.npy'}", "-o", str(tmp_path / "out"), "--check"]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), np.concatenate([a, b]))
    assert "onnxruntime check: OK" in proc.stdout


def test_run_lists_the_original_names_of_an_unknown_input(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(model([node("Relu", ["a.b"], ["y"])], {"a.b": [4]}, ["y"]), path)
    np.save(tmp_path / "a.npy", np.zeros(4, np.float32))
    proc = run_tool(["grimc", "run", str(path), "--input", f"a_b={tmp_path / 'a.npy'}"])
    assert proc.returncode == 2
    assert proc.stderr == "grimc: error: --input 'a_b': no such input; inputs are 'a.b'\n"


def test_output_naming_a_directory(tmp_path: Path) -> None:
    src = relu_model(tmp_path)
    (tmp_path / "d").mkdir()
    one_line_exit_2(
        [str(src), "-o", "d"], tmp_path, "d: is a directory; -o names the output file",
        {"relu.onnx", "d"},
    )  # fmt: skip
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["-o", "m.h"], "exe output would overwrite the model's header"),
        (["-o", "m.weights.bin"], "exe output would overwrite the model's weight blob"),
        (["--emit", "c", "-o", "m.h"], "c output would overwrite the model's header"),
    ],
)
def test_output_colliding_with_a_companion_file(args: list[str], what: str, tmp_path: Path) -> None:
    src = relu_model(tmp_path)
    out = args[-1]
    one_line_exit_2(
        [str(src), *args], tmp_path, f"{out}: the {what} of the same name; choose another -o",
        {"relu.onnx"},
    )  # fmt: skip


# --------------------------------------------------------------------------
# item 7: a full file system (here: a file size limit) is a user error


def limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize(
    ("args", "named"), [(["--emit", "ir", "-o", "m.mlir"], "m.mlir.npz"), (["-o", "m.c"], "m.c")]
)
def test_full_file_system_leaves_nothing_behind(
    args: list[str], named: str, tmp_path: Path
) -> None:
    path = tmp_path / "big.onnx"
    w = np.ones(4096, np.float32)
    onnx.save(model([node("Add", ["x", "w"], ["y"])], {"x": [4096]}, ["y"], {"w": w}), path)
    proc = subprocess.run(
        [str(BIN_DIR / "grimc"), str(path), *args], capture_output=True, text=True,
        cwd=tmp_path, env=tool_env(), preexec_fn=limit_file_size, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"grimc: error: {named}: cannot write (File too large)\n"
    assert [p.name for p in tmp_path.iterdir()] == ["big.onnx"]
