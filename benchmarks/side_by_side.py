"""What this machine allows two sweep workers before any orchestration: the same training run once alone and
as two plain processes side by side, each with one thread.

    python benchmarks/side_by_side.py [--steps 3000] [--out docs/results/side_by_side.json]

The run is a sweep point's training (source only on MNIST → MNIST-M, params.yaml's recipe, `--steps`, one
thread, in-run evaluation as the stage does it) called through `uda.training.train`, so no Prefect, MLflow
or DVC is involved. `ceiling` = 2 × alone / side by side: the ratio two workers could reach if the
orchestration cost nothing, to read beside `benchmarks/sweep_fanout.py`'s measured ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from datetime import date
from pathlib import Path

from _common import prepare, scratch_params

from uda.training import train


def one_run(root: str, steps: int, seed: int) -> float:
    params = scratch_params(root, "mnist_mnistm", steps=steps, seed=seed, threads=1, device="cpu",
                            checkpoint_every=10**9, eval_every=max(steps // 10, 1))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train(params.run("source_only"), Path(tmp) / "model", Path(tmp) / "ckpt")
    return time.perf_counter() - start


def timed(root: str, steps: int, seeds: list[int]) -> tuple[float, list[float]]:
    """Wall time of the runs started together (one process each), and each run's own time."""
    ctx = mp.get_context("spawn")  # a fresh interpreter each, as a worker's stage process is
    start = time.perf_counter()
    with ctx.Pool(len(seeds)) as pool:
        each = pool.starmap(one_run, [(root, steps, s) for s in seeds])
    return time.perf_counter() - start, each


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        prepare(scratch_params(root, "mnist_mnistm").params)
        alone, (alone_run,) = timed(root, args.steps, [0])
        both, pair = timed(root, args.steps, [1, 2])
    row = {"date": str(date.today()), "steps": args.steps, "alone_s": round(alone, 1),
           "alone_run_s": round(alone_run, 1), "side_by_side_s": round(both, 1),
           "side_by_side_runs_s": [round(t, 1) for t in pair], "ceiling": round(2 * alone / both, 3)}
    print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
