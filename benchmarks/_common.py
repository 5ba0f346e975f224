"""Shared by the benchmark scripts: params with overrides, and data prepared in a scratch folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from uda.config import Params
from uda.download import fetch_domain, resolve_mirror
from uda.preprocess import preprocess_domain
from uda.runs import Resolved, parse

ROOT = Path(__file__).resolve().parents[1]


def scratch_params(root: str, experiment: str, image_size: int | None = None, data: dict | None = None,
                   **train) -> Resolved:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["experiment"] = experiment
    if image_size is not None:
        raw["experiments"][experiment]["recipe"]["image_size"] = image_size
    raw["data"].update(root=root, **(data or {}))
    raw["train"].update(train)
    if "steps" in train or "epochs" in train:  # one budget for every method: drop the methods' own
        for cfg in raw["methods"].values():
            (cfg or {}).pop("train", None)
    return parse(raw)


def prepare(params: Params) -> None:
    """Raw files from the project's data/raw when there, else the mirror; then preprocess at the recipe."""
    for domain in params.exp.domains:
        local = ROOT / "data/raw" / params.dataset(domain).name
        if local.exists():
            shutil.copytree(local, params.data.raw_dir / local.name, dirs_exist_ok=True)
        else:
            fetch_domain(domain, params.data.raw_dir, resolve_mirror(None), progress=False, ds=params.dataset(domain))
        preprocess_domain(domain, params.exp.recipe, params.data, params.dataset(domain))
