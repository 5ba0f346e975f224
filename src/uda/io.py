"""Atomic writes, checksums and safe archive members.

Every file the pipeline produces goes through `atomic_write` or `atomic_dir`: the bytes land in a
temporary sibling first and are renamed into place only when complete, so an interrupted or failed
stage never leaves a file that looks finished, and the previous good file survives until then.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

_UMASK = os.umask(0)
os.umask(_UMASK)


class DataError(RuntimeError):
    """Bad input: names the file (or key) and what was expected."""


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb", verify: Callable[[Path], None] | None = None) -> Iterator:
    """Open a temporary file beside `path`; rename it over `path` only if the block (and `verify`,
    given the finished temporary file) succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; finished files get ordinary permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces `path` as a whole only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A temporary folder inside `dest` whose entries, once the block succeeds, replace their namesakes in
    `dest` (folders whole); `dest`'s other entries stay. For a stage whose outputs share a folder with
    another stage's (the report beside reports/tsne)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staged.", suffix=".tmp", dir=dest))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if entry.is_dir():
                old = dest / f".{entry.name}.old"
                shutil.rmtree(old, ignore_errors=True)
                if target.exists():
                    os.replace(target, old)
                os.replace(entry, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_tensors(path: Path, made_by: str, **kwargs):
    """torch.load with weights_only=True (tensors and plain containers only: nothing in the file can run
    code), or a DataError naming the file and what makes it. `made_by` completes "the file is written by
    ..." (e.g. "the preprocess stage (dvc repro preprocess)")."""
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: missing; it is written by {made_by}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile,
            AttributeError, TypeError, KeyError, IndexError) as e:
        # torch's own message may advise weights_only=False, the one unsafe thing: it is not repeated
        raise DataError(f"{path}: cannot be read ({type(e).__name__}: truncated, damaged, or holding more than "
                        f"tensors and plain containers); it is written by {made_by}") from None


def write_json(path: Path, obj) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(root: Path, prefix: str) -> str:
    """sha256 over the lines '<sha256 of file>  <prefix>/<path below root>\\n' in path order
    (MANIFEST.md's tree digest)."""
    paths = sorted((f"{prefix}/{p.relative_to(root).as_posix()}", p) for p in root.rglob("*") if p.is_file())
    return hashlib.sha256("".join(f"{file_digest(p)}  {rel}\n" for rel, p in paths).encode()).hexdigest()


def _check_member_name(archive: Path, name: str) -> None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or name.startswith(("/", "\\")) or ":" in p.parts[0]:
        raise DataError(f"{archive}: member {name!r} would land outside the target folder; refusing the archive")


def safe_tar_members(archive: Path, tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Regular files and folders only; any link, device or escaping path rejects the whole archive."""
    for m in tar:
        _check_member_name(archive, m.name)
        if not (m.isfile() or m.isdir()):
            raise DataError(f"{archive}: member {m.name!r} is a link or special file; only plain files are allowed")
        yield m


def extract_archive(archive: Path, dest: Path) -> None:
    """Extract a .tar(.gz) or .zip into `dest` atomically, refusing members that would escape it."""
    archive = Path(archive)
    with atomic_dir(dest) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    _check_member_name(archive, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise DataError(f"{archive}: member {info.filename!r} is a symbolic link; refusing")
                z.extractall(tmp)
        else:
            try:
                with tarfile.open(archive) as tar:
                    for m in safe_tar_members(archive, tar):
                        tar.extract(m, tmp, filter="data")
            except (tarfile.TarError, EOFError, OSError) as e:
                raise DataError(f"{archive}: not a readable tar/zip archive ({e})") from e
