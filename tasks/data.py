"""Recording a data stage's execution in MLflow (the download and preprocess stages' own tasks are in
tasks/download.py and tasks/preprocess.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from prefect import task

from uda import tracking
from uda.config import Params


@task(name="log-stage")
def log_stage(params: Params, stage: str, extra_params: dict, metrics: dict, artifacts: list[tuple[Path, str]],
              records: dict[str, object]) -> str:
    """One MLflow run per stage execution, tagged so runs of one experiment line up in the UI."""
    with tracking.run(params.experiment, run_name=stage, tags=tracking.run_tags(params, stage)) as active:
        tracking.log_params({"experiment": params.experiment, **params.exp.model_dump(), **extra_params})
        tracking.log_metrics(metrics)
        for path, artifact_path in artifacts:
            tracking.log_artifact(path, artifact_path)
        with tempfile.TemporaryDirectory() as tmp:
            for name, obj in records.items():
                (Path(tmp) / name).write_text(json.dumps(obj, indent=2, sort_keys=True))
                tracking.log_artifact(Path(tmp) / name)
        return active.info.run_id
