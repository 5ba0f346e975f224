"""DVC stage `train@<method>`: train one method on the experiment's domains (resumes after a kill)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows._cli import run_stage
from tasks.train import train_method
from uda.config import Params
from uda.methods import METHODS

CHECKPOINTS = Path("checkpoints")  # outside DVC's outs: DVC deletes outs before a stage re-runs


@flow(name="train", validate_parameters=False)
def train_flow(params: Params, method: str) -> dict:
    return train_method(params, method, Path("models") / method, CHECKPOINTS)


if __name__ == "__main__":
    run_stage(train_flow, __doc__, add_arguments=lambda p: p.add_argument("--method", required=True,
                                                                         choices=sorted(METHODS)))
