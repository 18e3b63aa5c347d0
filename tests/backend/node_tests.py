"""The ONNX backend node tests, read straight out of a pinned onnx wheel.

onnx >= 1.18 wheels no longer ship `onnx/backend/test/data/node`, so the test
data comes from the onnx 1.17.0 wheel: it is downloaded once (by `.ci/setup`,
or by the tests themselves) into `.cache/onnx-node-tests/` of the checkout,
checked against a pinned SHA-256, and read with `zipfile` -- onnx 1.17 is never
installed, the installed onnx only parses the protobufs.

    python tests/backend/node_tests.py        # download the wheel into the cache
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("GRIMC_ONNX_TEST_CACHE", REPO / ".cache" / "onnx-node-tests"))
"""Where the wheel lives (gitignored); GRIMC_ONNX_TEST_CACHE overrides it."""

VERSION = "1.17.0"
# Any onnx 1.17.0 wheel holds the same test data; one fixed file is pinned so the
# download is reproducible on every machine (pip does not install it).
WHEEL = "onnx-1.17.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "4a183c6178be001bf398260e5ac2c927dc43e7746e8638d6c05c20e321f8c949"
PIP_ARGS = (
    "download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
    "--python-version", "311", "--platform", "manylinux_2_17_x86_64", "--retries", "1",
    "--timeout", "30", f"onnx=={VERSION}",
)  # fmt: skip

NODE_DIR = "onnx/backend/test/data/node/"
_DATA_SET = re.compile(r"test_data_set_(\d+)/(input|output)_(\d+)\.pb$")


class WheelUnavailable(RuntimeError):
    """The pinned wheel is not cached and could not be downloaded."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_path(download: bool = True) -> Path:
    """The cached, verified wheel; downloaded with pip when missing (and allowed)."""
    path = CACHE_DIR / WHEEL
    if path.is_file() and _sha256(path) == WHEEL_SHA256:
        return path
    if not download:
        raise WheelUnavailable(f"{path} is missing; run `python {Path(__file__).name}`")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "-q", *PIP_ARGS, "--dest", str(CACHE_DIR)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise WheelUnavailable(
            f"could not download the onnx {VERSION} wheel (ONNX node test data) into "
            f"{CACHE_DIR}: `python {' '.join(cmd[1:])}` failed: {tail[0]}"
        )
    actual = _sha256(path)
    if actual != WHEEL_SHA256:
        path.unlink()
        raise WheelUnavailable(f"{WHEEL}: SHA-256 {actual} differs from the pinned {WHEEL_SHA256}")
    return path


def _tensor(data: bytes) -> np.ndarray:
    return onnx.numpy_helper.to_array(onnx.TensorProto.FromString(data))


@dataclass
class NodeTest:
    """One node test: a model and its data sets (inputs, expected outputs)."""

    name: str
    model_bytes: bytes
    data_sets: list[tuple[list[np.ndarray | None], list[np.ndarray | None]]]

    @cached_property
    def model(self) -> onnx.ModelProto:
        return onnx.load_model_from_string(self.model_bytes)

    @property
    def op_types(self) -> frozenset[str]:
        return frozenset(n.op_type for n in self.model.graph.node)

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(n.domain or "ai.onnx" for n in self.model.graph.node)


COMPILE_TIME_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),  # W, B: "graph.conv: weights must be constant"
    "ConvTranspose": (1, 2),  # W, B
    "RNN": (1, 2, 3, 4),  # W, R, B, sequence_lens
    "GRU": (1, 2, 3, 4),
    "LSTM": (1, 2, 3, 4, 7),  # ... and the peepholes P
    "Dropout": (1, 2),  # ratio, training_mode
    "Reshape": (1,),  # shape
    "Squeeze": (1,),  # axes
    "Unsqueeze": (1,),
    "ConstantOfShape": (0,),
    "Slice": (1, 2, 3, 4),  # starts, ends, axes, steps
    "Split": (1,),  # split
    "Pad": (1, 2, 3),  # pads, constant_value, axes
    "Expand": (1,),  # shape
    "Resize": (1, 2, 3),  # roi, scales, sizes
    "LayerNormalization": (1, 2),  # scale, bias
    **dict.fromkeys(("ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean"), (1,)),  # axes
    "If": (0,),  # cond: a control input, as --input-value gives it
    "Gather": (1,),  # indices (also run at run time: RUN_TIME_INDICES in the tests)
}
"""ONNX input positions grimc needs at compile time, per op type.

grimc compiles weights, shape tensors and bounds into the model (docs/pipeline.md:
weights go to the blob, shapes are static), while the node tests feed every
tensor as a graph input. `bind_compile_time_inputs` turns exactly these into
initializers, as a deployed model carries them; everything else (activations,
Gemm/MatMul/BatchNorm/PRelu operands, initial states) stays a run-time input.
"""


def bind_compile_time_inputs(
    model: onnx.ModelProto, inputs: list[np.ndarray], run_time: tuple[str, ...] = ()
) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    """The model with COMPILE_TIME_INPUTS graph inputs made initializers, and
    the remaining run-time inputs in graph input order; the inputs of the op
    types in `run_time` stay run-time inputs."""
    graph_inputs = [vi.name for vi in model.graph.input]
    bound = {
        name
        for node in model.graph.node
        if node.domain in ("", "ai.onnx") and node.op_type not in run_time
        for i, name in enumerate(node.input)
        if name in graph_inputs and i in COMPILE_TIME_INPUTS.get(node.op_type, ())
    }
    if not bound:
        return model, list(inputs)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    data = dict(zip(graph_inputs, inputs, strict=True))
    for name in graph_inputs:
        if name in bound:
            result.graph.initializer.append(onnx.numpy_helper.from_array(data[name], name))
    if result.ir_version >= 4:  # before IR 4 every initializer is also a graph input
        del result.graph.input[:]
        result.graph.input.extend(vi for vi in model.graph.input if vi.name not in bound)
    return result, [data[name] for name in graph_inputs if name not in bound]


class NodeTestArchive:
    """The node tests inside the wheel; cheap to list, each test loaded on demand."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = zipfile.ZipFile(path)
        self._members = set(self._zip.namelist())

    def names(self) -> list[str]:
        """Every node test that has a model (sorted)."""
        found = set()
        for member in self._members:
            if member.startswith(NODE_DIR) and member.endswith("/model.onnx"):
                found.add(member[len(NODE_DIR) : -len("/model.onnx")])
        return sorted(n for n in found if n and "/" not in n)

    def model_bytes(self, name: str) -> bytes:
        return self._zip.read(f"{NODE_DIR}{name}/model.onnx")

    def load(self, name: str) -> NodeTest:
        """The model and its data sets; values of non-tensor types (sequences,
        optionals) are None, since grimc has tensors only."""
        test = NodeTest(name, self.model_bytes(name), [])
        graph = test.model.graph
        types = {"input": list(graph.input), "output": list(graph.output)}
        sets: dict[int, tuple[dict[int, np.ndarray], dict[int, np.ndarray]]] = {}
        prefix = f"{NODE_DIR}{name}/"
        for member in sorted(self._members):
            match = _DATA_SET.match(member[len(prefix) :]) if member.startswith(prefix) else None
            if match:
                index, kind, position = int(match[1]), match[2], int(match[3])
                info = types[kind][position] if position < len(types[kind]) else None
                is_tensor = info is None or info.type.HasField("tensor_type")
                ins, outs = sets.setdefault(index, ({}, {}))
                value = _tensor(self._zip.read(member)) if is_tensor else None
                (ins if kind == "input" else outs)[position] = value
        test.data_sets = [
            ([ins[i] for i in sorted(ins)], [outs[i] for i in sorted(outs)])
            for _, (ins, outs) in sorted(sets.items())
        ]
        return test

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def close(self) -> None:
        self._zip.close()


if __name__ == "__main__":
    try:
        print(wheel_path())
    except WheelUnavailable as exc:
        sys.exit(f"node_tests: {exc}")
