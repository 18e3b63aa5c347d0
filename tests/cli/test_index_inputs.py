"""`grimc run` with an integer (Gather indices) input: random indices in its
range or a .npy file, checked against onnxruntime; a bad index is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.frontend.test_gather import runtime_gather_model


@pytest.fixture
def gather_path(tmp_path: Path) -> Path:
    path = tmp_path / "gather.onnx"
    onnx.save(runtime_gather_model([3], 1), path)
    return path


def test_run_check_with_random_and_given_indices(run_cli, gather_path: Path) -> None:
    proc = run_cli(["grimc", "run", str(gather_path), "--check", "-q"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout and "y: shape [4, 3, 5]" in proc.stdout
    ids = gather_path.with_name("ids.npy")
    np.save(ids, np.array([5, -6, 2], np.int64))
    proc = run_cli(["grimc", "run", str(gather_path), "--input", f"ids={ids}", "--check", "-q"])
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime check: OK" in proc.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([0, 9, 1], np.int64), "input 'ids': index 9 is out of range [-6, 6)"),
        (np.array([0.5, 1, 1]), "needs int64 integers"),
    ],
)
def test_bad_indices_are_one_line(run_cli, gather_path: Path, values: np.ndarray, message: str) -> None:
    ids = gather_path.with_name("ids.npy")
    np.save(ids, values)
    proc = run_cli(["grimc", "run", str(gather_path), "--input", f"ids={ids}", "-q"])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
