"""PACS (Li et al., "Deeper, Broader and Artier Domain Generalization", ICCV 2017): images in class folders.

Each domain is one split, `all`: the AlexNet DANN experiments train on all of photo and adapt to (and
test on) all of art_painting. The authors publish no checksum for their archive, so a network download
is checked by its per-class counts instead; a mirror copy is checked against MANIFEST.md's tree digest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from uda.datasets.base import DatasetSpec, Decoded, RawFile, decode_image
from uda.io import DataError

CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
# The authors' Google Drive archive (as DomainBed downloads it); it holds kfold/<domain>/<class>/*.
_URL = "https://drive.usercontent.google.com/download?id=1JFr8f805nMUelQWWmfnJR3y4_SYoN5Pd&export=download&confirm=t"
_TREE_SHA256 = {
    "photo": "dc23a18d802f450c7771c23b4ed4e8b688eb6c609b939d3240317fc7599eb2cb",
    "art_painting": "a053f7a91214c8fc7993ddc8e1b97ae46f8fae762115f991598a1054365dd6f9",
}
# Official per-class counts (dog … person), the same figures MANIFEST.md checks.
CLASS_COUNTS = {
    "photo": (189, 202, 182, 186, 199, 280, 432),
    "art_painting": (379, 255, 285, 184, 201, 295, 449),
    "cartoon": (389, 457, 346, 135, 324, 288, 405),
    "sketch": (772, 740, 753, 608, 816, 80, 160),
}


def style(domain: str) -> str:
    return domain.removeprefix("pacs_")


class Pacs(DatasetSpec):
    def raw_files(self, domain: str) -> list[RawFile]:
        s = style(domain)
        return [
            RawFile(s, (_URL,), mirror=f"PACS/{s}", mirror_sha256=_TREE_SHA256.get(s), tree=True,
                    archive_subdir=f"kfold/{s}")
        ]

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        root = Path(raw_dir) / style(domain)
        images, labels = [], []
        for label, cls in enumerate(CLASSES):
            folder = root / cls
            if not folder.is_dir():
                raise DataError(f"{folder}: missing class folder; expected {root}/<class>/ for {', '.join(CLASSES)}")
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                images.append(decode_image(path.read_bytes(), str(path), "RGB"))
                labels.append(label)
        counts = tuple(np.bincount(labels, minlength=len(CLASSES)).tolist())
        if counts != CLASS_COUNTS[style(domain)]:
            official = CLASS_COUNTS[style(domain)]
            raise DataError(f"{root}: per-class counts {counts} differ from PACS's official {official}")
        return Decoded(images, np.asarray(labels, dtype=np.int64))


DATASET = Pacs(
    name="pacs",
    domains=tuple(f"pacs_{s}" for s in CLASS_COUNTS),
    classes=CLASSES,
    splits=("all",),
    channels=3,
    homepage="https://domaingeneralization.github.io/",
    official_counts={f"pacs_{s}": {"all": sum(c)} for s, c in CLASS_COUNTS.items()},
)
