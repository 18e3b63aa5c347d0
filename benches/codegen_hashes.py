"""Hashes of the code grimc generates, to check that a refactoring changes no byte.

    python -m benches.codegen_hashes --out before.json            # record
    python -m benches.codegen_hashes --out after.json --against before.json

Compiles small zoo models (dense), BCR-pruned zoo models (BCR and CSR kernels),
a hand-made odd-shaped BCR model and the bundled example, at every target and at
1 and 2 threads, and records a SHA-256 of each generated .c and weight blob.
With --against, prints every case whose code changed and exits 1 if any did.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx

from grimc import zoo
from grimc.driver import compile_model

TARGETS = ("host", "host-avx512", "aarch64", "generic")

DENSE: dict[str, Callable[[], onnx.ModelProto]] = {
    "small_cnn": lambda: zoo.small_cnn(),
    "vgg16_32": lambda: zoo.vgg16(image_size=32, width=0.125, num_classes=10),
    "resnet18_32": lambda: zoo.resnet18(image_size=32, width=0.25, num_classes=10),
    "mobilenet_v2_32": lambda: zoo.mobilenet_v2(image_size=32, width=0.25, num_classes=10),
    "gru_small": lambda: zoo.gru(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
    "lstm_small": lambda: zoo.lstm(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
    "rnn_small": lambda: zoo.rnn(input_size=13, hidden_size=24, num_layers=2, seq_len=7),
    "gru_256": lambda: zoo.gru(input_size=40, hidden_size=256, num_layers=1, seq_len=4),
}

PRUNED: dict[str, tuple[Callable[[], onnx.ModelProto], tuple[int, int], float]] = {
    "resnet18_32": (lambda: zoo.resnet18(image_size=32, width=0.5, num_classes=10), (8, 16), 6.0),
    "vgg16_32": (lambda: zoo.vgg16(image_size=32, width=0.25, num_classes=10), (8, 16), 8.0),
    "mobilenet_v2_32": (
        lambda: zoo.mobilenet_v2(image_size=32, width=1.0, num_classes=10), (4, 16), 3.0,
    ),
    "gru_small": (
        lambda: zoo.gru(input_size=40, hidden_size=64, num_layers=2, seq_len=6), (16, 32), 10.0,
    ),
    "lstm_batch": (
        lambda: zoo.lstm(input_size=64, hidden_size=64, num_layers=1, seq_len=40), (8, 16), 4.0,
    ),
    # an input beyond L2 (64 x 56 x 56 floats): the spatial loop order
    "resnet18_112": (lambda: zoo.resnet18(image_size=112, width=0.5, num_classes=10), (8, 16), 6.0),
}


def _pruned(name: str) -> onnx.ModelProto:
    from grimc.prune import prune_model

    build, block, rate = PRUNED[name]
    return prune_model(build(), block=block, rate=rate).model


def _odd() -> onnx.ModelProto:
    from tests.models.test_models import hand_pruned_odd_model

    return hand_pruned_odd_model()


def cases() -> Iterator[tuple[str, Callable[[], onnx.ModelProto], tuple[str, ...]]]:
    """(name, model, sparse formats) of every case."""
    example = Path(__file__).resolve().parent.parent / "examples" / "small_cnn.onnx"
    yield "example", lambda: onnx.load(example), ("bcr",)
    for name, build in DENSE.items():
        yield f"dense_{name}", build, ("dense",)
    for name in PRUNED:
        yield f"pruned_{name}", lambda name=name: _pruned(name), ("bcr", "csr", "dense")
    yield "hand_pruned_odd", _odd, ("bcr", "csr")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def record(only: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, build, formats in cases():
        if only and only not in name:
            continue
        model = build()
        for target in TARGETS:
            for fmt in formats:
                for threads in (1, 2):
                    gen = compile_model(model, target=target, threads=threads, sparse_format=fmt)
                    key = f"{name}/{target}/{fmt}/t{threads}"
                    out[key] = digest(gen.source.encode()) + ":" + digest(bytes(gen.blob))
                    print(key, out[key], flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--against", type=Path)
    parser.add_argument("--only", help="only cases whose name contains this")
    args = parser.parse_args()
    hashes = record(args.only)
    args.out.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    if args.against is None:
        return 0
    before = json.loads(args.against.read_text())
    changed = [k for k in hashes if k in before and before[k] != hashes[k]]
    for key in changed:
        print(f"CHANGED {key}", file=sys.stderr)
    print(f"{len(hashes)} cases, {len(changed)} changed", file=sys.stderr)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
