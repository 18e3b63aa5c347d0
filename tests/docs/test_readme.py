"""Every ```python and ```sh snippet of README.md runs verbatim, in document order,
in one scratch folder that sees the repository's examples/ (as a fresh clone's
root would), so a snippet that uses an undefined name or a stale option fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, tool_env

README = REPO / "README.md"
FENCE = re.compile(r"^```(python|sh)\n(.*?)^```$", re.DOTALL | re.MULTILINE)

SKIPPED = {
    "bash .ci/setup && .venv/bin/python examples/run_example.py":
        "set-up installs apt and pip packages (minutes); tests/unit/test_packaging.py "
        "installs grimc and tests/examples/test_run_example.py runs the example",
    '.venv/bin/python -m pytest -m "not slow" -q -n auto': "the test suite itself",
    "bash .ci/setup                                    # once: toolchain + .venv":
        "the peer benchmark: an hour, and the bench extras (MNN, LiteRT) from the network",
    ".venv/bin/python -m benches.icount        "
    "# conv 3x3 64->64 @56x56 and GEMV 1024->3072, dense/bcr/csr":
        "minutes of qemu and callgrind counting; tests/benches runs the counter on small layers",
    ".venv/bin/python -m benches.tuning --models resnet18,mobilenet_v2,gru,gru-dense,vgg16,layers "
    "--threads 1":
        "tunes twelve models for about 40 minutes; tests/benches/test_tuning.py checks its "
        "statistics and per-layer set, tests/tune the tuner",
}


def snippets() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(README.read_text())]


def test_skip_list_names_existing_snippets() -> None:
    firsts = {code.splitlines()[0] for _, code in snippets()}
    assert set(SKIPPED) <= firsts, set(SKIPPED) - firsts


def test_readme_snippets_run_verbatim(tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    ran = 0
    for lang, code in snippets():
        if code.splitlines()[0] in SKIPPED:
            continue
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
        proc = subprocess.run(
            cmd, cwd=tmp_path, capture_output=True, text=True, env=tool_env(), timeout=900
        )
        assert proc.returncode == 0, f"README {lang} snippet failed:\n{code}\n{proc.stderr[-3000:]}"
        ran += 1
    assert ran >= 5
