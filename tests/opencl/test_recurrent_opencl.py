"""ONNX RNN / GRU / LSTM on OpenCL, dense and BCR-pruned, against onnxruntime.

The one-cell models and cases are the CPU recurrent tests' (tests/kernels:
directions, linear_before_reset, clip, initial states, peepholes,
input_forget, batches); BCR cells are pruned by `grimc.prune` exactly as
there. Tolerance rtol 1e-4 / atol 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grimc import zoo
from grimc.driver import import_model, optimize
from grimc.prune import prune_model
from tests.kernels import rnn_models as rm
from tests.kernels.test_bcr_recurrent import CASES as BCR_CASES
from tests.kernels.test_bcr_recurrent import cell_model as bcr_cell_model
from tests.opencl.bcrcases import opencl_model
from tests.opencl.clenv import tiered
from tests.opencl.clmodel import run_on_device

DENSE_CASES = {
    "rnn": rm.Case("RNN"),
    "gru_lbr0": rm.Case("GRU"),
    "gru_lbr1_b2": rm.Case("GRU", lbr=1, batch=2),
    "gru_bidi_clip_h0": rm.Case("GRU", "bidirectional", clip=0.7, initial_h=True),
    "lstm_peep_states": rm.Case("LSTM", peepholes=True, initial_h=True, initial_c=True),
    "lstm_rev_forget_b2": rm.Case("LSTM", "reverse", input_forget=1, batch=2, bias=False),
}


def check(model, tmp_path: Path, sparse: bool, **knobs) -> None:
    feeds = rm.random_inputs(model)
    want = rm.onnxruntime_outputs(model, feeds)
    module = optimize(import_model(model), target="opencl")
    gen = opencl_model(module, cell=knobs)
    steps = [k for k in gen.kernels if k.kind == "recurrent"]
    assert steps and all(k.params["sparse"] == sparse for k in steps)
    outs = run_on_device(gen, [feeds[d.name] for d in gen.inputs], tmp_path)
    got = {d.name: o for d, o in zip(gen.outputs, outs, strict=True)}
    assert set(got) == set(want)
    for name, ref in want.items():
        np.testing.assert_allclose(got[name], ref, rtol=rm.RTOL, atol=rm.ATOL, err_msg=name)


@pytest.mark.parametrize("name", tiered(DENSE_CASES, ["rnn", "gru_lbr0", "lstm_peep_states"]))
def test_dense_cells(name: str, tmp_path: Path) -> None:
    check(rm.cell_model(DENSE_CASES[name]), tmp_path, sparse=False)


@pytest.mark.parametrize(
    "name", tiered(BCR_CASES, ["rnn_fwd", "gru_rev_h0_lbr0_b3", "lstm_bidi_states_peep_clip_b3"])
)
def test_bcr_cells(name: str, tmp_path: Path) -> None:
    check(bcr_cell_model(BCR_CASES[name]), tmp_path, sparse=True)


@pytest.mark.slow
@pytest.mark.parametrize("knobs", [{"rows": 1, "local": 3}, {"rows": 16, "local": 128}])
def test_bcr_cell_knobs(knobs: dict, tmp_path: Path) -> None:
    """Rows per group and work-items per direction (fewer than the units, or more)."""
    check(bcr_cell_model(BCR_CASES["gru_bidi_clip_lbr0_b3"]), tmp_path, sparse=True, **knobs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_zoo_stacked_pruned(name: str, tmp_path: Path) -> None:
    """The zoo's two-layer cells, pruned 8x (small sizes)."""
    model = zoo.build(name, input_size=20, hidden_size=24, num_layers=2, seq_len=5, batch=1)
    pruned = prune_model(model, block=(4, 8), rate=8, min_weights=0, min_k=1).model
    check(pruned, tmp_path, sparse=True)
