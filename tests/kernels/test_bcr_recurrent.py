"""BCR-sparse RNN / GRU / LSTM kernels (grimc/emit/kernels/bcr_recurrent.py) against onnxruntime.

One-cell ONNX models whose W and R are BCR-pruned by `grimc.prune.prune_model`
(blocks 8x16, 4x16, 16x32; hidden sizes that are no multiple of any vector
width) go through the default pipeline, which must rewrite them into
bcr.gru / bcr.lstm / bcr.rnn (asserted on the IR), then run on host (AVX2) and
host-avx512 at 1 and 2 threads, in BCR and CSR form. The cases cover every
direction, B or none, initial_h / initial_c as graph inputs, peepholes,
linear_before_reset 0 and 1, clip, input_forget and batch 1 to 3. Small cells
are forced to split their steps over threads (MIN_PARALLEL_ENTRIES = 0) and
the split is checked; every lane layout q (columns per vector) runs, set in
the op's `#sched.sparse_cell`; the zoo's stacked GRU / LSTM / RNN run pruned; and a small
case runs on aarch64 under qemu (ExeModel; its build is -Werror).

Tolerance: rtol 1e-4, atol 1e-5 (the project default): the sums are short and
the gate nonlinearities are those of the dense kernels (grimc_simd.h).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import VerifyException

from grimc import zoo
from grimc.dialects import bcr
from grimc.driver import import_model, optimize
from grimc.emit.codegen import GeneratedModel
from grimc.emit.kernel import CodegenError, KernelInstance
from grimc.emit.kernels import bcr_recurrent
from grimc.prune import prune_model
from grimc.runner import ExeModel
from grimc.target import resolve_target
from grimc.transforms import schedule_select
from tests.kernels import rnn_models
from tests.kernels.rnn_models import (
    ATOL,
    RTOL,
    assert_matches_onnxruntime,
    onnxruntime_outputs,
    random_inputs,
    set_cell_knobs,
)
from tests.kernels.scheduled import generate


@dataclass(frozen=True)
class Case(rnn_models.Case):
    """A cell case with larger defaults, and how its weights are pruned."""

    inp: int = 30
    hidden: int = 37
    block: tuple[int, int] = (8, 16)
    rate: float = 8.0


CASES = {
    "gru_fwd_lbr1": Case("GRU", lbr=1),
    "gru_rev_h0_lbr0_b3": Case(
        "GRU", "reverse", seq=5, batch=3, inp=33, hidden=45, bias=False, initial_h=True,
        block=(4, 16),
    ),
    "gru_bidi_clip_lbr0_b3": Case(
        "GRU", "bidirectional", batch=3, inp=16, hidden=20, initial_h=True, clip=0.7
    ),
    "gru_bidi_clip_lbr1": Case(
        "GRU", "bidirectional", seq=3, inp=33, hidden=45, lbr=1, clip=0.4, block=(16, 32)
    ),
    "lstm_fwd_peep": Case("LSTM", inp=40, hidden=19, peepholes=True),
    "lstm_bidi_states_peep_clip_b3": Case(
        "LSTM", "bidirectional", batch=3, inp=16, hidden=20, initial_h=True, initial_c=True,
        peepholes=True, clip=0.9, block=(4, 16),
    ),
    "lstm_rev_forget_b2": Case("LSTM", "reverse", batch=2, bias=False, input_forget=1, rate=10),
    "rnn_fwd": Case("RNN", inp=33, hidden=45, block=(16, 32)),
    "rnn_bidi_h0_clip_b3": Case(
        "RNN", "bidirectional", batch=3, bias=False, initial_h=True, clip=0.8, block=(4, 16)
    ),
}  # fmt: skip


def cell_model(case: Case, seed: int = 0) -> onnx.ModelProto:
    """The one-node model (`rnn_models.cell_model`) with W and R BCR-pruned."""
    model = rnn_models.cell_model(case, seed)
    return prune_model(model, block=case.block, rate=case.rate, min_weights=0, min_k=1).model


def compile_sparse(
    model: onnx.ModelProto,
    target: str,
    threads: int,
    sparse_format: str = "bcr",
    knobs: dict[str, int] | None = None,
) -> tuple[ModuleOp, GeneratedModel]:
    """The default pipeline (asserted to go sparse), then the code generator; `knobs`
    change the cell ops' #sched.sparse_cell (as a tuner would)."""
    module = optimize(
        import_model(model), target=target, threads=threads, sparse_format=sparse_format
    )
    cells = [op for op in module.walk() if isinstance(op, bcr.RecurrentOp)]
    assert cells, "the default pipeline did not rewrite the cell into a bcr op"
    if knobs:
        set_cell_knobs(cells, knobs)
    gen = generate(module, resolve_target(target), threads=threads, sparse_format=sparse_format)
    return module, gen


def check(
    model: onnx.ModelProto,
    workdir: Path,
    target: str,
    threads: int,
    sparse_format: str = "bcr",
    knobs: dict[str, int] | None = None,
) -> list[KernelInstance]:
    """grimc == onnxruntime on every output; returns the sparse cell kernels."""
    _, gen = compile_sparse(model, target, threads, sparse_format, knobs)
    assert_matches_onnxruntime(model, gen, workdir, target, threads)
    kernels = [k for k in gen.kernels if k.kind == "bcr_recurrent"]
    assert kernels and all(k.params["format"] == sparse_format for k in kernels)
    return kernels


# --------------------------------------------------------------------------
# numerics


RUNS = [("host", 1), ("host-avx512", 2), ("host", 2), ("host-avx512", 1)]


@pytest.mark.parametrize(
    ("name", "run"),
    [
        pytest.param(
            name, run, id=f"{name}-{run}",
            marks=() if run == (i // 2) % 2 else (pytest.mark.slow,),
        )
        for i, name in enumerate(sorted(CASES))
        for run in (0, 1)
    ],
)  # fmt: skip
def test_cell_matches_onnxruntime(name: str, run: int, tmp_path, monkeypatch) -> None:
    """Each case on two of (host, host-avx512) x (1, 2 threads), all four combinations
    covered across cases; with 2 threads the step or the directions really split. The
    fast tier runs each case once, the four combinations in turn."""
    monkeypatch.setattr(schedule_select, "MIN_PARALLEL_ENTRIES", 0)
    case = CASES[name]
    target, threads = RUNS[2 * (sorted(CASES).index(name) % 2) + run]
    (k,) = check(cell_model(case), tmp_path, target, threads)
    assert k.params["q"] >= 1 and k.params["p"] * k.params["q"] == resolve_target(target).vw
    tasks = k.params["ntasks"] * case.dirs
    if threads == 1:
        assert k.params["ntasks"] == 1
    else:
        assert tasks > 1, "the thread split was not exercised"


@pytest.mark.parametrize("name", sorted(CASES))
def test_cell_csr_matches_onnxruntime(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(schedule_select, "MIN_PARALLEL_ENTRIES", 0)
    index = sorted(CASES).index(name)
    target, threads = RUNS[index % 4]
    (k,) = check(cell_model(CASES[name]), tmp_path, target, threads, "csr")
    assert k.params["proj"].kind == "csr_matmul"


@pytest.mark.parametrize(
    ("target", "knobs"),
    [
        ("host", {"q": 1, "ntasks": 3}),
        ("host", {"q": 2, "bb": 2, "sets": 1}),
        ("host", {"q": 4, "ntasks": 2}),
        ("host", {"q": 8, "bb": 1, "sets": 3}),
        ("host-avx512", {"q": 16, "bb": 2}),
        ("host-avx512", {"q": 8, "ntasks": 2, "sets": 2}),
    ],
    ids=str,
)
def test_lane_layouts(target: str, knobs: dict[str, int], tmp_path) -> None:
    """Every q (p rows x q columns per vector, folded at the end), batch block, set
    count and task split set in #sched.sparse_cell gives the same numbers."""
    (k,) = check(cell_model(CASES["gru_bidi_clip_lbr0_b3"]), tmp_path, target, 2, knobs=knobs)
    for key, value in knobs.items():
        assert k.params[key] == value, key


@pytest.mark.parametrize(
    ("cell", "block", "target", "threads", "shape", "proj"),
    [
        ("gru", (8, 16), "host-avx512", 1, (6, 1, "forward"), "bcr_gemv"),
        ("lstm", (4, 16), "host", 2, (6, 1, "forward"), "bcr_gemv"),
        ("rnn", (16, 32), "host-avx512", 2, (6, 1, "forward"), "bcr_gemv"),
        ("gru", (8, 16), "host", 2, (12, 3, "bidirectional"), "bcr_spmm"),
    ],
)
def test_zoo_models(
    cell: str, block: tuple[int, int], target: str, threads: int, shape: tuple, proj: str, tmp_path
) -> None:
    """The zoo's stacked cells (two layers, the second fed by the first), pruned 8x; few
    steps project with bcr_gemv, many (36 rows, both directions as groups) with bcr_spmm."""
    seq, batch, direction = shape
    model = getattr(zoo, cell)(
        input_size=24, hidden_size=52, num_layers=2, seq_len=seq, batch=batch, direction=direction
    )
    pruned = prune_model(model, block=block, rate=8, min_weights=0, min_k=1).model
    kernels = check(pruned, tmp_path, target, threads)
    assert len(kernels) == 2 and all(k.params["proj"].kind == proj for k in kernels)


@pytest.mark.parametrize(
    ("name", "sparse_format", "knobs"),
    [
        ("lstm_bidi_states_peep_clip_b3", "bcr", {"q": 2, "ntasks": 2}),
        ("gru_rev_h0_lbr0_b3", "bcr", {"q": 4, "bb": 2}),
        ("rnn_bidi_h0_clip_b3", "csr", {"ntasks": 3}),
    ],
)
def test_sanitizers(name: str, sparse_format: str, knobs: dict[str, int], tmp_path) -> None:
    """No out-of-bounds access or UB (ASan + UBSan harness build, 2 threads): tail
    chunks, padded list entries, masked lane loads, batch tails."""
    model = cell_model(CASES[name])
    feeds = random_inputs(model)
    _, gen = compile_sparse(model, "host", 2, sparse_format, knobs)
    exe = ExeModel.build(gen, tmp_path, target="host", threads=2, sanitize=("address", "undefined"))
    outs = exe.run([feeds[d.name] for d in gen.inputs])
    want = onnxruntime_outputs(model, feeds)
    for desc, got in zip(gen.outputs, outs, strict=True):
        np.testing.assert_allclose(got, want[desc.name], rtol=RTOL, atol=ATOL, err_msg=desc.name)


def test_generic_scalar(tmp_path) -> None:
    """Portable C (vector width 1: one row per group, no folds)."""
    (k,) = check(cell_model(CASES["lstm_bidi_states_peep_clip_b3"]), tmp_path, "generic", 1)
    assert (k.params["p"], k.params["q"]) == (1, 1)


@pytest.mark.parametrize("knobs", [None, {"q": 2}, {"q": 4}], ids=str)
def test_aarch64_qemu(knobs: dict[str, int] | None, tmp_path) -> None:
    """NEON lane helpers (merged loads, pairwise folds) under qemu; -Werror build."""
    check(cell_model(CASES["gru_bidi_clip_lbr0_b3"]), tmp_path, "aarch64", 1, knobs=knobs)


# --------------------------------------------------------------------------
# structure


@pytest.mark.parametrize("q", [1, 2, 4, 8])
def test_pack_groups_reconstructs_r(q: int) -> None:
    """Group ((d*chunks + c)*G + g)*q + j, lane i*q + s of entry e holds
    R[g*H + c*vw + j*p + i, cols[e*q + s]]; padding columns carry zeros."""
    vw, hidden, gates, dirs = 8, 21, 3, 2
    rng = np.random.default_rng(3)
    r = rng.standard_normal((dirs, gates * hidden, hidden)).astype(np.float32)
    r[rng.random(r.shape) < 0.8] = 0.0
    groups = bcr_recurrent.pack_groups(r, gates, hidden, vw, q)
    p, chunks = vw // q, -(-hidden // vw)
    back = np.zeros_like(r)
    for gid in range(len(groups.gptr) - 1):
        rest, j = divmod(gid, q)
        rest, g = divmod(rest, gates)
        d, c = divmod(rest, chunks)
        for e in range(groups.gptr[gid], groups.gptr[gid + 1]):
            lanes = groups.weights[e].reshape(p, q)
            for i in range(p):
                unit = c * vw + j * p + i
                for s in range(q):
                    col = groups.cols[e * q + s]
                    if unit >= hidden:
                        assert lanes[i, s] == 0
                    else:
                        back[d, g * hidden + unit, col] += lanes[i, s]
    np.testing.assert_array_equal(back, r)
    lengths = bcr_recurrent.list_lengths(r, gates, hidden, vw, q)
    np.testing.assert_array_equal(lengths, groups.entries)


def test_choose_q_follows_block_height() -> None:
    """8-row blocks: one block stripe per vector (q = vw/8) on AVX-512; 16-row: q = 1."""
    for block, want in (((8, 16), 2), ((16, 32), 1)):
        case = Case("GRU", hidden=64, inp=40, block=block)
        _, gen = compile_sparse(cell_model(case), "host-avx512", 1)
        (k,) = [k for k in gen.kernels if k.kind == "bcr_recurrent"]
        assert k.params["q"] == want, block


def test_deterministic_and_kernel_args() -> None:
    """Same IR -> same bytes; the kernel reads the nested projection's arrays and the
    recurrent lists; its scratch lives at this kernel only."""
    model = cell_model(CASES["gru_fwd_lbr1"])
    _, gen = compile_sparse(model, "host", 1)
    _, again = compile_sparse(model, "host", 1)
    assert gen.source == again.source and gen.blob == again.blob
    (k,) = [k for k in gen.kernels if k.kind == "bcr_recurrent"]
    names = [n for n, _ in k.inputs]
    assert names[0] == "x" and names[-4:] == ["rv", "rc", "rg", "rb"]
    assert names[1 : len(k.params["proj"].inputs)] == k.params["proj_args"]
    assert [n for n, _ in k.outputs] == ["y", "y_h", "scratch"]
    scratch = gen.buffers[k.outputs[-1][1].buffer]
    index = gen.kernels.index(k)
    assert (scratch.first, scratch.last) == (index, index)
    assert f"static void {k.fn}_proj(" in gen.source


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"bb": 4}, "bb = 4 exceeds the batch 3"),
        ({"q": 3}, "q = 3 must be a power of two <= 8"),
        ({"q": 0}, "q = 0 must be a power of two <= 8"),
        ({"sets": 0}, "sets = 0 must be >= 1"),
        ({"nvg": 2}, "unknown knob"),
    ],
)
def test_bad_schedules(knobs: dict[str, int], message: str) -> None:
    with pytest.raises((VerifyException, CodegenError), match=message):
        compile_sparse(cell_model(CASES["gru_bidi_clip_lbr0_b3"]), "host", 1, knobs=knobs)
