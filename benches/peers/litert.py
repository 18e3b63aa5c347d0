"""LiteRT (TFLite) as a peer, in a virtualenv of its own (opt-in: ``--with-litert``).

LiteRT's converter (litert-torch: torch.export -> MLIR -> .tflite, with jax,
transformers, ...) is about 2 GB of packages that must not enter grimc's own
environment, so it lives in a virtualenv of its own (``--litert-venv``, default
``~/.cache/grimc-bench/litert-venv``; created on first use with
``pip install torch==2.13.0 litert-torch onnx``; the CPU torch wheel is pinned
first so pip does not fetch a CUDA build). The worker for a LiteRT case runs
with that venv's python: it translates the ONNX file to torch.nn
(`grimc.train.onnx_torch`), converts it with `litert_torch.convert`, and
times ai_edge_litert's Interpreter (XNNPACK delegate, ``num_threads`` = T).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

VENV_PACKAGES = ("torch==2.13.0", "litert-torch", "onnx")


def ensure_venv(venv: Path, log: Any = print) -> Path:
    """The LiteRT venv's python, creating the venv first if needed (minutes, ~2 GB)."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import litert_torch, ai_edge_litert, onnx"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    log(f"  creating the LiteRT virtualenv in {python.parent.parent} (pip, ~2 GB) ...")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(python.parent.parent)], check=True)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *VENV_PACKAGES],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 or subprocess.run(check, capture_output=True).returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["import check failed"])[-1]
        raise RuntimeError(f"LiteRT venv set-up failed: {tail}")
    return python


def convert(onnx_path: Path, out: Path, x: np.ndarray) -> Path:
    """ONNX -> torch.nn -> .tflite (cached per ONNX file)."""
    if out.exists():
        return out
    import litert_torch
    import onnx
    import torch

    from benches.peers.engines import stdout_to_stderr
    from grimc.train.onnx_torch import convert as to_torch

    module = to_torch(onnx.load(str(onnx_path)))
    with stdout_to_stderr():
        edge = litert_torch.convert(module, (torch.from_numpy(x),))
        edge.export(str(out))
    return out


def load(onnx_path: Path, threads: int, workdir: Path, input_path: Path) -> tuple[Any, dict]:
    from ai_edge_litert.interpreter import Interpreter

    from benches.peers.engines import Unavailable
    from grimc.train.onnx_torch import UnsupportedOp

    x = np.load(input_path)
    try:
        tfl = convert(onnx_path, workdir / f"{onnx_path.stem}.tflite", x)
    except UnsupportedOp as exc:
        raise Unavailable(f"ONNX->torch translation lacks op {exc}") from None
    except Exception as exc:
        from benches.peers.cases import first_line

        raise Unavailable(f"litert-torch conversion failed: {first_line(exc)}") from None
    interp = Interpreter(model_path=str(tfl), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    outs = [d["index"] for d in interp.get_output_details()]

    def run(x: np.ndarray) -> list[np.ndarray]:
        interp.set_tensor(inp, x)
        interp.invoke()
        return [interp.get_tensor(i) for i in outs]

    from importlib import metadata

    return run, {"version": metadata.version("ai-edge-litert"), "tflite_bytes": tfl.stat().st_size}
