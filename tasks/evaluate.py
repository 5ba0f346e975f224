"""Tasks of the evaluate and t-SNE stages. Both log into each method's training run in MLflow."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from uda import tracking
from uda.config import Params
from uda.evaluation import evaluate, flat_metrics
from uda.io import DataError
from uda.tsne import method_embedding, save_figures


def _training_run(model_dir: Path) -> str:
    path = Path(model_dir) / "mlflow_run_id"
    if not path.is_file():
        raise DataError(f"{path}: missing; run the train stage first (dvc repro train@{Path(model_dir).name})")
    return path.read_text().strip()


@task(name="evaluate", tags=["gpu"])
def evaluate_method(params: Params, method: str, model_dir: Path, out_dir: Path) -> dict:
    result = evaluate(params, method, model_dir, out_dir)
    with tracking.run(params.experiment, run_name=f"{method}-seed{params.train_for(method).seed}",
                      run_id=_training_run(model_dir)):
        tracking.log_metrics(flat_metrics(result))
        for path in sorted(Path(out_dir).glob("*")):
            if path.suffix in (".png", ".json"):
                tracking.log_artifact(path, "evaluation")
    return flat_metrics(result)


@task(name="tsne", tags=["gpu"])
def tsne_figures(params: Params, models: dict[str, Path], out_dir: Path) -> list[Path]:
    embeddings = {m: method_embedding(params, m, d) for m, d in models.items()}
    paths = save_figures(params, embeddings, out_dir)
    for method, model_dir in models.items():
        with tracking.run(params.experiment, run_name=method, run_id=_training_run(model_dir)):
            for path in paths:
                if path.name.startswith((f"{method}_", "all_methods")):
                    tracking.log_artifact(path, "tsne")
    return paths
