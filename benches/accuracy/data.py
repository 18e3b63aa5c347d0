"""The benchmark's real data sets.

- digits: scikit-learn's 8x8 handwritten digits (1 797 images, 10 classes),
  shipped inside scikit-learn; a fixed stratified 75/25 split.
- vowels: UEA JapaneseVowels (9 speakers saying /ae/, 12 LPC cepstrum channels
  per frame, 7-29 frames; 270 train / 370 test utterances), read from the .ts
  files inside the pinned aeon wheel. The wheel is downloaded once with pip
  (no dependencies, nothing installed) into `.cache/aeon/` of the checkout
  and checked against its SHA-256:

    python -m benches.accuracy.data        # fetch the wheel into the cache
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("GRIMC_AEON_CACHE", REPO / ".cache" / "aeon"))
AEON_VERSION = "1.6.0"
WHEEL = f"aeon-{AEON_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409"
VOWELS = "aeon/datasets/data/JapaneseVowels/JapaneseVowels_{}.ts"
FRAMES = 29
"""Longest utterance; shorter ones are zero-padded in front (the GRU ends on real frames)."""


class DataUnavailable(RuntimeError):
    """The aeon wheel is not cached and could not be downloaded."""


@dataclass(frozen=True)
class Split:
    """Inputs with samples on axis 0, integer labels."""

    x: np.ndarray
    y: np.ndarray


def digits(seed: int = 0) -> tuple[Split, Split]:
    """(train, test): images [N, 1, 8, 8] scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    xa, xb, ya, yb = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return Split(xa, ya), Split(xb, yb)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def aeon_wheel(download: bool = True) -> Path:
    """The cached, verified aeon wheel (downloaded with pip --no-deps when missing)."""
    path = CACHE_DIR / WHEEL
    if path.is_file() and _sha256(path) == WHEEL_SHA256:
        return path
    if not download:
        raise DataUnavailable(f"{path} is missing; run `python -m benches.accuracy.data`")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--retries", "1", "--timeout", "30", f"aeon=={AEON_VERSION}", "--dest", str(CACHE_DIR)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataUnavailable(f"could not download {WHEEL} into {CACHE_DIR}: {tail[0]}")
    if _sha256(path) != WHEEL_SHA256:
        path.unlink()
        raise DataUnavailable(f"{WHEEL}: SHA-256 differs from the pinned {WHEEL_SHA256}")
    return path


def parse_ts(text: str) -> tuple[list[np.ndarray], np.ndarray]:
    """A multivariate, unequal-length .ts file: (series [frames, channels] each, labels)."""
    series, labels = [], []
    in_data = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *channels, label = line.split(":")
        values = [np.array([float(v) for v in c.split(",")], dtype=np.float32) for c in channels]
        series.append(np.stack(values, axis=1))
        labels.append(int(label) - 1)
    return series, np.array(labels, dtype=np.int64)


def vowels() -> tuple[Split, Split]:
    """(train, test): [N, 29, 12] frames (channels standardized on train), labels 0..8."""
    with zipfile.ZipFile(aeon_wheel()) as wheel:
        parts = [parse_ts(wheel.read(VOWELS.format(s)).decode()) for s in ("TRAIN", "TEST")]
    frames = np.concatenate(parts[0][0])
    mean, std = frames.mean(axis=0), frames.std(axis=0)

    def pad(series: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(series), FRAMES, series[0].shape[1]), dtype=np.float32)
        for i, s in enumerate(series):
            out[i, FRAMES - len(s):] = (s - mean) / std
        return out

    return tuple(Split(pad(s), y) for s, y in parts)  # type: ignore[return-value]


if __name__ == "__main__":
    print(aeon_wheel())
