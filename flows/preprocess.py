"""DVC stage `preprocess`: decode both domains into uint8 tensors with stats and a validation split."""

from __future__ import annotations

from prefect import flow

from flows._cli import run_stage
from tasks.data import log_stage
from tasks.preprocess import preprocess
from uda.config import Params


@flow(name="preprocess", validate_parameters=False)
def preprocess_flow(params: Params) -> dict[str, dict]:
    data = params.data
    stats = {d: preprocess(d, params.dataset(d), params.exp.recipe, data) for d in params.exp.domains}
    metrics = {f"data/{d}/{split}/n": s["n"] for d, st in stats.items() for split, s in st["splits"].items()}
    artifacts = [(data.processed_dir / d / name, f"data/{d}") for d in stats for name in ("stats.json", "samples.png")]
    log_stage(params, "preprocess", {"data": data.model_dump(exclude={"mirror", "root"})}, metrics,
              artifacts, {})
    return stats


if __name__ == "__main__":
    run_stage(preprocess_flow, __doc__)
