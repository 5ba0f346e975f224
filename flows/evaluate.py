"""DVC stage `evaluate@<method>`: test accuracies, confusion matrices, domain gap and DEV's choice."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows._cli import run_stage
from tasks.evaluate import evaluate_method
from uda.config import Params
from uda.methods import METHODS


@flow(name="evaluate", validate_parameters=False)
def evaluate_flow(params: Params, method: str) -> dict:
    return evaluate_method(params, method, Path("models") / method, Path("evaluation") / method)


if __name__ == "__main__":
    run_stage(evaluate_flow, __doc__, add_arguments=lambda p: p.add_argument("--method", required=True,
                                                                            choices=sorted(METHODS)))
