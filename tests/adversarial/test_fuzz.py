"""libFuzzer over the weight blob loader of a real generated BCR model.

The target (runtime_c/fuzz/fuzz_blob.c) is linked with the model of
blob_model.py under -fsanitize=fuzzer,address,undefined. CI fuzzes for a fixed
budget starting from the committed corpus (runtime_c/fuzz/corpus) plus the
freshly generated blob; any crash, sanitizer report, leak or abort fails the
test. The fast tier fuzzes 10 s; the slow tier GRIMC_FUZZ_SECONDS (default 60).
A longer run on demand:

    GRIMC_FUZZ_SECONDS=1800 pytest tests/adversarial/test_fuzz.py -k 'budget and full'

`write_corpus` regenerates the committed seeds (python -m tests.adversarial.test_fuzz)
when code generation changes the model's blob; the budget run always adds the
current blob as a seed, so stale seeds cost coverage, not correctness.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from grimc.driver import compile_model
from grimc.emit.codegen import GeneratedModel
from grimc.runner import write_sources
from grimc.toolchain import build_executable
from tests.adversarial.blob_model import bcr_model, reseal

ROOT = Path(__file__).resolve().parents[2]
FUZZ_DIR = ROOT / "runtime_c" / "fuzz"
CORPUS = FUZZ_DIR / "corpus"
PREFIX = "fuzzmodel"


def fuzz_model() -> GeneratedModel:
    return compile_model(bcr_model(), target="host", prefix=PREFIX)


def build_fuzzer(workdir: Path) -> tuple[Path, GeneratedModel]:
    """The libFuzzer binary over the generated model (clang-19, sanitizers)."""
    gen = fuzz_model()
    c_path, _, _ = write_sources(gen, workdir)
    exe = workdir / "fuzz_blob"
    build_executable(
        [c_path, FUZZ_DIR / "fuzz_blob.c"], exe, "host",
        sanitize=("fuzzer", "address", "undefined"), opt_level=1, include_dirs=[workdir],
        defines={"FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION": 1},
    )  # fmt: skip
    return exe, gen


def seeds(blob: bytes) -> dict[str, bytes]:
    """The valid blob and a few structurally interesting neighbours (resealed)."""
    out = {"valid": blob, "header_only": blob[:32], "empty": b""}
    no_entries = bytearray(blob[:64])
    struct.pack_into("<IQ", no_entries, 12, 0, 64)
    reseal(no_entries)
    out["no_entries"] = bytes(no_entries)
    return out


def write_corpus(directory: Path = CORPUS) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds(fuzz_model().blob).items():
        (directory / name).write_bytes(data)


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GeneratedModel]:
    return build_fuzzer(tmp_path_factory.mktemp("fuzz"))


def run_fuzzer(
    exe: Path, args: list[str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(cwd), "ASAN_OPTIONS": "detect_leaks=1"}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, errors="replace",
        cwd=cwd, env=env, timeout=timeout,
    )  # fmt: skip


def test_corpus_replays_cleanly(fuzzer, tmp_path: Path) -> None:
    exe, _ = fuzzer
    files = sorted(str(p) for p in CORPUS.iterdir())
    assert files
    proc = run_fuzzer(exe, files, tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert len(re.findall(r"^Executed ", proc.stderr, re.MULTILINE)) == len(files)


FAST_FUZZ_SECONDS = 10


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(FAST_FUZZ_SECONDS, id="fast"),
        pytest.param(int(os.environ.get("GRIMC_FUZZ_SECONDS", "60")), id="full",
                     marks=pytest.mark.slow),
    ],
)  # fmt: skip
def test_fuzz_budget_finds_nothing(fuzzer, tmp_path: Path, seconds: int) -> None:
    """Coverage-guided fuzzing for `seconds`: no crash, leak or sanitizer report."""
    exe, gen = fuzzer
    work = tmp_path / "corpus"
    shutil.copytree(CORPUS, work)
    (work / "fresh").write_bytes(gen.blob)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    args = [
        f"-max_total_time={seconds}",
        f"-max_len={len(gen.blob) + 256}",
        "-seed=1",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        str(work),
    ]
    proc = run_fuzzer(exe, args, tmp_path, timeout=seconds + 300)
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0 and not found, f"finding {found}:\n{proc.stderr[-6000:]}"
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    assert runs and int(runs.group(1)) > 0, proc.stderr[-2000:]


if __name__ == "__main__":
    write_corpus()
