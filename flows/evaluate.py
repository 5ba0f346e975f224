"""DVC stage `evaluate@<method>`: the validator's pick among the snapshots, and its test accuracies,
confusion matrices and domain gap."""

from __future__ import annotations

from prefect import flow

from flows._cli import run_stage
from tasks.evaluate import evaluate_method
from uda import layout, runs
from uda.methods import METHODS


@flow(name="evaluate", validate_parameters=False)
def evaluate_flow(resolved: runs.Resolved, method: str) -> dict:
    return evaluate_method(resolved.run(method), resolved.params.evaluate, layout.model_dir(method),
                           layout.evaluation_dir(method))


if __name__ == "__main__":
    run_stage(evaluate_flow, __doc__, load=runs.load,
              add_arguments=lambda p: p.add_argument("--method", required=True, choices=sorted(METHODS)))
