"""Prefect flow `sweep`: each grid point × seed is a DVC experiment and an MLflow child run of one parent.

    python -m flows.sweep --name lr_opt --grid train.optimizer.lr=0.001,0.01 --grid train.optimizer.name=sgd,adam
    python -m flows.sweep --name seeds --seeds 0 1 2

Points run one after another with `dvc exp run -S … evaluate` in the project: up to the evaluate stages
(DVC reuses every stage a point does not change, e.g. the data; the sweep's own table and heatmaps stand
in for the per-point t-SNE and report). The MLflow runs the stages open are nested under the sweep's parent run,
which ends with the mean ± std table (sweep.md), each method's choice by the validator and its regret
(report only), sweep.json and, for a one- or two-key grid, heatmaps of target accuracy (report only) and
the validator's score. The project's params.yaml is restored afterwards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from prefect import flow

from tasks import ROOT
from tasks.dvc import dvc, read_headlines, set_params
from uda import sweep as sweeps
from uda import tracking
from uda.config import load_params


@flow(name="sweep", validate_parameters=False)
def sweep(name: str = "sweep", grid: dict[str, list] | None = None, seeds: list[int] | None = None,
          overrides: dict[str, object] | None = None, project_dir: str | None = None) -> dict:
    root, grid, seeds = Path(project_dir or ROOT), dict(grid or {}), list(seeds or [0])
    params_file = root / "params.yaml"
    original = params_file.read_text()
    params = load_params(params_file)
    experiment = (overrides or {}).get("experiment", params.experiment)
    out_dir = root / "reports" / "sweeps" / name
    results = []
    tags = {"stage": "sweep", "sweep": name, "git_commit": tracking.git_commit(root)}
    with tracking.run(experiment, run_name=f"sweep-{name}", tags=tags, root=root) as parent:
        tracking.log_params({"grid": json.dumps(grid), "seeds": json.dumps(seeds),
                             "overrides": json.dumps(overrides or {})})
        try:
            for i, point in enumerate(sweeps.points(grid, seeds)):
                env = {"UDA_PARENT_RUN_ID": parent.info.run_id, "UDA_SWEEP": name,
                       "UDA_SWEEP_POINT": json.dumps(point)}
                # Up to the evaluations only: the sweep's own table and heatmaps stand in for t-SNE and report.
                dvc(["exp", "run", "--name", f"{name}-{i}", *set_params(dict(overrides or {}) | point), "evaluate"],
                    root, env)
                methods = load_params(params_file).pipeline.all_methods
                results.append({"point": point, "details": read_headlines(root, methods)})
        finally:
            params_file.write_text(original)  # the workspace is as before; each point lives on as a DVC experiment
        summary, paths = sweeps.write(out_dir, name, grid, results)
        for path in paths:
            tracking.log_artifact(path, "sweep")
        # The validator's choice per method: its target accuracy over seeds and its regret against the oracle
        # (report only), as MLflow metrics of the parent
        tracking.log_metrics({f"{m}/target/test_acc_{k}": row["target_test_acc"][k] for m, s in summary.items()
                              if s["choice"] for row in [s["settings"][s["choice"]]] for k in ("mean", "std")}
                             | {f"{m}/report/regret": s["regret_report_only"] for m, s in summary.items()
                                if s["regret_report_only"] is not None})
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="sweep")
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a params key and its values")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed for every point")
    args = ap.parse_args()
    split = lambda s: s.split("=", 1)  # noqa: E731
    grid = {k: [yaml.safe_load(v) for v in vs.split(",")] for k, vs in map(split, args.grid)}
    overrides = {k: yaml.safe_load(v) for k, v in map(split, args.set)}
    print(sweeps.markdown(args.name, sweep(args.name, grid, args.seeds, overrides)))


if __name__ == "__main__":
    main()
