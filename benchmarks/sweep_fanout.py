"""The same 4-point sweep with one worker and with two: wall times, their ratio, and the isolation's cost.

    python benchmarks/sweep_fanout.py [--steps 1000] [--out docs/results/sweep_fanout.json]

A scratch clone of this repository at HEAD (the sweep runs a commit) gets its own Prefect server and MLflow
server (sqlite) on loopback, and the `gpu` limit is set to 2 so that two points may train at once. First a
warm-up sweep fills the DVC cache with the data stages, as any sweep after the first finds it; then the
4-point sweep (source-only, four seeds, one thread each) runs with one worker, and four other seeds with
two. Per point: its flow run's wall time (Prefect's API) and the seconds spent creating its workspace
(MLflow). The isolation's whole cost per point is measured against the way sweeps ran before fan-out:
the same point as `dvc exp run -S …` in the project's own workspace, one after another (after one
warm-up there, so that its data stages are in place, as they were for such a sweep).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sh(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def point_runs(api: str, sweep: str) -> list[dict]:
    import httpx

    body = {"flow_runs": {"tags": {"all_": [f"sweep:{sweep}"]}}, "limit": 200}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()


def sweep(root: Path, env: dict, api: str, name: str, seeds: list[int], workers: int, steps: int) -> dict:
    start = time.perf_counter()
    sh([sys.executable, "-m", "flows.sweep", "--name", name, "--seeds", *map(str, seeds), "--workers", str(workers),
        "--set", "pipeline.methods=[source_only]", "--set", "train.threads=1", "--set", f"train.steps={steps}",
        "--set", "train.eval_every=500", "--set", "train.checkpoint_every=500"], root, env)
    wall = time.perf_counter() - start
    runs = [r for r in point_runs(api, name) if r["state_type"] == "COMPLETED"]
    span = lambda r: (datetime.fromisoformat(r["end_time"]) - datetime.fromisoformat(r["start_time"])).total_seconds()  # noqa: E731
    result = json.loads((root / "reports/sweeps" / name / "sweep.json").read_text())
    return {"name": name, "workers": workers, "points": len(runs), "wall_s": wall,
            "point_wall_s": [span(r) for r in runs], **isolation(env["MLFLOW_TRACKING_URI"], name),
            "target_test_acc": [r["target_test_acc"]["source_only"] for r in result["results"]]}


def isolation(uri: str, name: str) -> dict:
    """Per point, the seconds creating its workspace took (clone + DVC config)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mnist_mnistm")
    runs = client.search_runs([exp.experiment_id], f"tags.sweep = '{name}'", max_results=1000)
    return {"workspace_s": [r.data.metrics["point/workspace_seconds"] for r in runs
                            if r.data.tags.get("stage") == "sweep_point"]}


def in_place(root: Path, env: dict, seeds: list[int], steps: int) -> list[float]:
    """Wall time of each point run as sweeps ran before fan-out: `dvc exp run` in the project's workspace."""
    walls = []
    for seed in seeds:
        start = time.perf_counter()
        sh([sys.executable, "-m", "dvc", "exp", "run", "--name", f"inplace-{seed}", "-S", f"train.seed={seed}",
            "-S", "pipeline.methods=[source_only]", "-S", "train.threads=1", "-S", f"train.steps={steps}",
            "-S", "train.eval_every=500", "-S", "train.checkpoint_every=500", "evaluate"], root, env)
        walls.append(time.perf_counter() - start)
    sh(["git", "checkout", "--", "params.yaml"], root, env)  # `dvc exp run` in the workspace leaves its edits
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/results/sweep_fanout.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from uda import services

    tmp = Path(tempfile.mkdtemp(prefix="uda-fanout-"))
    root = tmp / "project"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(root)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PREFECT_HOME": str(root / ".prefect"), **services.OFFLINE,
           "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}  # the clone's code, not this checkout's
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    record = services.start(root, services._free_port(), services._free_port())
    env |= {"PREFECT_API_URL": record["prefect_api"], "MLFLOW_TRACKING_URI": record["mlflow"]}
    try:
        sh([sys.executable, "-m", "flows.deploy", "setup", "--gpus", "2"], root, env)
        sweep(root, env, record["prefect_api"], "warmup", [99], 1, 20)  # the data stages, into the DVC cache
        rows = [sweep(root, env, record["prefect_api"], "one", [0, 1, 2, 3], 1, args.steps),
                sweep(root, env, record["prefect_api"], "two", [10, 11, 12, 13], 2, args.steps)]
        in_place(root, env, [98], 20)  # warm-up: the workspace's own data stages
        baseline = in_place(root, env, [20, 21], args.steps)
    finally:
        services.stop(root)
    one, two = rows
    point = statistics.median(one["point_wall_s"])
    summary = {"date": datetime.now().strftime("%Y-%m-%d"), "steps": args.steps, "rows": rows,
               "speedup": one["wall_s"] / two["wall_s"], "median_point_wall_s": point,
               "median_workspace_s": statistics.median(one["workspace_s"] + two["workspace_s"]),
               "in_place_point_wall_s": baseline, "isolation_cost": point / statistics.median(baseline) - 1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))
    print(f"isolation: a point takes {point:.0f} s as a flow run in its own workspace, "
          f"{statistics.median(baseline):.0f} s in place ({summary['isolation_cost']:+.1%}); creating the "
          f"workspace {summary['median_workspace_s']:.1f} s")
    for r in rows:
        print(f"{r['workers']} worker(s): {r['wall_s']:.0f} s for {r['points']} points "
              f"(point median {statistics.median(r['point_wall_s']):.0f} s)")


if __name__ == "__main__":
    main()
