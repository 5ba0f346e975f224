"""DVC stage `report`: reports/summary.md and .json (methods × metrics, published figures) and curves."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows._cli import run_stage
from tasks.report import read_json, write_report
from uda.config import Params

REPORTS = Path("reports")


@flow(name="report", validate_parameters=False)
def report_flow(params: Params) -> dict:
    methods = params.pipeline.methods
    evaluations = {m: [read_json(Path("evaluation") / m / "details.json", f"evaluate@{m}")] for m in methods}
    histories = {m: read_json(Path("models") / m / "history.json", f"train@{m}") for m in methods}
    figures = {"t-SNE, all methods": "tsne/all_methods.png"}
    figures |= {f"confusion on the target: {m}": f"../evaluation/{m}/confusion_target.png" for m in methods}
    return write_report(params, evaluations, histories, REPORTS, figures)


if __name__ == "__main__":
    run_stage(report_flow, __doc__)
