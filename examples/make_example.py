"""Write examples/small_cnn.onnx, the bundled example model (same bytes every run).

Usage: python examples/make_example.py [OUTPUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from grimc.zoo import small_cnn

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "small_cnn.onnx"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUTPUT
    data = small_cnn().SerializeToString()
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
