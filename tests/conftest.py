"""Shared pytest fixtures: the console scripts of the interpreter running the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples every run (a red CI must mean a regression, not a
# new random draw); local runs keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A developer's own tuning database (grimc tune) must not change what tests compile:
# point the default at a file that does not exist (tests/tune use their own files).
os.environ["GRIMC_TUNING_DB"] = str(Path(__file__).resolve().parent / ".no-tuning-db.sqlite")

BIN_DIR = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


def tool_env() -> dict[str, str]:
    """The environment with this interpreter's bin dir first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN_DIR), env.get("PATH", "")])
    env.pop("GRIMC_DEBUG", None)
    return env


def run_tool(
    args: Sequence[str], cwd: Path | None = None, stdin: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a console script (grimc, grimc-opt, ...) and capture its output."""
    return subprocess.run(
        [str(BIN_DIR / args[0]) if (BIN_DIR / args[0]).exists() else args[0], *args[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        env=tool_env(),
        timeout=timeout,
    )


def require(found: bool, what: str, package: str, install: str | None = None) -> None:
    """Fail naming the Debian package to install (or `install`, how to get a Python
    extra); skip instead only under GRIMC_ALLOW_SKIP=1 outside CI (in CI a missing
    tool always fails)."""
    if found:
        return
    how = install or f"the Debian package {package} (apt-get install {package})"
    msg = f"{what} not found: install {how}"
    if os.environ.get("GRIMC_ALLOW_SKIP") == "1" and not os.environ.get("CI"):
        pytest.skip(msg)
    pytest.fail(msg, pytrace=False)


@pytest.fixture
def run_cli():
    return run_tool
