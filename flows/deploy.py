"""Prefect set-up for this project: the work pool, the `gpu` concurrency limit, deployments, or `serve`.

    python -m flows.deploy setup [--gpus N]   # work pool `uda-process`; limit on tag `gpu` = GPUs here
    python -m flows.deploy register           # prefect.yaml's deployments (nightly pipeline, sweep, sweep point)
    python -m flows.deploy serve              # one machine, no worker: serve them in-process

Training, evaluation and t-SNE tasks carry the tag `gpu`; the limit makes Prefect run at most N of them
at once across every worker on the pool. N defaults to the GPUs visible here (CUDA_VISIBLE_DEVICES is
respected), or 1 without a GPU, so CPU runs do not pile up either.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from tasks import ROOT

POOL, TAG = "uda-process", "gpu"
POINTS_QUEUE = "points"  # sweep points; workers with `--limit 1` each, one per GPU
NIGHTLY_CRON = "0 2 * * *"


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def setup(gpus: int | None = None, keep: bool = False) -> dict:
    """The work pool and the `gpu` limit (re-created, as the GPU count may have changed; `keep`: an existing
    limit is left as it is, as a sweep does, since others may be running under it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    limit = gpus if gpus is not None else max(gpu_count(), 1)
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(POOL)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=POOL, type="process", base_job_template=ProcessWorker.get_default_base_job_template()))
        try:
            existing = client.read_concurrency_limit_by_tag(TAG)
            if keep:
                return {"work_pool": POOL, "tag": TAG, "concurrency_limit": existing.concurrency_limit}
            client.delete_concurrency_limit_by_tag(TAG)
        except ObjectNotFound:
            pass
        client.create_concurrency_limit(tag=TAG, concurrency_limit=limit)
    return {"work_pool": POOL, "tag": TAG, "concurrency_limit": limit}


def register() -> None:
    """prefect.yaml's deployments, with flow runs starting in this checkout."""
    env = {**os.environ, "UDA_PROJECT_DIR": str(ROOT)}
    subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                   check=True)


def register_point() -> None:
    """prefect.yaml's `uda-point` deployment, through the API: what `prefect deploy --name uda-point` does
    (flow runs start in this checkout), in a second rather than the CLI's many, for every sweep."""
    import yaml
    from prefect.client.orchestration import get_client

    from flows.point import point

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    entry = next(d for d in spec["deployments"] if d["name"] == "uda-point")
    # prefect.yaml's pull steps, with the checkout that `register` would record
    pull = json.loads(json.dumps(spec["pull"]).replace("{{ $UDA_PROJECT_DIR }}", str(ROOT)))
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(point.name)
        client.create_deployment(flow_id=flow_id, name=entry["name"], entrypoint=entry["entrypoint"],
                                 description=entry.get("description"), pull_steps=pull,
                                 work_pool_name=entry["work_pool"]["name"],
                                 work_queue_name=entry["work_pool"].get("work_queue_name"))


def serve() -> None:
    from prefect import serve as prefect_serve

    from flows.pipeline import pipeline
    from flows.point import point
    from flows.sweep import sweep

    prefect_serve(pipeline.to_deployment(name="nightly", cron=NIGHTLY_CRON),
                  sweep.to_deployment(name="on-demand", parameters={"name": "seeds", "seeds": [0, 1, 2]}),
                  point.to_deployment(name="uda-point"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("setup").add_argument("--gpus", type=int, help="concurrency limit (default: GPUs visible, ≥ 1)")
    sub.add_parser("register")
    sub.add_parser("serve")
    args = ap.parse_args()
    if args.command == "setup":
        print(setup(args.gpus))
    elif args.command == "register":
        register()
    else:
        serve()


if __name__ == "__main__":
    main()
