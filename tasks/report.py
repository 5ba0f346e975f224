"""Task of the report stage: the summary table, learning curves, and an MLflow run that holds them."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import task

from uda import tracking
from uda.config import Params
from uda.io import DataError, atomic_write, staged, write_json
from uda.report import learning_curves, markdown, summarize


def read_json(path: Path, stage: str) -> dict:
    """An upstream stage's JSON output, or an error naming the file and the stage that writes it."""
    if not Path(path).is_file():
        raise DataError(f"{path}: missing; run the {stage} stage first (dvc repro {stage})")
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); re-run the {stage} stage") from None


@task(name="report")
def write_report(params: Params, evaluations: dict[str, list[dict]], histories: dict[str, dict],
                 out_dir: Path, figures: dict[str, str]) -> dict:
    """Write summary.json, summary.md and curves/<method>.png under out_dir and log them to a `report` run;
    they replace the previous ones only once all are written and logged."""
    summary = summarize(params, evaluations)
    with staged(Path(out_dir)) as tmp:
        curves = {m: learning_curves(h, tmp / "curves" / f"{m}.png", f"{params.experiment}: {m}")
                  for m, h in histories.items()}
        figures = figures | {f"learning curves: {m}": p.relative_to(tmp).as_posix() for m, p in curves.items()}
        write_json(tmp / "summary.json", summary)
        with atomic_write(tmp / "summary.md", "w") as f:
            f.write(markdown(summary, figures))
        with tracking.run(params.experiment, run_name="report", tags=tracking.run_tags(params, "report")):
            tracking.log_metrics({f"{m}/target/test_acc": row["target_test_acc"]["mean"] for m, row in
                                  summary["methods"].items() if row["target_test_acc"]["mean"] is not None})
            for path in [tmp / "summary.md", tmp / "summary.json", *curves.values()]:
                tracking.log_artifact(path, "report")
    return summary
