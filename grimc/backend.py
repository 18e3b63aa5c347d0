"""grimc as an ONNX backend (`onnx.backend.base.Backend`).

    import grimc.backend as backend
    rep = backend.prepare(model, device="CPU", target="native", threads=1)
    outputs = rep.run([x])                     # in graph output order
    outputs = rep.run({"input": x})            # bound by ONNX input name

Inputs are bound by name (a dict must name every graph input, and only
those) or by position (a list in graph input order); each must be a float32
numpy array of exactly the compiled shape, else RunError names the input.

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
from grimc.runner import RunError, check_inputs


class GrimcRep(BackendRep):
    """A compiled model; keeps its build directory alive until closed."""

    def __init__(
        self,
        model: Any,
        workdir: Path,
        input_names: Sequence[str],
        output_names: Sequence[str],
    ):
        self._model = model
        self._workdir = workdir
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if self._model is None:
            raise RunError("the model is closed")
        return tuple(self._model.run(self._bind(inputs)))

    def _bind(self, inputs: Any) -> list[np.ndarray]:
        """Inputs in graph order, checked exactly (names, count, dtype, shape)."""
        names = self.input_names
        if isinstance(inputs, dict):
            unknown = [k for k in inputs if k not in names]
            if unknown:
                raise RunError(f"unknown input '{unknown[0]}'; inputs are {', '.join(names)}")
            missing = [n for n in names if n not in inputs]
            if missing:
                raise RunError(f"missing input '{missing[0]}'; inputs are {', '.join(names)}")
            arrays = [inputs[n] for n in names]
        else:
            arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            if len(arrays) != len(names):
                raise RunError(
                    f"expected {len(names)} inputs ({', '.join(names)}), got {len(arrays)}"
                )
        return check_inputs(self._model.gen, arrays, names)

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
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> GrimcRep:
        super().prepare(model, device, **kwargs)
        target = kwargs.pop("target", None)
        threads = int(kwargs.pop("threads", 1))
        workdir = Path(tempfile.mkdtemp(prefix="grimc-backend-"))
        try:
            built = build_model(model, workdir, target=target, threads=threads, **kwargs)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        constants = {t.name for t in model.graph.initializer}
        real_inputs = [i.name for i in model.graph.input if i.name not in constants]
        if len(real_inputs) != len(built.gen.inputs):
            built.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise RunError(
                f"the compiled model has {len(built.gen.inputs)} inputs, the graph "
                f"{len(real_inputs)} ({', '.join(real_inputs)})"
            )
        real_outputs = [o.name for o in model.graph.output]
        return GrimcRep(built, workdir, real_inputs, real_outputs)

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
