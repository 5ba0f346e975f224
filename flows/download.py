"""DVC stage `download`: fetch and verify the raw files of the experiment's two domains.

The first stage of every `dvc repro`: it validates the whole params file, every method's block included,
so that a bad setting fails before any work (its deps list the code that defines those settings)."""

from __future__ import annotations

from prefect import flow

from flows._cli import run_stage
from tasks.data import log_stage
from tasks.download import download_domain
from uda import runs
from uda.config import Params
from uda.download import resolve_mirror


@flow(name="download", validate_parameters=False)
def download(params: Params) -> dict[str, list[dict]]:
    mirror = resolve_mirror(params.data.mirror)
    fetched = {d: download_domain(d, params.dataset(d), params.data.raw_dir, mirror) for d in params.exp.domains}
    origins = [f["origin"] for files in fetched.values() for f in files]
    log_stage(params, "download", {"mirror": str(mirror) if mirror else "none"},
              {"download/files": len(origins), "download/from_mirror": origins.count("mirror"),
               "download/cached": origins.count("cached")},
              [], {"download.json": fetched})
    return fetched


if __name__ == "__main__":
    run_stage(download, __doc__, load=lambda path: runs.load(path).params)
