"""MNIST (LeCun et al., 1998): the original gzip-compressed IDX files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from uda.datasets.base import DIGITS, DatasetSpec, Decoded, RawFile, read_compressed
from uda.io import DataError

_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
# (file, md5, sha256): the official archives; MANIFEST.md confirms the mirror holds identical bytes.
_FILES = {
    "train": (
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    ),
}


def parse_idx(path: Path, magic: int) -> np.ndarray:
    """IDX format: big-endian magic (0x0803 images, 0x0801 labels), dimension sizes, then uint8 data."""
    raw = read_compressed(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file with magic {magic:#06x}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes after decompression, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


class Mnist(DatasetSpec):
    def raw_files(self, domain: str) -> list[RawFile]:
        return [
            RawFile(name, tuple(u + name for u in _URLS), md5=md5, sha256=sha, mirror=f"MNIST/raw/{name}")
            for files in _FILES.values()
            for name, md5, sha in files
        ]

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        images_file, labels_file = (f[0] for f in _FILES[split])
        images = parse_idx(raw_dir / images_file, 0x0803)[..., None]
        labels = parse_idx(raw_dir / labels_file, 0x0801).astype(np.int64)
        return Decoded(images, labels)


DATASET = Mnist(
    name="mnist",
    domains=("mnist",),
    classes=DIGITS,
    splits=("train", "test"),
    channels=1,
    homepage="http://yann.lecun.com/exdb/mnist/",
    official_counts={"mnist": {"train": 60000, "test": 10000}},
)
