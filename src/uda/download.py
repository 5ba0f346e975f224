"""Fetch a domain's raw files: from the mirror first, else the official sources; always verified.

Every copy goes to a temporary file, is verified, then renamed into place, so an interrupted or corrupt
transfer never leaves a file that looks complete, and a file that already verifies is left untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from uda.datasets import DatasetSpec, RawFile, dataset_of
from uda.io import DataError, atomic_dir, atomic_write, extract_archive, file_digest, tree_digest

MIRROR_ENV = "UDA_DATA_MIRROR"
_HINT = (
    f"To work offline, point {MIRROR_ENV} (or params.yaml's data.mirror) at a folder laid out like "
    "shared/datasets (see its MANIFEST.md), e.g. export {env}=../shared/datasets"
).replace("{env}", MIRROR_ENV)


@dataclass(frozen=True)
class Fetched:
    name: str
    path: Path
    origin: str  # "cached", "mirror" or the URL it came from
    digest: str | None  # "<algorithm>:<hex>" it was verified against, None where none is published


def resolve_mirror(configured: str | Path | None) -> Path | None:
    """The environment variable wins over params (CI sets it); a named mirror must exist."""
    value = os.environ.get(MIRROR_ENV) or configured
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        source = MIRROR_ENV if os.environ.get(MIRROR_ENV) else "data.mirror"
        raise DataError(f"{source}={value!r}: mirror folder {path} does not exist")
    return path


def fetch_domain(domain: str, raw_root: Path, mirror: Path | None, progress: bool = True,
                 ds: DatasetSpec | None = None) -> list[Fetched]:
    """`ds`: the domain's dataset where it is not built in (a folder domain's, from Params.dataset)."""
    ds = ds or dataset_of(domain)
    dest = ds.raw_dir(raw_root)
    return [fetch(rf, dest, mirror, progress) for rf in ds.raw_files(domain)]


def fetch(rf: RawFile, dest_dir: Path, mirror: Path | None, progress: bool = True) -> Fetched:
    target = Path(dest_dir) / rf.name
    if rf.local:
        return _copy_local(rf, target)
    for from_mirror in (True, False):  # a file already in place may be the mirror's or the official copy
        if target.exists() and _verifies(rf, target, from_mirror):
            return Fetched(rf.name, target, "cached", _label(rf.expected(from_mirror)))
    mirror_note = ""
    if mirror is not None and rf.mirror:
        source = mirror / rf.mirror
        if source.exists():
            _copy_verified(rf, source, target)
            return Fetched(rf.name, target, "mirror", _label(rf.expected(True)))
        mirror_note = f"mirror file {source} is missing (expected per the mirror's MANIFEST.md); "
    if not rf.urls:
        raise DataError(f"{target}: {mirror_note}no official source to download from")
    url = _download_verified(rf, target, dest_dir, mirror_note, progress)
    return Fetched(rf.name, target, url, _label(rf.expected(False)))


def _copy_local(rf: RawFile, target: Path) -> Fetched:
    """A folder domain: its tree copied whole, unless the copy in place already has the folder's digest."""
    source = Path(rf.local)
    if not source.is_dir():
        raise DataError(f"{source}: the folder of domain {rf.name} (domains.{rf.name}.path) does not exist")
    digest = tree_digest(source, rf.name)
    if target.is_dir() and tree_digest(target, rf.name) == digest:
        return Fetched(rf.name, target, "cached", f"sha256:{digest}")
    with atomic_dir(target) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        if tree_digest(tmp, rf.name) != digest:
            raise DataError(f"{source}: changed while it was copied; run the download stage again")
    return Fetched(rf.name, target, str(source), f"sha256:{digest}")


def _label(expected: tuple[str, str] | None) -> str | None:
    return f"{expected[0]}:{expected[1]}" if expected else None


def _verifies(rf: RawFile, path: Path, from_mirror: bool) -> bool:
    expected = rf.expected(from_mirror)
    if expected is None:
        return not from_mirror  # nothing published to compare with: accept what a download put there
    algorithm, digest = expected
    actual = tree_digest(path, rf.mirror) if rf.tree else file_digest(path, algorithm)
    return actual == digest


def _check(rf: RawFile, path: Path, from_mirror: bool, origin: str) -> None:
    if not _verifies(rf, path, from_mirror):
        algorithm, digest = rf.expected(from_mirror)
        raise DataError(f"{origin}: {algorithm} checksum mismatch for {rf.name} (expected {digest}); "
                        "the file is corrupt or not the published one, and was not installed")


def _copy_verified(rf: RawFile, source: Path, target: Path) -> None:
    if rf.tree:
        with atomic_dir(target) as tmp:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
            _check(rf, tmp, True, str(source))
        return
    with atomic_write(target, verify=lambda tmp: _check(rf, tmp, True, str(source))) as f, open(source, "rb") as src:
        shutil.copyfileobj(src, f, 1 << 20)


def _download_verified(rf: RawFile, target: Path, dest_dir: Path, mirror_note: str, progress: bool) -> str:
    errors = []
    for url in rf.urls:
        try:
            if rf.tree:  # an archive holding the folder: fetch once, keep it, extract the folder
                archive = Path(dest_dir) / ".downloads" / f"{rf.name}.archive"
                if not archive.exists():
                    with atomic_write(archive) as f:
                        _stream(url, f, progress)
                with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
                    extract_archive(archive, Path(tmp) / "x")
                    with atomic_dir(target) as out:
                        shutil.copytree(Path(tmp) / "x" / rf.archive_subdir, out, dirs_exist_ok=True)
            else:
                with atomic_write(target, verify=lambda tmp, url=url: _check(rf, tmp, False, url)) as f:
                    _stream(url, f, progress)
            return url
        except (_Offline, urllib.error.URLError, OSError) as e:
            errors.append(f"{url}: {e}")
    raise DataError(f"{target}: {mirror_note}every source failed: {'; '.join(errors)}. {_HINT}")


class _Offline(Exception):
    pass


def _stream(url: str, f, progress: bool, attempts: int = 4, timeout: float = 30.0) -> None:
    """Download with retries and exponential backoff for transient failures; no retry when offline."""
    from tqdm import tqdm

    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                total = int(r.headers.get("Content-Length") or 0) or None
                f.seek(0)
                f.truncate()
                with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1][:40],
                          disable=not progress, leave=False) as bar:
                    for chunk in iter(lambda: r.read(1 << 20), b""):
                        f.write(chunk)
                        bar.update(len(chunk))
                if total is not None and f.tell() != total:
                    raise urllib.error.URLError(f"truncated transfer: {f.tell()} of {total} bytes")
                return
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == attempts - 1:
                raise
        except urllib.error.URLError as e:
            reason = getattr(e, "reason", e)
            # No route, no DNS, refused: offline, and retrying only delays the message.
            if isinstance(reason, OSError) and not isinstance(reason, (TimeoutError, ConnectionResetError)):
                raise _Offline(f"offline? {reason}") from e
            if attempt == attempts - 1:
                raise
        except (TimeoutError, ConnectionResetError):
            if attempt == attempts - 1:
                raise
        time.sleep(2**attempt)
