"""DVC stage `report`: reports/summary.md and .json (methods × metrics, published figures) and curves."""

from __future__ import annotations

from prefect import flow

from flows._cli import run_stage
from tasks.report import read_json, write_report
from uda import layout
from uda.config import Params


@flow(name="report", validate_parameters=False)
def report_flow(params: Params) -> dict:
    methods = params.pipeline.all_methods
    evaluations = {m: [read_json(layout.evaluation_dir(m) / "details.json", f"evaluate@{m}")] for m in methods}
    histories = {m: read_json(layout.model_dir(m) / "history.json", f"train@{m}") for m in methods}
    tsne = layout.TSNE.relative_to(layout.REPORTS)
    figures = {"t-SNE, all methods": f"{tsne.as_posix()}/all_methods.png"}
    figures |= {f"confusion on the target: {m}": f"../{(layout.evaluation_dir(m) / 'confusion_target.png').as_posix()}"
                for m in methods}
    return write_report(params, evaluations, histories, layout.REPORTS, figures)


if __name__ == "__main__":
    run_stage(report_flow, __doc__)
