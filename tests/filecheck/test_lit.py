"""Run the lit + FileCheck suite from pytest, one case per test directory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN_DIR, tool_env

HERE = Path(__file__).parent
SUITES = sorted(p.name for p in HERE.iterdir() if p.is_dir() and any(p.glob("*.mlir")))


def test_tools_available() -> None:
    for tool in ("grimc-opt", "filecheck", "lit"):
        found = (BIN_DIR / tool).exists() or shutil.which(tool)
        assert found, f"{tool} not installed: pip install -e '.[test]'"


@pytest.mark.parametrize("suite", SUITES)
def test_filecheck_suite(suite: str) -> None:
    proc = subprocess.run(
        [str(BIN_DIR / "lit") if (BIN_DIR / "lit").exists() else "lit", "-v", str(HERE / suite)],
        capture_output=True,
        text=True,
        cwd=HERE,
        env=tool_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Passed" in proc.stdout
