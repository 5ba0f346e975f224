"""What every dataset file declares: its raw files, domains, splits, classes and how to decode them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from uda.io import DataError

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class RawFile:
    """One original distribution file (or, with `tree`, one folder of files).

    `md5`/`sha256` are the official checksums of the file at `urls`. `mirror` is its path inside a
    mirror laid out like shared/datasets; `mirror_sha256` is set only where MANIFEST.md documents that
    the mirror's copy differs from the official bytes (a repack or a subset), and is then what the
    mirror copy is verified against. For a `tree`, `mirror_sha256` is MANIFEST.md's tree digest and the
    download is an archive whose `archive_subdir` holds the folder. A `local` tree (a folder domain's) is
    copied from that folder and verified against the folder's own tree digest.
    """

    name: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha256: str | None = None
    mirror: str | None = None
    mirror_sha256: str | None = None
    tree: bool = False
    archive_subdir: str | None = None
    local: str | None = None

    def expected(self, from_mirror: bool) -> tuple[str, str] | None:
        """(algorithm, hex digest) the fetched copy must match, or None where nobody publishes one."""
        if from_mirror and self.mirror_sha256:
            return ("sha256", self.mirror_sha256)
        if self.sha256:
            return ("sha256", self.sha256)
        if self.md5:
            return ("md5", self.md5)
        return None


@dataclass(frozen=True)
class Decoded:
    """Images as uint8 N×H×W×C (one array, or a list of H×W×C arrays when sizes vary) and int64 labels."""

    images: np.ndarray | list[np.ndarray]
    labels: np.ndarray

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")


@dataclass(frozen=True)
class DatasetSpec:
    """Base of the one-file-per-dataset registry: subclasses implement `raw_files` and `decode`."""

    name: str
    domains: tuple[str, ...]
    classes: tuple[str, ...]
    splits: tuple[str, ...]
    channels: int
    homepage: str
    # Official sample counts, domain -> split -> n (a mirror may hold a documented subset).
    official_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def train_split(self) -> str:
        """The split that training and the validation carve-out come from."""
        return "train" if "train" in self.splits else self.splits[0]

    def raw_dir(self, raw_root: Path) -> Path:
        return Path(raw_root) / self.name

    def raw_files(self, domain: str) -> list[RawFile]:
        raise NotImplementedError

    def decode(self, raw_dir: Path, domain: str, split: str) -> Decoded:
        raise NotImplementedError


def read_compressed(path: Path) -> bytes:
    """Whole decompressed bytes of a .gz/.bz2 file; a truncated or corrupt one names itself."""
    import bz2
    import gzip

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; run the download stage first (uda download <domain>)")
    opener = {".gz": gzip.open, ".bz2": bz2.open}[path.suffix]
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, ValueError) as e:
        raise DataError(f"{path}: truncated or corrupt {path.suffix} file ({e}); delete it and download again") from e


def decode_image(data: bytes, name: str, mode: str) -> np.ndarray:
    """Decode one PNG/JPEG to H×W×C uint8 in PIL mode `mode` ('L' or 'RGB')."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            arr = np.asarray(im.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{name}: corrupt or unreadable image ({e})") from e
    return arr[..., None] if arr.ndim == 2 else arr
