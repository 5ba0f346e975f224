"""The training task: one MLflow run per (experiment, method, seed), resumed with its checkpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from prefect import task

from uda import tracking
from uda.io import atomic_write, file_digest, write_json
from uda.runs import RunSpec
from uda.training import train
from uda.viz import save_grid


def _log_images(images: dict, step: int) -> None:
    """Each picture a method offers (a GAN's samples) as a PNG grid under images/ in its MLflow run."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, x in images.items():
            tracking.log_artifact(save_grid(x, Path(tmp) / f"{name}_step{step:06d}.png"), "images")


def _log_datasets(spec: RunSpec) -> None:
    """Source and target as the run's dataset inputs: named by domain and recipe, with a digest of the
    preprocessed domain's stats.json (its counts, shapes and pixel statistics: what changes when the data do)."""
    size = spec.exp.recipe.image_size
    for context, domain in (("source", spec.exp.source), ("target", spec.exp.target)):
        folder = spec.data.processed_dir / domain
        digest = file_digest(folder / "stats.json")[:12]
        tracking.log_dataset(f"{domain}@{size}px", digest, folder, context)


@task(name="train", tags=["gpu"])  # a Prefect concurrency limit on `gpu` keeps jobs from piling onto a card
def train_method(spec: RunSpec, out_dir: Path, checkpoint_root: Path, start: Path | None = None) -> dict:
    run_file = Path(checkpoint_root) / spec.key / "mlflow_run_id"
    run_id = run_file.read_text().strip() if run_file.exists() else None  # resuming: same MLflow run
    if run_id is not None and not tracking.run_exists(run_id):
        print(f"{run_file}: MLflow run {run_id} is not in this tracking store ({tracking.tracking_uri()}); the "
              "resumed training is logged to a new run", flush=True)
        run_id = None
    tags = tracking.run_tags(spec, "train", method=spec.method, seed=str(spec.train.seed))
    with tracking.run(spec.experiment, run_name=tracking.run_name(spec), tags=tags, run_id=run_id) as active:
        if run_id is None:
            with atomic_write(run_file, "w") as f:
                f.write(active.info.run_id)
            tracking.log_params(spec.logged_params())
            _log_datasets(spec)
        run_id = active.info.run_id

        def finish(tmp: Path, trained, result) -> None:  # into the stage's outputs before they replace the old
            tracking.log_metrics({f"selected/{k.replace('/', '_')}": v for k, v in result.selected.items()}
                                 | {"selected/step": result.selected_step})
            for name in ("model.pt", "metrics.json"):
                tracking.log_artifact(tmp / name)
            recipe = spec.exp.recipe
            trained.train(False)  # the weights evaluation uses: the weight average, where the method keeps one
            tracking.log_torch_model(trained.classifier(), np.zeros((2, recipe.channels, recipe.image_size,
                                                                     recipe.image_size), dtype=np.float32))
            (tmp / "mlflow_run_id").write_text(run_id)  # evaluate and t-SNE log into this run
            # The loop's history, read back from MLflow (complete across a resume), for the report's curves;
            # from step 1, as what is logged without a step (the selection, the evaluation) is not history,
            # so that re-running a finished stage writes the same file.
            write_json(tmp / "history.json", tracking.metric_history(run_id, first_step=1))

        _, result = train(spec, out_dir, checkpoint_root, log=tracking.log_metrics, log_images=_log_images,
                          finish=finish, start=start)
        return {"run_id": run_id, "selected_step": result.selected_step, **result.selected}
