"""RNN / GRU / LSTM kernels (grimc/emit/kernels/recurrent.py) against onnxruntime.

One-cell ONNX models built here cover every direction, with and without B,
initial_h / initial_c as graph inputs, peepholes, linear_before_reset 0 and 1,
clip, input_forget, batch 1..5 and hidden sizes that are no multiple of any
vector width; each runs on host (AVX2) and host-avx512 at 1 and 2 threads
and on generic (scalar C). The thread split is forced on these small cells
(MIN_PARALLEL_MACS = 0) and the test checks that it really happened. Explicit
schedules (chunk width, batch block, task count), set in the op's typed
`#sched.cell` schedule as a tuner would, run through the same template, the zoo's 2-layer GRU 153 -> 1024 runs 100 steps, the aarch64
render compiles warning-free and runs under qemu, and the vector
exp/sigmoid/tanh of grimc_simd.h are checked on every ISA.

Tolerance: rtol 1e-4, atol 1e-5 (the project default). The gate
nonlinearities are vector approximations (grimc_simd.h) with absolute errors
below 5e-7, and onnxruntime uses its own approximations, so values agree to
~1e-7 (checked in the zoo test's max error as well).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import VerifyException

from grimc import zoo
from grimc.dialects import graph
from grimc.driver import compile_model, import_model
from grimc.emit.codegen import GeneratedModel
from grimc.emit.kernel import CodegenError
from grimc.emit.kernels import recurrent
from grimc.frontend.context import FrontendError
from grimc.target import resolve_target
from grimc.transforms import schedule_select
from grimc.transforms.schedule_select import select_schedules
from tests.kernels.rnn_models import (
    ATOL,
    RTOL,
    Case,
    assert_matches_onnxruntime,
    cell_model,
    grimc_outputs,
    onnxruntime_outputs,
    random_inputs,
    set_cell_knobs,
)
from tests.tiers import spread

RUNTIME_INCLUDE = Path(recurrent.__file__).resolve().parents[3] / "runtime_c" / "include"


CASES = {
    "gru_fwd_b_lbr1": Case("GRU", lbr=1),
    "gru_rev_h0_lbr0_b3": Case(
        "GRU", "reverse", seq=5, batch=3, hidden=37, bias=False, initial_h=True
    ),
    "gru_bidi_clip_lbr0_b3": Case(
        "GRU", "bidirectional", batch=3, hidden=20, initial_h=True, clip=0.7
    ),
    "gru_bidi_clip_lbr1": Case("GRU", "bidirectional", seq=3, hidden=45, lbr=1, clip=0.4),
    "lstm_fwd_peep": Case("LSTM", hidden=9, peepholes=True),
    "lstm_bidi_states_peep_clip_b3": Case(
        "LSTM",
        "bidirectional",
        batch=3,
        hidden=17,
        initial_h=True,
        initial_c=True,
        peepholes=True,
        clip=0.9,
    ),
    "lstm_rev_forget_b2": Case("LSTM", "reverse", batch=2, hidden=37, bias=False, input_forget=1),
    "lstm_fwd_b5": Case("LSTM", seq=3, batch=5, inp=11, hidden=24, initial_c=True),
    "rnn_fwd": Case("RNN", hidden=10),
    "rnn_bidi_h0_clip_b3": Case(
        "RNN", "bidirectional", batch=3, hidden=19, bias=False, initial_h=True, clip=0.8
    ),
}


def with_knobs(
    model: onnx.ModelProto, knobs: dict[str, int], target: str = "host", threads: int = 1
) -> ModuleOp:
    """The imported model, scheduled for `target`, with `knobs` changed in its cell op's
    #sched.cell (as a tuner would)."""
    module = import_model(model)
    select_schedules(module, resolve_target(target), threads)
    cells = [op for op in module.walk() if isinstance(op, graph.RecurrentOp)]
    assert len(cells) == 1
    set_cell_knobs(cells, knobs)
    return module


def check_against_onnxruntime(
    model: onnx.ModelProto,
    workdir: Path,
    target: str,
    threads: int,
    knobs: dict[str, int] | None = None,
) -> GeneratedModel:
    source = model if knobs is None else with_knobs(model, knobs, target, threads)
    gen = compile_model(source, target=target, threads=threads)
    assert_matches_onnxruntime(model, gen, workdir, target, threads)
    return gen


FEATURES = {
    "clip": None,
    "input_forget": 0,
    "peepholes": False,
    "initial_h": False,
    "initial_c": False,
    "bias": False,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cases_exercise_their_features(name: str) -> None:
    """Every clip / input_forget / peephole / state / bias of a case changes onnxruntime's
    output, so the case really tests it."""
    case = CASES[name]
    base = onnxruntime_outputs(cell_model(case), feeds := random_inputs(cell_model(case)))["Y"]
    for field, off in FEATURES.items():
        if getattr(case, field) == off:
            continue
        other = cell_model(replace(case, **{field: off}))
        kept = {k: v for k, v in feeds.items() if k in {i.name for i in other.graph.input}}
        assert np.abs(onnxruntime_outputs(other, kept)["Y"] - base).max() > 1e-3, field


def recurrent_kernel(gen: GeneratedModel):
    kernels = [k for k in gen.kernels if k.kind == "rnn_cell"]
    assert len(kernels) == 1
    return kernels[0]


@pytest.mark.parametrize(
    "name,target,threads",
    spread(sorted(CASES), [(t, n) for t in ("host", "host-avx512") for n in (1, 2)],
           lambda c, t, n: f"{c}-{t}-{n}"),
)
def test_cell_matches_onnxruntime(
    name: str, target: str, threads: int, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(schedule_select, "MIN_PARALLEL_MACS", 0)
    case = CASES[name]
    gen = check_against_onnxruntime(cell_model(case), tmp_path, target, threads)
    k = recurrent_kernel(gen)
    tasks = k.params["ntasks"] * case.dirs
    if threads == 1:
        assert tasks == case.dirs and k.params["ntasks"] == 1
    elif case.dirs == 2 or k.params["chunks"] > 1:
        assert tasks > 1, "the thread split was not exercised"


@pytest.mark.parametrize("name", sorted(CASES))
def test_cell_generic_scalar(name: str, tmp_path) -> None:
    check_against_onnxruntime(cell_model(CASES[name]), tmp_path, "generic", 1)


SCHEDULES = [
    {"nvg": 1, "bb": 1, "ntasks": 1},
    {"nvg": 1, "bb": 2, "ntasks": 3},
    {"nvg": 3, "bb": 3, "ntasks": 2},
    {"nvg": 2, "bb": 1, "ntasks": 4},
    {"bb": 2},
]


@pytest.mark.parametrize("knobs", SCHEDULES, ids=str)
@pytest.mark.parametrize(
    "name", ["gru_bidi_clip_lbr0_b3", "lstm_bidi_states_peep_clip_b3", "rnn_bidi_h0_clip_b3"]
)
def test_hand_set_schedules(name: str, knobs: dict[str, int], tmp_path) -> None:
    """Any schedule a tuner sets in #sched.cell gives the same numbers (ntasks is cut
    to the chunk count)."""
    case = replace(CASES[name], hidden=41)
    gen = check_against_onnxruntime(cell_model(case), tmp_path, "host", 2, knobs)
    params = recurrent_kernel(gen).params
    for key, value in knobs.items():
        want = min(value, params["chunks"]) if key == "ntasks" else value
        assert params[key] == want, key
    assert params["chunks"] == -(-41 // (params["nvg"] * 8))


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"bb": 4}, "bb = 4 exceeds the batch 3"),
        ({"nvg": 0}, "nvg = 0 must be >= 1"),
        ({"tile": 2}, "unknown knob"),
    ],
)
def test_bad_schedules(knobs: dict[str, int], message: str) -> None:
    """A schedule knob the kernel lacks or cannot run is one clear error."""
    with pytest.raises((VerifyException, CodegenError), match=message):
        module = with_knobs(cell_model(CASES["gru_bidi_clip_lbr0_b3"]), knobs)
        compile_model(module, target="host")


def test_scratch_and_blobs(tmp_path) -> None:
    """The recurrence reads packed R, the projection packed W^T + folded bias; the
    kernel's scratch is an arena buffer live at that kernel only."""
    case = CASES["gru_fwd_b_lbr1"]
    gen = compile_model(cell_model(case), target="host")
    k = recurrent_kernel(gen)
    assert [n for n, _ in k.inputs] == ["x", "wp", "wb", "rp", "rb"]
    assert [n for n, _ in k.outputs] == ["y", "y_h", "scratch"]
    scratch = gen.buffers[k.outputs[-1][1].buffer]
    index = gen.kernels.index(k)
    assert (scratch.first, scratch.last) == (index, index)
    assert scratch.nbytes == 4 * k.params["scratch"]["total"]
    assert k.params["proj"].fn == f"{k.fn}_proj"
    assert f"static void {k.fn}_proj(" in gen.source


def test_pack_recurrence_layout() -> None:
    """Panel [chunk][k][gate][u] of phase p holds R[gate*H + chunk*u + i, k], zero padded."""
    hidden, u = 5, 4
    cell = recurrent.Cell("gru", 3, ((0, 1), (2,)), ())
    r = np.arange(2 * 3 * hidden * hidden, dtype=np.float32).reshape(2, 3 * hidden, hidden)
    flat, offsets = recurrent.pack_recurrence(r, cell, hidden, u)
    chunks = 2
    assert offsets == [0, chunks * hidden * 2 * u, chunks * hidden * 3 * u]
    per_dir = flat.reshape(2, -1)
    for d in range(2):
        phase1 = per_dir[d, offsets[1] :].reshape(chunks, hidden, 1, u)
        phase0 = per_dir[d, : offsets[1]].reshape(chunks, hidden, 2, u)
        for c in range(chunks):
            for i in range(u):
                unit = c * u + i
                for gi, g in enumerate((0, 1)):
                    want = r[d, g * hidden + unit] if unit < hidden else np.zeros(hidden)
                    np.testing.assert_array_equal(phase0[c, :, gi, i], want)
                want = r[d, 2 * hidden + unit] if unit < hidden else np.zeros(hidden)
                np.testing.assert_array_equal(phase1[c, :, 0, i], want)


def test_deterministic() -> None:
    model = cell_model(CASES["lstm_bidi_states_peep_clip_b3"])
    a = compile_model(model, target="host", threads=2)
    b = compile_model(model, target="host", threads=2)
    assert a.source == b.source and a.blob == b.blob


def test_zoo_gru_2x1024(tmp_path) -> None:
    """The GRIM paper's speech GRU: 153 -> 2 x 1024, 100 steps (linear_before_reset 1)."""
    model = zoo.gru()
    feeds = random_inputs(model)
    gen = compile_model(model, target="host-avx512", threads=2)
    got = grimc_outputs(gen, feeds, tmp_path, "host-avx512", 2)["output"]
    want = onnxruntime_outputs(model, feeds)["output"]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert float(np.max(np.abs(got - want))) < 1e-6


AARCH64_CFLAGS = [
    "--target=aarch64-linux-gnu",
    "-O3",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-std=c11",
    "-c",
]


@pytest.mark.parametrize("target", ["aarch64", "generic"])
@pytest.mark.parametrize(
    "name",
    [
        "gru_bidi_clip_lbr0_b3",
        "gru_fwd_b_lbr1",
        "lstm_bidi_states_peep_clip_b3",
        "rnn_bidi_h0_clip_b3",
    ],
)
def test_compiles_for_aarch64(name: str, target: str, tmp_path) -> None:
    """NEON and scalar renders compile warning-free for aarch64 (clang-19 -O3)."""
    gen = compile_model(cell_model(CASES[name]), target=target, threads=2)
    src = tmp_path / "model.c"
    src.write_text(gen.source)
    (tmp_path / f"{gen.prefix}.h").write_text(gen.header)
    # generic renders portable scalar C: build it for aarch64 with the NEON macro off
    flags = AARCH64_CFLAGS + (["-U__ARM_NEON"] if target == "generic" else [])
    proc = subprocess.run(
        ["clang-19", *flags, str(src), "-o", str(tmp_path / "model.o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["gru_bidi_clip_lbr0_b3", "lstm_bidi_states_peep_clip_b3"])
def test_aarch64_qemu(name: str, tmp_path) -> None:
    """NEON numerics: the aarch64 harness under qemu against onnxruntime."""
    check_against_onnxruntime(cell_model(CASES[name]), tmp_path, "aarch64", 2)


VMATH_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "grimc_simd.h"
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 0;
    float *x = malloc((size_t)n * 4), *o = malloc((size_t)n * 12);
    if (!x || !o || fread(x, 4, (size_t)n, stdin) != (size_t)n) return 1;
    for (int i = 0; i + GRIMC_VW <= n; i += GRIMC_VW) {
        gv_t v = gv_load(x + i);
        gv_store(o + i, gv_exp(v));
        gv_store(o + n + i, gv_sigmoid(v));
        gv_store(o + 2 * n + i, gv_tanh(v));
    }
    fwrite(o, 4, (size_t)n * 3, stdout);
    free(x);
    free(o);
    return 0;
}
"""
VMATH_BUILDS = {
    "avx2": (["-march=x86-64-v3"], []),
    "avx512": (["-march=x86-64-v4"], []),
    "scalar": ([], []),
    "neon": (
        ["--target=aarch64-linux-gnu", "-fuse-ld=lld", "-static"],
        ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
    ),
}


@pytest.mark.parametrize("isa", sorted(VMATH_BUILDS))
def test_vector_math(isa: str, tmp_path) -> None:
    """gv_exp / gv_sigmoid / gv_tanh (grimc_simd.h) against float64 numpy, every ISA."""
    flags, runner = VMATH_BUILDS[isa]
    src, exe = tmp_path / "vmath.c", tmp_path / "vmath"
    src.write_text(VMATH_C)
    cmd = [
        "clang-19",
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        *flags,
        f"-I{RUNTIME_INCLUDE}",
        str(src),
        "-o",
        str(exe),
        "-lm",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    special = [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        1e-30,
        -1e-30,
        88.5,
        -88.5,
        9.5,
        -9.5,
        20.0,
        -20.0,
        1e-4,
        -1e-4,
        0.5,
    ]
    x = np.concatenate(
        [np.linspace(-100, 100, 20000), np.linspace(-0.01, 0.01, 4000), special]
    ).astype(np.float32)
    n = x.size
    out = subprocess.run(
        [*runner, str(exe), str(n)], input=x.tobytes(), capture_output=True, check=True
    ).stdout
    exp, sig, tanh = np.frombuffer(out, np.float32).reshape(3, n).astype(np.float64)
    x64 = x.astype(np.float64)
    finite = np.isfinite(x64)
    inside = finite & (x64 > -87.0) & (x64 < 88.0)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(exp[inside], np.exp(x64[inside]), rtol=3e-7)
        np.testing.assert_allclose(sig[finite], 1 / (1 + np.exp(-x64[finite])), rtol=0, atol=1e-7)
    np.testing.assert_allclose(tanh[finite], np.tanh(x64[finite]), rtol=0, atol=5e-7)
    small = finite & (np.abs(x64) < 1e-2) & (x64 != 0)
    np.testing.assert_allclose(tanh[small], np.tanh(x64[small]), rtol=1e-6)
    assert np.isnan(exp[~np.isfinite(x64) & np.isnan(x64)]).all()
    assert np.isnan(sig[np.isnan(x64)]).all() and np.isnan(tanh[np.isnan(x64)]).all()
    assert sig[x64 == -np.inf][0] < 1e-37 and sig[x64 == np.inf][0] == 1.0
    assert tanh[x64 == np.inf][0] == 1.0 and tanh[x64 == -np.inf][0] == -1.0
    assert tanh[x64 == 0.0][0] == 0.0 and exp[x64 == 0.0][0] == 1.0


def test_runtime_weights_are_rejected() -> None:
    """W fed as a graph input (not a weight) is one clear import error naming node and input.

    The importer rejects it before any IR exists; the code generator keeps its own check
    for hand-written IR (`graph.rnn: operand W must be a constant weight`).
    """
    model = cell_model(CASES["rnn_fwd"])
    w = next(i for i in model.graph.initializer if i.name == "W")
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.dims)))
    model.graph.initializer.remove(w)
    with pytest.raises(FrontendError, match=r"node #0 \(RNN\): input 1 'W' .*run-time weights are not supported"):
        compile_model(model, target="host")
