"""MNIST-M (Ganin & Lempitsky, ICML 2015): MNIST digits blended over BSDS500 patches, PNGs in a tar.gz.

The PNGs are decoded straight from the archive (no 68k-file extraction); every member is checked by
the same rules as extraction, so a member with `..`, an absolute path or a link rejects the archive.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from uda.datasets.base import DIGITS, DatasetSpec, Decoded, RawFile, decode_image
from uda.io import DataError, safe_tar_members

_ARCHIVE = "mnist_m.tar.gz"


class MnistM(DatasetSpec):
    def raw_files(self, domain: str) -> list[RawFile]:
        return [
            RawFile(
                _ARCHIVE,
                # The authors' Google Drive copy, re-hosted with a fixed md5 by pytorch-adapt.
                ("https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi",),
                md5="859df31c91afe82e80e5012ba928f279",
                mirror=f"MNIST-M/{_ARCHIVE}",
                # MANIFEST.md: the mirror repacks the test split and the first 30,000 train images.
                mirror_sha256="06bf740008fd186f4e9234cc468a20d01188d7ed18a7cbe3dcb9e92721831218",
            )
        ]

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        archive = Path(raw_dir) / _ARCHIVE
        if not archive.is_file():
            raise DataError(f"{archive}: missing; run the download stage first (uda download mnist_m)")
        folder, label_file = f"mnist_m/mnist_m_{split}/", f"mnist_m/mnist_m_{split}_labels.txt"
        pngs, label_text = {}, None
        try:
            with tarfile.open(archive) as tar:
                for m in safe_tar_members(archive, tar):
                    if m.isfile() and (m.name.startswith(folder) or m.name == label_file):
                        data = tar.extractfile(m).read()
                        if m.name == label_file:
                            label_text = data.decode()
                        else:
                            pngs[m.name[len(folder):]] = data
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{archive}: truncated or corrupt tar.gz ({e})") from e
        if label_text is None:
            raise DataError(f"{archive}: no member {label_file!r}; expected the original mnist_m/ layout")
        images, labels = [], []
        for lineno, line in enumerate(label_text.splitlines(), 1):
            if not line.strip():
                continue
            name, label = line.split()
            if name not in pngs:
                raise DataError(f"{archive}: {label_file}:{lineno} names {folder}{name}, which the archive lacks")
            images.append(decode_image(pngs[name], f"{archive}:{folder}{name}", "RGB"))
            labels.append(int(label))
        return Decoded(np.stack(images), np.asarray(labels, dtype=np.int64))


DATASET = MnistM(
    name="mnist_m",
    domains=("mnist_m",),
    classes=DIGITS,
    splits=("train", "test"),
    channels=3,
    homepage="http://yaroslav.ganin.net/",
    official_counts={"mnist_m": {"train": 59001, "test": 9001}},
)
