"""Prefect flow `sweep`: each grid point × seed a run of the `point/uda-point` deployment, on any worker.

    python -m flows.sweep --name lr_opt --grid train.optimizer.lr=0.001,0.01 --grid train.optimizer.name=sgd,adam
    python -m flows.sweep --name seeds --seeds 0 1 2 --workers 2      # two local workers take the points

The sweep submits every point to the work pool (tasks/fanout.py) and waits; whichever worker has capacity
takes one, runs it in a workspace of its own at the sweep's commit (flows/point.py) and records it in
MLflow as a child of the sweep's parent run. A point whose worker dies is submitted again (`retries`,
once by default) or named as failed. The parent then builds its table from MLflow, whichever machine ran
what: the mean ± std table (sweep.md), each method's choice by the validator and its regret (report only),
sweep.json and, for a one- or two-key grid, heatmaps of target accuracy (report only) and of the
validator's score. The project's own workspace and params.yaml are never touched.

`--workers N` starts N workers here for the sweep's duration (N ≥ 1; the default 1); `--workers 0` leaves the
points to the workers already on the pool (several machines: docs/orchestration.md). Without a Prefect
server configured, the sweep starts a temporary one that its local workers share.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from prefect import flow

from flows import deploy
from tasks import ROOT, fanout
from tasks import workspace as workspaces
from tasks.dvc import api_url
from uda import layout, tracking
from uda import sweep as sweeps
from uda.config import load_params
from uda.io import DataError


@flow(name="sweep", validate_parameters=False)
def sweep(name: str = "sweep", grid: dict[str, list] | None = None, seeds: list[int] | None = None,
          overrides: dict[str, object] | None = None, project_dir: str | None = None, workers: int = 0,
          retries: int = 1, stale_after: float = 90.0, repo: str | None = None) -> dict:
    """`repo`: where workers clone the commit from (default: this project; on several machines, a git URL
    every worker reaches, to which the commit has been pushed)."""
    root, grid, seeds = Path(project_dir or ROOT), dict(grid or {}), list(seeds or [0])
    overrides = dict(overrides or {})
    commit = workspaces.commit_of(root)  # before anything is submitted: a dirty tree is refused
    experiment = overrides.get("experiment", load_params(root / "params.yaml").experiment)
    uri = tracking.tracking_uri(root)
    tags = {"stage": "sweep", "sweep": name, "git_commit": commit}
    with tracking.run(experiment, run_name=f"sweep-{name}", tags=tags, uri=uri) as parent:
        tracking.log_params({"grid": json.dumps(grid), "seeds": json.dumps(seeds), "overrides": json.dumps(overrides)})
        grid_points = sweeps.points(grid, seeds)
        common = {"sweep": name, "overrides": overrides, "commit": commit, "repo": repo or str(root),
                  "parent_run_id": parent.info.run_id, "tracking_uri": uri, "experiment": experiment}
        parameters = [common | {"index": i, "point": p} for i, p in enumerate(grid_points)]
        with _workers(workers, root, name):
            attempts = fanout.run_points(name, parameters, retries=retries, stale_after=stale_after)
        done = fanout.collect(uri, parent.info.run_id)
        failed = [{"index": a.index, "point": grid_points[a.index], "reason": a.reason or a.state}
                  for a in attempts if a.index not in done]
        results = [done[i] for i in sorted(done)]
        summary, paths = sweeps.write(root / layout.SWEEPS / name, name, grid, results, failed)
        for path in paths:
            tracking.log_artifact(path, "sweep")
        # The validator's choice per method: its target accuracy over seeds and its regret against the oracle
        # (report only), as MLflow metrics of the parent
        tracking.log_metrics({f"{m}/target/test_acc_{k}": row["target_test_acc"][k] for m, s in summary.items()
                              if s["choice"] for row in [s["settings"][s["choice"]]] for k in ("mean", "std")}
                             | {f"{m}/report/regret": s["regret_report_only"] for m, s in summary.items()
                                if s["regret_report_only"] is not None})
    if failed:
        raise RuntimeError("points that did not complete (the table counts the others): " + "; ".join(
            f"{f['index']} {sweeps.setting_name(f['point'])}, seed {f['point']['train.seed']}: {f['reason']}"
            for f in failed))
    return summary


def _workers(n: int, root: Path, name: str):
    """The pool, the gpu limit (kept if set) and the point deployment; and `n` workers here, if asked."""
    import contextlib

    api = api_url()
    if not api:
        raise DataError("a sweep needs a Prefect server its workers can reach: set PREFECT_API_URL, run "
                        "`uda services`, or start it with `python -m flows.sweep`, which starts one")
    deploy.setup(keep=True)
    deploy.register_point()
    if n <= 0:
        return contextlib.nullcontext([])
    return fanout.local_workers(n, deploy.POOL, deploy.POINTS_QUEUE, {"PREFECT_API_URL": api},
                                root / ".services" / "workers" / name)


def main() -> None:
    from flows._cli import prefect_api

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="sweep")
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a params key and its values")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed for every point")
    ap.add_argument("--workers", type=int, default=1, help="workers started here (0: those on the pool)")
    ap.add_argument("--retries", type=int, default=1, help="attempts more for a point whose worker died")
    ap.add_argument("--repo", help="git URL the workers clone the commit from (default: this project)")
    ap.add_argument("--stale-after", type=float, default=90.0, help="seconds without a heartbeat that mean a "
                    "point's worker died (a point sends one every 15 s)")
    args = ap.parse_args()
    split = lambda s: s.split("=", 1)  # noqa: E731
    grid = {k: [yaml.safe_load(v) for v in vs.split(",")] for k, vs in map(split, args.grid)}
    overrides = {k: yaml.safe_load(v) for k, v in map(split, args.set)}
    with prefect_api():
        summary = sweep(args.name, grid, args.seeds, overrides, workers=args.workers, retries=args.retries,
                        stale_after=args.stale_after, repo=args.repo)
    print(sweeps.markdown(args.name, summary))


if __name__ == "__main__":
    main()
