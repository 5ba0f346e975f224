"""Prefect set-up for this project: the work pool, the `gpu` concurrency limit, deployments, or `serve`.

    python -m flows.deploy setup [--gpus N]   # work pool `uda-process`; limit on tag `gpu` = GPUs here
    python -m flows.deploy register           # the deployments of prefect.yaml (nightly pipeline, sweep)
    python -m flows.deploy serve              # one machine, no worker: serve both deployments in-process

Training, evaluation and t-SNE tasks carry the tag `gpu`; the limit makes Prefect run at most N of them
at once across every worker on the pool. N defaults to the GPUs visible here (CUDA_VISIBLE_DEVICES is
respected), or 1 without a GPU, so CPU runs do not pile up either.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from tasks import ROOT

POOL, TAG = "uda-process", "gpu"
NIGHTLY_CRON = "0 2 * * *"


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def setup(gpus: int | None = None) -> dict:
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
            client.delete_concurrency_limit_by_tag(TAG)  # re-created: the GPU count may have changed
        except ObjectNotFound:
            pass
        client.create_concurrency_limit(tag=TAG, concurrency_limit=limit)
    return {"work_pool": POOL, "tag": TAG, "concurrency_limit": limit}


def register() -> None:
    env = {**os.environ, "UDA_PROJECT_DIR": str(ROOT)}
    subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                   check=True)


def serve() -> None:
    from prefect import serve as prefect_serve

    from flows.pipeline import pipeline
    from flows.sweep import sweep

    prefect_serve(pipeline.to_deployment(name="nightly", cron=NIGHTLY_CRON),
                  sweep.to_deployment(name="on-demand", parameters={"name": "seeds", "seeds": [0, 1, 2]}))


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
