"""SVHN cropped digits, format 2 (Netzer et al., 2011): MATLAB .mat files, label 10 means digit 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from uda.datasets.base import DIGITS, DatasetSpec, Decoded, RawFile
from uda.io import DataError

_URL = "http://ufldl.stanford.edu/housenumbers/"
_MD5 = {"train": "e26dedcc434d2e4c54c9b2d4a06d8373", "test": "eb5a983be6a315427106f1b164d9cef3"}


class Svhn(DatasetSpec):
    def raw_files(self, domain: str) -> list[RawFile]:
        return [
            RawFile(f"{s}_32x32.mat", (f"{_URL}{s}_32x32.mat",), md5=md5, mirror=f"SVHN/{s}_32x32.mat")
            for s, md5 in _MD5.items()
        ]

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        import scipy.io

        path = Path(raw_dir) / f"{split}_32x32.mat"
        if not path.is_file():
            raise DataError(f"{path}: missing; run the download stage first (uda download svhn)")
        try:
            mat = scipy.io.loadmat(path)
        except Exception as e:  # scipy raises several unrelated types for damaged files
            raise DataError(f"{path}: not a readable MATLAB .mat file ({e})") from e
        x, y = mat.get("X"), mat.get("y")
        if x is None or y is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.size:
            raise DataError(f"{path}: expected 'X' of shape 32×32×3×N (uint8) and 'y' of N labels")
        labels = y.reshape(-1).astype(np.int64)
        if labels.min() < 1 or labels.max() > 10:
            raise DataError(f"{path}: labels must lie in 1..10 (10 stands for digit 0)")
        labels[labels == 10] = 0
        images = np.ascontiguousarray(np.transpose(x, (3, 0, 1, 2)), dtype=np.uint8)
        return Decoded(images, labels)


DATASET = Svhn(
    name="svhn",
    domains=("svhn",),
    classes=DIGITS,
    splits=("train", "test"),
    channels=3,
    homepage="http://ufldl.stanford.edu/housenumbers/",
    official_counts={"svhn": {"train": 73257, "test": 26032}},
)
