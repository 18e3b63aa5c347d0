"""One-cell ONNX RNN / GRU / LSTM models and the onnxruntime comparison, shared by the
dense (test_recurrent.py) and BCR-sparse (test_bcr_recurrent.py) kernel tests.

Tolerance: rtol 1e-4, atol 1e-5 (the project default). The gate nonlinearities are
vector approximations (grimc_simd.h) with absolute errors below 5e-7, and
onnxruntime uses its own approximations, so values agree to ~1e-7.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from xdsl.ir import Operation

from grimc.artifacts import onnxruntime_reference
from grimc.dialects.sched import KnobsAttr
from grimc.emit.codegen import GeneratedModel
from grimc.runner import ExeModel, HostModel

RTOL, ATOL = 1e-4, 1e-5
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


@dataclass(frozen=True)
class Case:
    """One ONNX RNN/GRU/LSTM node and its inputs."""

    op: str
    direction: str = "forward"
    seq: int = 4
    batch: int = 1
    inp: int = 5
    hidden: int = 7
    bias: bool = True
    initial_h: bool = False
    initial_c: bool = False
    peepholes: bool = False
    lbr: int = 0
    clip: float | None = None
    input_forget: int = 0

    @property
    def dirs(self) -> int:
        return 2 if self.direction == "bidirectional" else 1


def cell_model(case: Case, seed: int = 0) -> onnx.ModelProto:
    """A one-node model: X (and initial states) are graph inputs, weights are initializers.
    Weights are U(-2/sqrt(H), 2/sqrt(H)) so that gates saturate now and then."""
    rng = np.random.default_rng(seed)
    g, h, d = GATES[case.op], case.hidden, case.dirs

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-2 / np.sqrt(h), 2 / np.sqrt(h), shape).astype(np.float32)

    inits = [
        numpy_helper.from_array(uniform(d, g * h, case.inp), "W"),
        numpy_helper.from_array(uniform(d, g * h, h), "R"),
    ]
    names = ["X", "W", "R", "", "", "", "", ""]
    state = [d, case.batch, h]
    graph_inputs = [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, [case.seq, case.batch, case.inp])
    ]
    if case.bias:
        inits.append(numpy_helper.from_array(uniform(d, 2 * g * h), "B"))
        names[3] = "B"
    for index, name, wanted in ((5, "initial_h", case.initial_h), (6, "initial_c", case.initial_c)):
        if wanted:
            names[index] = name
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, state))
    if case.peepholes:
        inits.append(numpy_helper.from_array(uniform(d, 3 * h), "P"))
        names[7] = "P"
    while names[-1] == "":
        names.pop()
    attrs: dict[str, object] = {"hidden_size": h, "direction": case.direction}
    if case.op == "GRU":
        attrs["linear_before_reset"] = case.lbr
    if case.op == "LSTM":
        attrs["input_forget"] = case.input_forget
    if case.clip is not None:
        attrs["clip"] = case.clip
    outs = ["Y", "Y_h"] + (["Y_c"] if case.op == "LSTM" else [])
    node = helper.make_node(case.op, names, outs, **attrs)
    shapes = {"Y": [case.seq, d, case.batch, h], "Y_h": state, "Y_c": state}
    graph = helper.make_graph(
        [node], "cell", graph_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes[o]) for o in outs], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def random_inputs(model: onnx.ModelProto, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(
            np.float32
        )
        for i in model.graph.input
    }


def onnxruntime_outputs(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    inputs = [feeds[i.name] for i in model.graph.input]
    outputs = onnxruntime_reference(model.SerializeToString(), inputs)
    return dict(zip([o.name for o in model.graph.output], outputs, strict=True))


def grimc_outputs(
    gen: GeneratedModel, feeds: dict[str, np.ndarray], workdir: Path, target: str, threads: int
) -> dict[str, np.ndarray]:
    inputs = [feeds[d.name] for d in gen.inputs]
    if target == "aarch64":
        outs = ExeModel.build(gen, workdir, target=target, threads=threads).run(inputs)
    else:
        with HostModel.build(gen, workdir, threads=threads, target=target) as model:
            outs = model.run(inputs)
    return {d.name: o for d, o in zip(gen.outputs, outs, strict=True)}


def assert_matches_onnxruntime(
    model: onnx.ModelProto, gen: GeneratedModel, workdir: Path, target: str, threads: int
) -> None:
    """The compiled model equals onnxruntime on every output (random inputs)."""
    feeds = random_inputs(model)
    got = grimc_outputs(gen, feeds, workdir, target, threads)
    want = onnxruntime_outputs(model, feeds)
    assert set(got) == set(want)
    for name, ref in want.items():
        np.testing.assert_allclose(got[name], ref, rtol=RTOL, atol=ATOL, err_msg=name)


def set_cell_knobs(ops: Iterable[Operation], knobs: dict[str, int]) -> None:
    """Change `knobs` in each cell op's recurrence schedule (`sched`, chosen by the
    schedule-select pass), as a tuner would: a knob the schedule lacks or a value out of
    range raises VerifyException."""
    for op in ops:
        sched = op.attributes["sched"]
        assert isinstance(sched, KnobsAttr)
        op.attributes["sched"] = sched.replace(**knobs)
