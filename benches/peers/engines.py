"""The engines the benchmark compares, each loadable inside a worker process.

An engine turns (ONNX file, threads) into a `run()` closure that takes the
input array and returns the output arrays; everything it does before that
(compiling, converting, building sessions) is set-up and never timed. Every
peer is optional: `unavailable()` is a cheap check made in the parent (no
import), and any failure while loading becomes the row's reason.

Engines and what they run:

- ``grimc``            grimc's dense kernels (graph pipeline only)
- ``grimc-bcr``        graph + BCR pipeline, BCR kernels (``sparse_format="bcr"``)
- ``grimc-csr``        graph + BCR pipeline, the CSR baseline kernels (``"csr"``)
- ``onnxruntime``      the reference: every output is checked against it
- ``torch``            PyTorch CPU eager, through `benches.peers.onnx_torch`
- ``mnn``              MNN's CPU engine on the converted model
- ``mnn-sparse``       MNN converted with ``--detectSparseSpeedUp`` (its sparse conv engine)
- ``litert``           LiteRT (TFLite) in its own virtualenv, opt-in (``--with-litert``)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RunFn = Callable[[np.ndarray], list[np.ndarray]]


class Unavailable(Exception):
    """The engine cannot run this case; the message is the row's reason."""


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    variants: tuple[str, ...]
    modules: tuple[str, ...]  # Python modules it needs (checked without importing)
    note: str = ""

    def unavailable(self) -> str | None:
        """Why this engine cannot run at all here (a missing package), else None."""
        missing = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if missing:
            extra = " (pip install '.[bench]')" if self.name not in ("onnxruntime",) else ""
            return f"not installed: no module {', '.join(missing)}{extra}"
        return None


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("onnxruntime", "onnxruntime", ("dense", "bcr"), ("onnxruntime",),
               "reference; ORT_ENABLE_ALL, intra-op threads = T"),
        Engine("grimc", "grimc dense", ("dense",), ("grimc",), "graph pipeline, dense kernels"),
        Engine("grimc-bcr", "grimc BCR", ("bcr",), ("grimc",), "BCR pipeline, BCR kernels"),
        Engine("grimc-csr", "grimc CSR", ("bcr",), ("grimc",), "BCR pipeline, CSR baseline kernels"),
        Engine("torch", "PyTorch CPU", ("dense", "bcr"), ("torch",),
               "eager nn.Module from the same ONNX weights, inference_mode, channels_last"),
        Engine("mnn", "MNN", ("dense", "bcr"), ("MNN", "_tools"), "CPU backend, precision high"),
        Engine("mnn-sparse", "MNN sparse", ("bcr",), ("MNN", "_tools"),
               "converted with --detectSparseSpeedUp"),
        Engine("litert", "LiteRT", ("dense", "bcr"), (), "opt-in: --with-litert"),
    )
}
DEFAULT_ENGINES = tuple(e for e in ENGINES if e != "litert")


@contextlib.contextmanager
def stdout_to_stderr():
    """Converters print progress on stdout (C level too): keep the worker's stdout clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# ----- onnxruntime ------------------------------------------------------------------------


def load_onnxruntime(path: Path, threads: int, **_: Any) -> tuple[RunFn, dict]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> list[np.ndarray]:
        return sess.run(None, {name: x})

    return run, {"version": ort.__version__}


# ----- grimc ------------------------------------------------------------------------------


def _count_sparse_ops(module: Any) -> int:
    return sum(1 for op in module.walk() if op.name.startswith("bcr."))


def compile_grimc(path: Path, threads: int, mode: str, target: str) -> tuple[Any, dict]:
    """Import, optimize with grimc's default pipeline for (target, threads, mode) and
    generate C for one mode (dense, bcr, csr); raises Unavailable."""
    from grimc.driver import CompileOptions, default_passes, generate_model, import_model, optimize

    options = CompileOptions(target=target, threads=threads, sparse_format=mode)
    passes = default_passes(options)
    try:
        module = optimize(import_model(path), options)
    except Exception as exc:
        stage = "bcr passes failed" if mode != "dense" else "grimc frontend/passes failed"
        raise Unavailable(f"{stage}: {_line(exc)}") from None
    info: dict[str, Any] = {"target": target, "passes": passes}
    if mode != "dense":
        info["sparse_ops"] = _count_sparse_ops(module)
        if not info["sparse_ops"]:
            raise Unavailable("bcr-detect found no BCR layer: nothing sparse to run")
    try:
        gen = generate_model(module, options)
    except Exception as exc:
        what = f"{mode} kernels not available" if mode != "dense" else "grimc codegen failed"
        raise Unavailable(f"{what}: {_line(exc)}") from None
    info["kernels"] = len(gen.kernels)
    info["flops"] = int(gen.flops)
    return gen, info


def load_grimc(
    path: Path, threads: int, *, mode: str = "dense", target: str = "host", workdir: Path,
    **_: Any,
) -> tuple[RunFn, dict]:
    from grimc.runner import HostModel

    gen, info = compile_grimc(path, threads, mode, target)
    try:
        model = HostModel.build(gen, workdir / f"{path.stem}.grimc-{mode}-t{threads}", threads=threads,
                                target=target)
    except Exception as exc:
        raise Unavailable(f"grimc build failed: {_line(exc)}") from None

    def run(x: np.ndarray) -> list[np.ndarray]:
        return model.run([x])

    info["version"] = _grimc_version()
    return run, info


def _grimc_version() -> str:
    import grimc

    return getattr(grimc, "__version__", "?")


# ----- PyTorch ----------------------------------------------------------------------------


def load_torch(path: Path, threads: int, *, input_path: Path, **_: Any) -> tuple[RunFn, dict]:
    import onnx
    import torch

    from benches.peers.onnx_torch import UnsupportedOp, convert

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)
    try:
        module = convert(onnx.load(str(path)))
    except UnsupportedOp as exc:
        raise Unavailable(f"ONNX->torch translation lacks op {exc}") from None
    # PyTorch's CPU inference recipe for CNNs: NHWC (channels_last) lets oneDNN skip a
    # layout reorder around every conv (1.6x on ResNet-18 here); NCHW input is converted.
    image = len(np.load(input_path).shape) == 4
    fmt = torch.channels_last if image else torch.contiguous_format
    module = module.to(memory_format=fmt)

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            xt = torch.from_numpy(x).contiguous(memory_format=fmt)
            return [y.contiguous().numpy() for y in module(xt)]

    info = {"version": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
            "memory_format": "channels_last" if image else "contiguous"}
    return run, info


# ----- MNN --------------------------------------------------------------------------------


def convert_mnn(path: Path, out: Path, sparse: bool) -> Path:
    """ONNX -> .mnn with the converter's Python entry (never the mnnconvert script)."""
    if out.exists():
        return out
    import _tools

    args = ["mnnconvert", "-f", "ONNX", "--modelFile", str(path), "--MNNModel", str(out),
            "--bizCode", "grimc-bench"]
    if sparse:
        args.append("--detectSparseSpeedUp")
    with stdout_to_stderr():
        ok = _tools.mnnconvert(args)
    if not ok or not out.exists():
        raise Unavailable("MNN converter failed (see the case log)")
    return out


def load_mnn(
    path: Path, threads: int, *, sparse: bool = False, workdir: Path, **_: Any
) -> tuple[RunFn, dict]:
    """MNN's Module API (the Session API leaves the GRU's output unshaped: its loop is
    control flow, which only the Module executor runs)."""
    with stdout_to_stderr():
        import MNN
        import MNN.expr as F
        import MNN.nn as nn
    mnn_path = convert_mnn(path, workdir / f"{path.stem}{'.sparse' if sparse else ''}.mnn", sparse)
    config = {"backend": "CPU", "numThread": threads, "precision": "high"}
    runtime = nn.create_runtime_manager((config,))
    net = nn.load_module_from_file(str(mnn_path), [], [], runtime_manager=runtime)

    def run(x: np.ndarray) -> list[np.ndarray]:
        outs = net.forward([F.const(x, list(x.shape), F.NCHW)])
        return [np.array(y.read(), dtype=np.float32) for y in outs]

    info = {"version": MNN.version(), "mnn_bytes": mnn_path.stat().st_size, "api": "Module"}
    return run, info


# ----- LiteRT -----------------------------------------------------------------------------


def load_litert(
    path: Path, threads: int, *, workdir: Path, input_path: Path, **_: Any
) -> tuple[RunFn, dict]:
    """Runs inside the LiteRT virtualenv (see benches.peers.litert)."""
    from benches.peers.litert import load

    return load(path, threads, workdir, input_path)


LOADERS: dict[str, Callable[..., tuple[RunFn, dict]]] = {
    "onnxruntime": load_onnxruntime,
    "grimc": lambda p, t, **kw: load_grimc(p, t, mode="dense", **kw),
    "grimc-bcr": lambda p, t, **kw: load_grimc(p, t, mode="bcr", **kw),
    "grimc-csr": lambda p, t, **kw: load_grimc(p, t, mode="csr", **kw),
    "torch": load_torch,
    "mnn": lambda p, t, **kw: load_mnn(p, t, sparse=False, **kw),
    "mnn-sparse": lambda p, t, **kw: load_mnn(p, t, sparse=True, **kw),
    "litert": load_litert,
}


def _line(exc: BaseException) -> str:
    from benches.peers.cases import first_line

    return first_line(exc)
