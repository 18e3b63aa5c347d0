"""The OpenCL BCR kernels (conv, matmul, recurrent), the table-driven ones
(gather, linear resize, reduce) and the index-computing ones (broadcasting
eltwise, transpose) under Oclgrind: no out-of-bounds access, uninitialized
read or data race.

Each model is built as its harness executable and run by
`oclgrind --check-api --data-races --uninitialized`, which simulates the
device and reports every invalid access. The report must be empty, the
outputs right, and the instruction counts must name every generated kernel
(proof that they ran in the simulator, not on another device). A kernel
with a deliberate out-of-bounds write shows the check can fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from grimc.driver import compile_model, import_model, optimize
from grimc.emit.codegen import GeneratedModel
from grimc.runner import ExeModel
from tests.kernels import rnn_models as rm
from tests.kernels.test_bcr_recurrent import CASES as BCR_CELLS
from tests.kernels.test_bcr_recurrent import cell_model as bcr_cell_model
from tests.kernels.test_dense_ops import CASES as DENSE
from tests.kernels.test_dense_ops import reference
from tests.kernels.test_unary_ops import CASES as UNARY
from tests.opencl.bcrcases import (
    ConvCase,
    MatMulCase,
    Sparsity,
    conv_case,
    matmul_case,
    opencl_model,
)
from tests.opencl.clenv import CLANG, INCLUDE, RUNTIME, require_oclgrind, require_opencl, tiered
from tests.opencl.test_data_movement_opencl import ALL as MOVEMENT

FLAGS = ["--check-api", "--data-races", "--uninitialized", "--inst-counts"]

CASES = {
    "conv_stride2_groups_residual": ConvCase(
        cin=6, cout=9, h=9, w=7, stride=(2, 2), pads=(1, 0, 2, 1), group=3, residual=True,
        act="relu", sparsity=Sparsity((4, 4), 0.5, 0.25),
    ),
    "conv_dilated_empty_blocks": ConvCase(
        n=2, cin=4, cout=8, h=6, w=5, dil=(2, 1), pads=(2, 1, 2, 1),
        sparsity=Sparsity((4, 8), 0.5, empty=0.3),
    ),
    "conv_everything_kept": ConvCase(h=5, w=4, sparsity=Sparsity((4, 8), 0.0, 0.0, permute=False)),
    "conv_nothing_kept": ConvCase(h=4, w=4, sparsity=Sparsity((4, 8), 1.0), residual=True),
    "gemv_row_pruned": MatMulCase(k=53, m=19, sparsity=Sparsity((8, 16), 0.75, 0.5)),
    "gemm_batch5": MatMulCase(lead=(5,), k=21, m=13, residual=True, act="sigmoid"),
}  # fmt: skip


def oclgrind(exe: list[str], log: Path) -> subprocess.CompletedProcess[str]:
    cmd = [require_oclgrind(), *FLAGS, "--log", str(log), *exe]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def recurrent_case(name: str):
    """A BCR-pruned cell of the CPU recurrent tests: (module, inputs, Y reference)."""
    model = bcr_cell_model(BCR_CELLS[name])
    feeds = rm.random_inputs(model)
    module = optimize(import_model(model), target="opencl")
    return module, feeds, rm.onnxruntime_outputs(model, feeds)["Y"]


RECURRENT = ["gru_bidi_clip_lbr0_b3", "lstm_bidi_states_peep_clip_b3"]
OPS = {
    **{name: MOVEMENT[name] for name in ("pad_reflect", "slice_steps_negative",
       "resize_linear_frac_align_corners", "reduce_sum_axes_input", "layer_norm_last_axis_bias")},
    **{name: DENSE[name] for name in ("add_per_channel", "transpose_nchw_nhwc")},
    "where_not_and_or": UNARY["where_not_and_or"],
}  # fmt: skip
"""CPU op cases whose kernels index x through blob tables or computed coordinates."""


def op_case(name: str) -> tuple[GeneratedModel, list[np.ndarray], np.ndarray]:
    case = OPS[name]()
    feeds = case.feeds()
    gen = compile_model(case.model(), target="opencl")
    return gen, [feeds[d.name] for d in gen.inputs], reference(case, feeds)[0]


@pytest.mark.parametrize(
    "name",
    tiered(
        [*CASES, *RECURRENT, *OPS],
        [
            "conv_stride2_groups_residual",
            "conv_nothing_kept",
            "gemm_batch5",
            RECURRENT[0],
            "pad_reflect",
            "add_per_channel",
        ],
    ),
)
def test_kernels_clean_under_oclgrind(name: str, tmp_path: Path) -> None:
    require_opencl()
    if name in OPS:
        gen, inputs, want = op_case(name)
    elif name in RECURRENT:
        module, feeds, want = recurrent_case(name)
        gen = opencl_model(module)
        inputs = [feeds[d.name] for d in gen.inputs]
    else:
        case = CASES[name]
        make = conv_case if isinstance(case, ConvCase) else matmul_case
        module, inputs, want = make(case, np.random.default_rng(1))
        gen = opencl_model(module)
    model = ExeModel.build(gen, tmp_path, target=gen.target)
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    out_dir.mkdir()
    for i, x in enumerate(inputs):
        x.astype("<f4").tofile(in_dir / f"input{i}.bin")
    log = tmp_path / "oclgrind.log"
    proc = oclgrind([str(model.exe), str(model.blob), "1", "1", str(in_dir), str(out_dir)], log)
    report = log.read_text() if log.exists() else ""
    assert proc.returncode == 0, proc.stderr + report
    got = np.fromfile(out_dir / "output0.bin", dtype="<f4").reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for k in gen.kernels:  # --inst-counts prints to stdout
        assert f"Instructions executed for kernel '{k.fn}'" in proc.stdout, proc.stdout[:2000]
    problems = [
        line
        for line in report.splitlines()
        if any(w in line for w in ("Invalid", "uninitialized", "race", "error", "Error"))
    ]
    assert not problems, report


OOB_SRC = r"""
#include "grimc_opencl.h"
#include <stdio.h>
static const char *SRC =
    "__kernel void oob(__global float *y) { y[get_global_id(0) + 1] = 1.0f; }\n";
int main(void) {
    grimc_cl *cl = NULL;
    char log[512];
    if (grimc_cl_create(NULL, &cl, log, sizeof log)) { fprintf(stderr, "%s\n", log); return 2; }
    cl_program p; cl_kernel k; cl_mem y; size_t g = 16;
    if (grimc_cl_build(cl, SRC, "", &p) || grimc_cl_kernel(cl, p, "oob", &k) ||
        grimc_cl_buffer(cl, 16 * sizeof(float), CL_MEM_READ_WRITE, NULL, &y) ||
        grimc_cl_arg(cl, k, 0, sizeof y, &y) || grimc_cl_launch(cl, k, 1, &g, NULL, "oob") ||
        grimc_cl_finish(cl)) return 3;
    puts(cl->platform_name);
    return 0;
}
"""


def test_oclgrind_catches_an_out_of_bounds_write(tmp_path: Path) -> None:
    """The check above is not vacuous: a one-past-the-end write is reported."""
    require_opencl()
    src = tmp_path / "oob.c"
    src.write_text(OOB_SRC)
    exe = tmp_path / "oob"
    sources = [str(p) for p in sorted((RUNTIME / "src").glob("*.c"))]
    cmd = [
        CLANG,
        "-std=c11",
        "-O1",
        f"-I{INCLUDE}",
        str(src),
        *sources,
        "-lOpenCL",
        "-lm",
        "-o",
        str(exe),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    log = tmp_path / "oclgrind.log"
    proc = oclgrind([str(exe)], log)
    assert proc.returncode == 0, proc.stderr
    assert "Oclgrind" in proc.stdout
    assert "Invalid write" in log.read_text()
