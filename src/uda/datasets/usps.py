"""USPS handwritten digits (Hull, 1994) in LIBSVM's bzip2'd text format, as torchvision reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from uda.datasets.base import DIGITS, DatasetSpec, Decoded, RawFile, read_compressed
from uda.io import DataError

_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"
# name: (official md5, sha256 of the mirror's copy, which MANIFEST.md says was re-derived from usps.h5)
_FILES = {
    "train": ("usps.bz2", "ec16c51db3855ca6c91edd34d0e9b197",
              "17dda8723042004b3fe6512c8769022bf7cec5322be1fb98a623d5de13b70666"),
    "test": ("usps.t.bz2", "8ea070ee2aca1ac39742fdd1ef5ed118",
             "22bb89593ed8a6c80fbd69e16bc34c935f462e7c8531a812fc3d2a141d17c298"),
}


def parse_libsvm(path: Path, n_features: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Lines 'label i:v i:v …' with 1-based indices; absent indices are 0 (the format is sparse)."""
    text = read_compressed(path).decode("ascii", errors="replace")
    rows, labels = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        label, *pairs = line.split()
        row = np.zeros(n_features, dtype=np.float32)
        try:
            labels.append(int(float(label)))
            for pair in pairs:
                i, v = pair.split(":")
                row[int(i) - 1] = float(v)
        except (ValueError, IndexError) as e:
            raise DataError(f"{path}:{lineno}: expected 'label index:value …' with indices 1..{n_features}") from e
        rows.append(row)
    return np.stack(rows), np.asarray(labels, dtype=np.int64)


class Usps(DatasetSpec):
    def raw_files(self, domain: str) -> list[RawFile]:
        return [
            RawFile(name, (_URL + name,), md5=md5, mirror=f"USPS/{name}", mirror_sha256=mirror_sha)
            for name, md5, mirror_sha in _FILES.values()
        ]

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        x, y = parse_libsvm(Path(raw_dir) / _FILES[split][0])
        if y.min() < 1 or y.max() > 10:
            raise DataError(f"{raw_dir / _FILES[split][0]}: labels must lie in 1..10 (digit + 1)")
        # Values in [-1, 1] map to [0, 255] and truncate, exactly as torchvision.datasets.USPS does.
        images = ((x + 1) / 2 * 255).astype(np.uint8).reshape(-1, 16, 16, 1)
        return Decoded(images, y - 1)


DATASET = Usps(
    name="usps",
    domains=("usps",),
    classes=DIGITS,
    splits=("train", "test"),
    channels=1,
    homepage="https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html#usps",
    official_counts={"usps": {"train": 7291, "test": 2007}},
)
