"""Task of the t-SNE stage; it logs each method's figures into that method's training run in MLflow."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from uda import tracking
from uda.config import TsneConfig
from uda.runs import RunSpec
from uda.tsne import method_embedding, save_figures


@task(name="tsne", tags=["gpu"])
def tsne_figures(specs: list[RunSpec], tcfg: TsneConfig, models: dict[str, Path], out_dir: Path) -> list[Path]:
    embeddings = {s.method: method_embedding(s, tcfg, models[s.method]) for s in specs}
    paths = save_figures(specs[0].exp, list(specs[0].classes), embeddings, out_dir)
    for spec in specs:
        with tracking.run(spec.experiment, run_name=spec.method, run_id=tracking.training_run_id(models[spec.method])):
            for path in paths:
                if path.name.startswith((f"{spec.method}_", "all_methods")):
                    tracking.log_artifact(path, "tsne")
    return paths
