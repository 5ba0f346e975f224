"""Prefect flow `point`: one point of a sweep (a grid point × seed), run by whichever worker of the pool takes it.

The sweep flow (flows/sweep.py) submits each point as a run of the deployment `point/uda-point`. The point
runs in a workspace of its own at the sweep's commit (tasks/workspace.py), so points on one machine never
share a params.yaml or a DVC lock, and the project's own workspace is never touched:

    dvc exp run --name <sweep>-<i> -S <overrides and point> evaluate      # in the workspace
    dvc exp push <repo> <sweep>-<i>                                         # `dvc exp show` in the project

Stages it does not change come from the machine's DVC cache (run cache included, and for `download`, whose
outputs DVC persists and keeps no run cache of, the lock entry of the last point run here); checkpoints go to the
machine's `checkpoints/` (tasks/workspace.machine_dir), so a point re-run after its worker died resumes.
Its results travel through MLflow, not the disk: its stage runs are children of the sweep's parent run,
and once it has finished it logs one more child, `stage=sweep_point`, holding `point.json`; the sweep
builds its table from those, so a point that did not finish is never counted.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from tasks import ROOT, fanout
from tasks import workspace as workspaces
from tasks.dvc import dvc, read_headlines, set_params
from uda import layout, tracking
from uda.config import load_params
from uda.io import write_json

STAGE = "sweep_point"


@flow(name="point", validate_parameters=False)
def point(sweep: str, index: int, point: dict, overrides: dict, commit: str, repo: str, parent_run_id: str,
          tracking_uri: str, experiment: str, keep_workspace: bool = False) -> dict:
    with fanout.heartbeats(flow_run.get_id()):
        return _run(sweep, index, point, overrides, commit, repo, parent_run_id, tracking_uri, experiment,
                    keep_workspace)


def _run(sweep: str, index: int, point: dict, overrides: dict, commit: str, repo: str, parent_run_id: str,
         tracking_uri: str, experiment: str, keep_workspace: bool) -> dict:
    machine = workspaces.machine_dir(ROOT)  # its DVC cache and checkpoints serve every point run on this machine
    exp_name = f"{sweep}-{index}"
    ws = workspaces.create(repo, commit, machine, f"{sweep}/{index}-{flow_run.get_id() or 'local'}")
    path = Path(ws["path"])
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "UDA_PARENT_RUN_ID": parent_run_id, "UDA_SWEEP": sweep,
           "UDA_SWEEP_POINT": json.dumps(point), "UDA_CHECKPOINT_ROOT": str(machine / layout.CHECKPOINTS),
           # The stages run the commit's code (the workspace's), not the checkout's editable install.
           "PYTHONPATH": os.pathsep.join([str(path / "src"), str(path), os.environ.get("PYTHONPATH", "")])}
    # Up to the evaluations only: the sweep's own table and heatmaps stand in for t-SNE and report.
    dvc(["exp", "run", "--name", exp_name, *set_params(dict(overrides) | point), "evaluate"], path, env)
    workspaces.remember_persisted(path, machine)  # the next point here restores `download` instead of re-running it
    methods = load_params(path / "params.yaml").pipeline.all_methods
    details = read_headlines(path, methods)
    dvc(["exp", "push", "--force", *([] if workspaces.has_remote(path) else ["--no-cache"]), repo, exp_name], path, env)
    result = {"index": index, "point": point, "details": details, "dvc_experiment": exp_name,
              "workspace_seconds": ws["seconds"], "host": socket.gethostname()}
    _record(result, sweep, parent_run_id, tracking_uri, experiment, path)
    if not keep_workspace:
        workspaces.remove(path)
    return result


def _record(result: dict, sweep: str, parent_run_id: str, tracking_uri: str, experiment: str, path: Path) -> None:
    """The finished point as one more child of the sweep's parent run: what the sweep's table is built from."""
    tags = {"stage": STAGE, "sweep": sweep, "sweep_index": str(result["index"]),
            "sweep_point": json.dumps(result["point"]), "mlflow.parentRunId": parent_run_id,
            "dvc_experiment": result["dvc_experiment"], "host": result["host"]}
    with tracking.run(experiment, run_name=f"point {sweep}-{result['index']}", tags=tags, uri=tracking_uri):
        tracking.log_params({k: json.dumps(v) if not isinstance(v, str) else v for k, v in result["point"].items()})
        accs = {f"{m}/{domain}/test_acc": d[domain]["test_acc"] for m, d in result["details"].items()
                for domain in ("target", "source")}
        tracking.log_metrics(accs | {"point/workspace_seconds": result["workspace_seconds"]})
        write_json(path / "point.json", result)
        tracking.log_artifact(path / "point.json")
