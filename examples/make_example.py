"""The example models, built in code with seeded weights (same bytes every run).

- `small_cnn.onnx`, committed: a tiny CNN holding every CNN op kind grimc
  handles (`python examples/make_example.py [OUTPUT]` rewrites it).
- `example_cnn()`: the model `run_example.py` compiles dense and BCR-pruned, a
  VGG-style CNN on 64x64 images with an FC head, big enough (1.8 M weights,
  0.95 GFLOP) that BCR's speedup shows; built at run time, never committed.

Usage: python examples/make_example.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

from grimc.zoo import GraphBuilder, small_cnn

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "small_cnn.onnx"


def example_cnn(seed: int = 0) -> onnx.ModelProto:
    """3x64x64 -> 10 classes: six 3x3 conv+BN+ReLU layers (32..256 channels, the
    last four worth pruning), global average pooling and a 256-1024-10 FC head."""
    b = GraphBuilder(seed)
    x = b.input("input", (1, 3, 64, 64))
    x = b.relu(b.bn(b.conv(x, 32, 3, bias=False)))  # RGB stem: stays dense (K = 27)
    x = b.relu(b.bn(b.conv(x, 64, 3, 2, bias=False)))
    x = b.relu(b.bn(b.conv(x, 128, 3, bias=False)))
    x = b.maxpool(x, 2)
    x = b.relu(b.bn(b.conv(x, 256, 3, bias=False)))
    x = b.relu(b.bn(b.conv(x, 256, 3, bias=False)))
    x = b.relu(b.bn(b.conv(x, 256, 3, bias=False)))
    x = b.relu(b.gemm(b.flatten(b.global_avgpool(x)), 1024))
    x = b.gemm(x, 10, gain=1.0)
    return b.finish(["input"], {"output": x}, "example_cnn")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUTPUT
    data = small_cnn().SerializeToString()
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
