"""DVC stage `train@<method>`: train one method on the experiment's domains (resumes after a kill)."""

from __future__ import annotations

from prefect import flow

from flows._cli import run_stage
from tasks.train import train_method
from uda import layout, runs
from uda.methods import METHODS


@flow(name="train", validate_parameters=False)
def train_flow(resolved: runs.Resolved, method: str) -> dict:
    start = METHODS[method].starts_from  # dvc.yaml's refine stages declare models/<start> as a dependency
    return train_method(resolved.run(method), layout.model_dir(method), layout.CHECKPOINTS,
                        start=layout.model_dir(start) if start else None)


if __name__ == "__main__":
    run_stage(train_flow, __doc__, load=runs.load,
              add_arguments=lambda p: p.add_argument("--method", required=True, choices=sorted(METHODS)))
