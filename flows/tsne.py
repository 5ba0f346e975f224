"""DVC stage `tsne`: each method's feature space in 2-D, by domain and by class, and all side by side."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows._cli import run_stage
from tasks.evaluate import tsne_figures
from uda.config import Params


@flow(name="tsne", validate_parameters=False)
def tsne_flow(params: Params) -> list[Path]:
    return tsne_figures(params, {m: Path("models") / m for m in params.pipeline.methods}, Path("reports/tsne"))


if __name__ == "__main__":
    run_stage(tsne_flow, __doc__)
