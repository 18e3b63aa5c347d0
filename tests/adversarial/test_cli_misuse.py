"""Misusing the command line gets one line on stderr and exit status 2, and
leaves no output behind (issue 13 item 11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.conftest import run_tool
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
