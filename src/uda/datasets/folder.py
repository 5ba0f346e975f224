"""A domain of one's own: images in class folders (`<path>/<class>/…/<image>`, torchvision's ImageFolder
layout), declared in params.yaml under `domains:` (Office-31, Office-Home, VisDA, or any photos sorted by
class) and used by every stage like a built-in dataset.

- Classes are the folder names in sorted order; hidden folders and non-image files are skipped.
- Optional split files (e.g. `train: train.txt`) list the images of each split, one path per line relative
  to the domain's folder; without them the domain is one split, `all`, as PACS is.
- Optional expected counts per class are checked when the images are read; a corrupt or unreadable image is
  an error naming the file in the declared folder.
- The download stage copies the tree into `data/raw/folders/<domain>/`, verified by its tree digest, so
  DVC versions what was trained on; the preprocess stage resizes (and centre-crops) it like PACS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from uda.datasets.base import DatasetSpec, Decoded, RawFile, decode_image
from uda.io import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


class FolderDomain(BaseModel):
    """`domains.<name>` in params.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str = Field(description="the folder holding one sub-folder per class")
    splits: dict[Literal["train", "test"], str] | None = Field(
        None, description="split → a file under `path` listing that split's images (relative paths), one per line; "
        "null: every image in one split, `all`")
    class_counts: dict[str, Annotated[int, Strict(), Field(ge=0)]] | None = Field(
        None, description="expected images per class over the whole folder, checked when it is read")

    @model_validator(mode="after")
    def _has_train(self):
        if self.splits is not None and "train" not in self.splits:
            raise ValueError(f"splits must name a train split (got {sorted(self.splits)})")
        return self


def class_folders(path: Path) -> tuple[str, ...]:
    """The class names of a folder tree: its visible sub-folders, sorted."""
    if not path.is_dir():
        raise DataError(f"{path}: not a folder; a folder domain's path must hold one sub-folder per class")
    names = tuple(sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not names:
        raise DataError(f"{path}: no class folders; expected {path}/<class>/<image> (the ImageFolder layout)")
    return names


def images_of(root: Path, cls: str) -> list[Path]:
    return sorted(p for p in (root / cls).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


@dataclass(frozen=True)
class FolderDataset(DatasetSpec):
    source: str = ""  # the declared folder, which errors name (the copy under data/raw has the same tree)
    split_files: tuple[tuple[str, str], ...] = ()
    expected: tuple[tuple[str, int], ...] | None = None

    def raw_dir(self, raw_root: Path) -> Path:
        return Path(raw_root) / "folders"

    def raw_files(self, domain: str) -> list[RawFile]:
        return [RawFile(domain, tree=True, local=self.source)]

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        root = Path(raw_dir) / domain
        files = {cls: images_of(root, cls) for cls in self.classes}
        self._check_counts(files)
        if self.split_files:
            paths = self._listed(root, dict(self.split_files)[split])
        else:
            paths = [p for cls in self.classes for p in files[cls]]
        label_of = {c: i for i, c in enumerate(self.classes)}
        images = [decode_image(p.read_bytes(), self._named(root, p), "RGB") for p in paths]
        labels = np.asarray([label_of[p.relative_to(root).parts[0]] for p in paths], dtype=np.int64)
        return Decoded(images, labels)

    def _named(self, root: Path, p: Path) -> str:
        return str(Path(self.source) / p.relative_to(root))

    def _check_counts(self, files: dict[str, list[Path]]) -> None:
        if self.expected is None:
            return
        expected, found = dict(self.expected), {c: len(v) for c, v in files.items()}
        wrong = [f"{c}: {found.get(c, 'no folder')} images, expected {n}" for c, n in expected.items()
                 if found.get(c) != n]
        wrong += [f"{c}: a class folder that class_counts does not list" for c in found if c not in expected]
        if wrong:
            raise DataError(f"{self.source}: per-class counts differ from domains.{self.name}.class_counts: "
                            + "; ".join(wrong))

    def _listed(self, root: Path, split_file: str) -> list[Path]:
        listing = root / split_file
        if not listing.is_file():
            raise DataError(f"{Path(self.source) / split_file}: split file missing")
        paths = []
        for n, line in enumerate(listing.read_text().splitlines(), 1):
            rel = line.strip()
            if not rel or rel.startswith("#"):
                continue
            p = root / rel
            if Path(rel).is_absolute() or ".." in Path(rel).parts or Path(rel).parts[0] not in self.classes:
                raise DataError(f"{Path(self.source) / split_file}:{n}: {rel!r} is not under a class folder of "
                                f"{self.source} ({', '.join(self.classes)})")
            if not p.is_file():
                raise DataError(f"{Path(self.source) / split_file}:{n}: {rel} does not exist")
            paths.append(p)
        return paths


def folder_dataset(name: str, domain: FolderDomain) -> FolderDataset:
    """The dataset of a declared folder domain; its classes are read from the folder now."""
    splits = tuple(domain.splits) if domain.splits else ("all",)
    return FolderDataset(
        name=name, domains=(name,), classes=class_folders(Path(domain.path)), splits=splits, channels=3,
        homepage=domain.path, source=domain.path, split_files=tuple((domain.splits or {}).items()),
        expected=tuple(domain.class_counts.items()) if domain.class_counts is not None else None)
