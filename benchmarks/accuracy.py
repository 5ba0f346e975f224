"""Target accuracy of each method over seeds, with the defaults of params.yaml (nothing tuned on target).

    python benchmarks/accuracy.py --experiment mnist_mnistm --steps 10000 --seeds 0 1 2

Reports the last checkpoint (the default selection) on the full target test set, the source validation
accuracy, and the wall time of each run (data loading, training and evaluations included). Results are
also written as JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import prepare, scratch_params

from uda.training import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="mnist_mnistm")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["source_only", "dann"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = dict(steps=args.steps, threads=args.threads, device="cpu", eval_every=max(args.steps // 10, 1),
                    checkpoint_every=args.steps, log_every=500)
        prepare(scratch_params(tmp, args.experiment, **base).params)
        for method in args.methods:
            for seed in args.seeds:
                params = scratch_params(tmp, args.experiment, seed=seed, **base)
                start = time.perf_counter()
                _, r = train(params.run(method), f"{tmp}/out/{method}{seed}", f"{tmp}/ckpt")
                row = {"experiment": args.experiment, "method": method, "seed": seed, "steps": r.steps,
                       "target_test_acc": r.final["monitor/target_test_acc"],
                       "source_val_acc": r.final["source/val_acc"], "images_per_s": round(r.images_per_s),
                       "wall_s": round(time.perf_counter() - start, 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n| {args.experiment} | steps | target test acc (mean ± std) | source val acc | wall per run |")
    print("| --- | --- | --- | --- | --- |")
    for method in args.methods:
        rows = [r for r in results if r["method"] == method]
        acc = [r["target_test_acc"] for r in rows]
        std = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"| {method} | {args.steps:,} | {statistics.mean(acc):.4f} ± {std:.4f} (n={len(acc)}) | "
              f"{statistics.mean(r['source_val_acc'] for r in rows):.4f} | "
              f"{statistics.mean(r['wall_s'] for r in rows) / 60:.1f} min |")


if __name__ == "__main__":
    main()
