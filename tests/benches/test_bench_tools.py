"""Fast tests of the benchmark tooling: the qemu plugin, callgrind counts, the report.

No timing is asserted anywhere: only that counts are exact/repeatable, that
outputs are checked, and that the report files are complete and well formed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benches import icount
from benches.qemu_plugin import build_plugin, plugin_args, read_counts
from grimc.artifacts import onnxruntime_reference
from grimc.toolchain import AARCH64_SYSROOT, ToolchainError, find_clang, find_lld, find_qemu
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]

# A loop whose dynamic instruction count is known exactly: 1 + 3n + 2 for n >= 1.
AARCH64_SPIN = r"""
#include <stdio.h>
#include <stdlib.h>
long spin(long n);
__asm__(".text\n.globl spin\n.type spin,%function\nspin:\n"
        "  mov x1, #0\n"
        "1: add x1, x1, #1\n"
        "  cmp x1, x0\n"
        "  b.lt 1b\n"
        "  mov x0, x1\n"
        "  ret\n"
        ".size spin, .-spin\n");
int main(int argc, char **argv) { printf("%ld\n", spin(atol(argv[1]))); return 0; }
"""

X86_SPIN = r"""
#include <stdio.h>
#include <stdlib.h>
long spin(long n);
__asm__(".text\n.globl spin\n.type spin,@function\nspin:\n"
        "  xorl %eax, %eax\n"
        "1: addq $1, %rax\n"
        "  cmpq %rdi, %rax\n"
        "  jl 1b\n"
        "  ret\n"
        ".size spin, .-spin\n");
int main(int argc, char **argv) { printf("%ld\n", spin(atol(argv[1]))); return 0; }
"""


def _qemu() -> Path:
    try:
        return find_qemu()
    except ToolchainError as exc:
        require(False, f"qemu-aarch64 ({exc})", "qemu-user")
        raise


def _spin_range(exe: Path) -> tuple[int, int]:
    out = subprocess.run(["nm", "-S", str(exe)], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == "spin":
            start = int(parts[0], 16)
            return start, start + int(parts[1], 16)
    raise AssertionError("no spin symbol")


@pytest.fixture(scope="module")
def aarch64_spin(tmp_path_factory) -> Path:
    _qemu()
    d = tmp_path_factory.mktemp("spin")
    (d / "spin.c").write_text(AARCH64_SPIN)
    exe = d / "spin"
    subprocess.run(
        [str(find_clang()), "--target=aarch64-linux-gnu", "-O2", "-static", "-fuse-ld=lld",
         f"--ld-path={find_lld()}", str(d / "spin.c"), "-o", str(exe)], check=True,
    )
    return exe


def _count_spin(exe: Path, n: int, tmp: Path, ranges: str) -> dict[str, int]:
    (tmp / "ranges.txt").write_text(ranges)
    counts = tmp / "counts.txt"
    counts.unlink(missing_ok=True)
    cmd = [str(_qemu()), "-L", str(AARCH64_SYSROOT),
           *plugin_args(build_plugin(), tmp / "ranges.txt", counts), str(exe), str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == str(n)
    return read_counts(counts)


@pytest.mark.parametrize("n", [1, 7, 1000, 123457])
def test_plugin_counts_known_loop_exactly(aarch64_spin: Path, tmp_path: Path, n: int) -> None:
    start, end = _spin_range(aarch64_spin)
    counts = _count_spin(aarch64_spin, n, tmp_path, f"{start:x} {end:x} spin\n")
    assert counts == {"spin": 3 * n + 3, "total": 3 * n + 3}


def test_plugin_counts_only_inside_the_range(aarch64_spin: Path, tmp_path: Path) -> None:
    start, end = _spin_range(aarch64_spin)
    # Two ranges splitting spin: its first instruction, and the loop body (add, cmp, b.lt).
    counts = _count_spin(aarch64_spin, 50, tmp_path,
                         f"{start + 4:x} {start + 16:x} body\n{start:x} {start + 4:x} entry\n")
    assert counts == {"body": 150, "entry": 1, "total": 151}
    assert end - start == 24


def test_plugin_rejects_bad_arguments(aarch64_spin: Path) -> None:
    proc = subprocess.run([str(_qemu()), "-plugin", f"{build_plugin()},bogus=1",
                           str(aarch64_spin), "3"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unknown argument 'bogus=1'" in proc.stderr


def _valgrind() -> str:
    path = shutil.which("valgrind")
    require(path is not None, "valgrind", "valgrind")
    assert path is not None
    return path


def test_callgrind_counts_known_loop_exactly(tmp_path: Path) -> None:
    valgrind = _valgrind()
    (tmp_path / "spin.c").write_text(X86_SPIN)
    exe = tmp_path / "spin"
    subprocess.run([str(find_clang()), "-O2", str(tmp_path / "spin.c"), "-o", str(exe)],
                   check=True)
    out = tmp_path / "cg.out"
    subprocess.run([valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
                    "--collect-atstart=no", "--toggle-collect=spin", str(exe), "500"],
                   capture_output=True, check=True)
    assert icount.callgrind_total(out) == 3 * 500 + 2  # xor, 500 x (add, cmp, jl), ret


def test_callgrind_count_of_a_grimc_kernel_is_repeatable(tmp_path: Path) -> None:
    _valgrind()
    import onnx

    from benches.peers.engines import compile_grimc

    model = icount.LAYERS["gemv-small"].build()
    path = tmp_path / "gemv.onnx"
    onnx.save(model, path)
    gen, _ = compile_grimc(path, 1, "dense", "host")
    x = np.random.default_rng(1).standard_normal((1, 256)).astype(np.float32)
    first, y, _ = icount.count_x86(gen, x, tmp_path / "a")
    second, _, _ = icount.count_x86(gen, x, tmp_path / "b")
    assert first == second
    macs = icount.nonzero_macs(model)
    assert macs == 256 * 128
    # At least one instruction per 8-lane FMA; far below a scalar loop's ~3 per MAC.
    assert macs / 8 <= first <= 3 * macs
    ref = onnxruntime_reference(str(path), [x])[0]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


def test_nonzero_macs_counts_zeros_out() -> None:
    from onnx import numpy_helper

    model = icount.LAYERS["conv-small"].build()
    w = next(t for t in model.graph.initializer if t.name.endswith("_w"))
    arr = numpy_helper.to_array(w).copy()
    arr[:, :16] = 0.0  # half the input channels
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    assert icount.nonzero_macs(model) == 32 * 16 * 9 * 8 * 8


def test_aarch64_kernel_count_matches_plugin_total(tmp_path: Path) -> None:
    _qemu()
    import onnx

    from benches.peers.engines import compile_grimc

    model = icount.LAYERS["gemv-small"].build()
    onnx.save(model, tmp_path / "gemv.onnx")
    gen, _ = compile_grimc(tmp_path / "gemv.onnx", 1, "dense", "aarch64")
    x = np.random.default_rng(2).standard_normal((1, 256)).astype(np.float32)
    a, y, detail = icount.count_aarch64(gen, x, tmp_path / "a")
    b, _, _ = icount.count_aarch64(gen, x, tmp_path / "b")
    assert a == b > 0
    assert sum(detail["functions"].values()) == a
    ref = onnxruntime_reference(str(tmp_path / "gemv.onnx"), [x])[0]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


# ----- the report -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_report(tmp_path_factory) -> Path:
    """A real (no fakes) quick run: small CNN, grimc + onnxruntime, dense and BCR weights."""
    out = tmp_path_factory.mktemp("report")
    cmd = [sys.executable, "-m", "benches.peers", "--models", "small_cnn", "--threads", "1",
           "--engines", "onnxruntime,grimc,grimc-bcr", "--quick", "--no-icount", "--quiet-wait", "0",
           "--out", str(out / "results"), "--cache", str(out / "cache")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[  1/" in proc.stdout  # progress is shown
    return out / "results"


def test_report_json_is_complete(small_report: Path) -> None:
    data = json.loads((small_report / "report.json").read_text())
    m = data["machine"]
    for key in ("date", "cpu", "key_flags", "usable_cores", "packages", "grimc_commit"):
        assert m[key], key
    rows = {(r["variant"], r["engine"]): r for r in data["rows"]}
    assert set(rows) == {("dense", "onnxruntime"), ("dense", "grimc"), ("bcr", "onnxruntime"),
                         ("bcr", "grimc-bcr")}
    ort = rows["dense", "onnxruntime"]
    assert ort["status"] == "ok" and ort["median_ms"] > 0 and ort["speedup_vs_ort"] == 1.0
    grimc = rows["dense", "grimc"]
    assert grimc["status"] == "ok", grimc.get("reason")
    assert grimc["check"]["ok"] and grimc["check"]["rel_err"] <= 1e-3
    assert grimc["speedup_vs_ort"] == pytest.approx(ort["median_ms"] / grimc["median_ms"],
                                                    rel=1e-3)
    for row in data["rows"]:  # every row is measured, or says why not
        assert row["status"] == "ok" or row["reason"], row
    assert any(n["engine"] == "TVM" for n in data["not_measured"])
    assert any(n["engine"] == "LiteRT" and "--with-litert" in n["reason"]
               for n in data["not_measured"])


def test_report_markdown_has_a_row_per_engine(small_report: Path) -> None:
    md = (small_report / "report.md").read_text()
    assert md.startswith("# grimc vs peer inference engines")
    table = [ln for ln in md.splitlines() if ln.startswith("| ")]
    header = table[0]
    assert header.startswith("| engine | model weights | 1T ms | 1T vs ORT |")
    cols = header.count("|")
    assert all(ln.count("|") == cols for ln in table), "ragged table"
    for label in ("| onnxruntime | dense |", "| grimc dense | dense |", "| grimc BCR | bcr |"):
        assert any(ln.startswith(label) for ln in table), label
    assert "Measured " in md and "Command: `python -m benches.peers" in md


def test_report_rerenders_from_json(small_report: Path, tmp_path: Path) -> None:
    shutil.copy(small_report / "report.json", tmp_path / "report.json")
    proc = subprocess.run([sys.executable, "-m", "benches.peers", "--render",
                           str(tmp_path / "report.json")], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.md").read_text() == (small_report / "report.md").read_text()


def test_wrong_output_is_never_counted(tmp_path: Path) -> None:
    from benches.peers import cli

    args = cli.parse_args(["--models", "small_cnn", "--out", str(tmp_path)])
    data = cli.new_report(args, "test")
    runner = cli.Runner(args, data, tmp_path)
    ref = np.linspace(-1, 1, 10, dtype=np.float32)
    for engine, y in (("onnxruntime", ref), ("mnn", ref + 0.01), ("torch", ref + 1e-6)):
        key = ("small_cnn", "dense", 1, engine)
        runner.output_path(key).parent.mkdir(parents=True, exist_ok=True)
        np.save(runner.output_path(key), y)
        row = {"model": "small_cnn", "variant": "dense", "threads": 1, "engine": engine,
               "status": "ok", "median_ms": 1.0 if engine != "mnn" else 0.1}
        runner.check(row, ref)
        runner.add_row(row)
    rows = {r["engine"]: r for r in data["rows"]}
    assert rows["mnn"]["status"] == "wrong" and rows["mnn"]["speedup_vs_ort"] is None
    assert "differs from onnxruntime" in rows["mnn"]["reason"]
    assert rows["torch"]["status"] == "ok" and rows["torch"]["speedup_vs_ort"] == 1.0


def test_torch_translation_matches_onnxruntime() -> None:
    try:
        import torch
    except ImportError:
        if os.environ.get("GRIMC_ALLOW_SKIP") == "1":
            pytest.skip("torch not installed")
        pytest.fail("torch not installed: pip install torch==2.13.0 (.ci/setup does)")

    from grimc import zoo
    from grimc.train.onnx_torch import convert

    for model, shape in ((zoo.small_cnn(), (1, 3, 32, 32)),
                         (zoo.gru(input_size=16, hidden_size=32, seq_len=5), (5, 1, 16))):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ref = onnxruntime_reference(model.SerializeToString(), [x])[0]
        with torch.inference_mode():
            y = convert(model)(torch.from_numpy(x))[0].numpy()
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
