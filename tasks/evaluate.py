"""Task of the evaluate stage; it logs into the method's training run in MLflow."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from uda import tracking
from uda.config import EvaluateConfig
from uda.evaluation import evaluate
from uda.results import flat_metrics
from uda.runs import RunSpec


@task(name="evaluate", tags=["gpu"])
def evaluate_method(spec: RunSpec, ecfg: EvaluateConfig, model_dir: Path, out_dir: Path) -> dict:
    result = evaluate(spec, ecfg, model_dir, out_dir)
    with tracking.run(spec.experiment, run_name=tracking.run_name(spec), run_id=tracking.training_run_id(model_dir)):
        tracking.log_metrics(flat_metrics(result))
        step = result["selection"]["picked_step"]
        picked = Path(model_dir) / "snapshots" / f"step_{step:06d}.pt" if step is not None else None
        if picked is not None and picked.exists():  # the weights the report describes
            tracking.log_artifact(picked, "selected")
        for path in sorted(Path(out_dir).glob("*")):
            if path.suffix in (".png", ".json"):
                tracking.log_artifact(path, "evaluation")
    return flat_metrics(result)
