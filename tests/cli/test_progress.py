"""Progress output: on a terminal only, silenced by -q, a plain line per step without tqdm."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from grimc import progress as progress_mod
from grimc.progress import Progress
from tests.conftest import BIN_DIR, REPO, run_tool, tool_env

EXAMPLE = REPO / "examples" / "small_cnn.onnx"


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as stderr does in a shell."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def not_quiet():
    progress_mod.set_quiet(False)
    yield
    progress_mod.set_quiet(False)


def _steps(stream: io.StringIO, use_tqdm: bool | None) -> str:
    with Progress(2, "passes", stream, use_tqdm=use_tqdm) as bar:
        bar.step("graph-dce")
        bar.step("bcr-detect")
    return stream.getvalue()


def test_plain_fallback_prints_one_line_per_step() -> None:
    assert _steps(Terminal(), use_tqdm=False) == "passes [1/2] graph-dce\npasses [2/2] bcr-detect\n"


def test_bar_with_tqdm() -> None:
    if not os.environ.get("CI"):  # tqdm is a test extra: CI must have it
        pytest.importorskip("tqdm")
    text = _steps(Terminal(), use_tqdm=True)
    assert "passes" in text and "bcr-detect" in text and "\r" in text


@pytest.mark.parametrize("use_tqdm", [False, None])
def test_nothing_when_not_a_terminal_or_quiet(use_tqdm: bool | None) -> None:
    assert _steps(io.StringIO(), use_tqdm) == ""
    progress_mod.set_quiet(True)
    assert _steps(Terminal(), use_tqdm) == ""


def _stderr_on_a_terminal(args: list[str]) -> str:
    """Run a console script with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24x100
    proc = subprocess.Popen(
        [str(BIN_DIR / args[0]), *args[1:]], stdout=subprocess.PIPE, stderr=slave,
        env=tool_env(),
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) == 0
    return b"".join(chunks).decode(errors="replace")


def test_compile_shows_progress_on_a_terminal_and_q_silences_it(tmp_path: Path) -> None:
    out = str(tmp_path / "net.so")
    shown = _stderr_on_a_terminal(["grimc", str(EXAMPLE), "-o", out])
    assert "passes" in shown and "graph-bn-fold" in shown and "clang" in shown
    quiet = _stderr_on_a_terminal(["grimc", str(EXAMPLE), "-o", out, "-q"])
    assert "passes" not in quiet and "clang" not in quiet
    piped = run_tool(["grimc", str(EXAMPLE), "-o", out])
    assert piped.returncode == 0, piped.stderr
    assert "passes" not in piped.stderr and "\r" not in piped.stderr
