"""grimc as an ONNX backend (`onnx.backend.base.Backend`).

    import grimc.backend as backend
    rep = backend.prepare(model, device="CPU", target="native", threads=1)
    outputs = rep.run([x])                     # in graph output order

The host targets run the generated shared library in-process through ctypes;
`target="aarch64"` builds a static harness executable and runs it under
qemu-aarch64.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from grimc.driver import build_model


class GrimcRep(BackendRep):
    """A compiled model; keeps its build directory alive until closed."""

    def __init__(self, model: Any, workdir: Path, output_names: Sequence[str]):
        self._model = model
        self._workdir = workdir
        self.output_names = list(output_names)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            inputs = list(inputs.values())
        elif isinstance(inputs, np.ndarray):
            inputs = [inputs]
        return tuple(self._model.run(list(inputs)))

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __del__(self) -> None:
        self.close()


class GrimcBackend(Backend):
    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU

    @classmethod
    def prepare(
        cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any
    ) -> GrimcRep:
        super().prepare(model, device, **kwargs)
        target = kwargs.pop("target", None)
        threads = int(kwargs.pop("threads", 1))
        workdir = Path(tempfile.mkdtemp(prefix="grimc-backend-"))
        try:
            built = build_model(model, workdir, target=target, threads=threads, **kwargs)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        real_outputs = [o.name for o in model.graph.output]
        return GrimcRep(built, workdir, real_outputs)

    @classmethod
    def run_model(
        cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[np.ndarray, ...]:
        rep = cls.prepare(model, device, **kwargs)
        try:
            return rep.run(inputs)
        finally:
            rep.close()

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU", **kwargs: Any):
        raise NotImplementedError("grimc compiles whole models; use run_model")


prepare = GrimcBackend.prepare
run_model = GrimcBackend.run_model
run_node = GrimcBackend.run_node
supports_device = GrimcBackend.supports_device
