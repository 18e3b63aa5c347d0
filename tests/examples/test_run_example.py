"""README command 1's example: dense vs BCR vs onnxruntime, both within tolerance."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, tool_env


def test_run_example_compares_dense_bcr_and_onnxruntime() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_example.py"), "--repeat", "3"],
        capture_output=True, text=True, env=tool_env(), timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split("  ")[0].strip(): line for line in proc.stdout.splitlines()}
    for name in ("grimc dense", "grimc BCR", "onnxruntime dense", "onnxruntime on the pruned model"):
        assert name in rows, proc.stdout
    assert rows["grimc dense"].endswith("(OK)") and rows["grimc BCR"].endswith("(OK)")
    assert "grimc BCR over grimc dense" in proc.stdout and "total" in proc.stdout
