"""Task of the download stage: fetch and verify one domain's raw files (the mirror first)."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from uda.datasets import DatasetSpec
from uda.download import fetch_domain


@task(name="download-domain", retries=0)
def download_domain(domain: str, ds: DatasetSpec, raw_dir: Path, mirror: Path | None) -> list[dict]:
    return [
        {"file": f.name, "origin": f.origin, "verified_against": f.digest, "path": str(f.path)}
        for f in fetch_domain(domain, raw_dir, mirror, progress=True, ds=ds)
    ]
