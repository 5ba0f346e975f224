"""How well each label-free validator picks: a pool of checkpoints scored by every validator and by target
accuracy (the oracle), then rank correlations and the accuracy each validator's pick loses.

    python benchmarks/validators.py --experiment mnist_usps --keep /tmp/bench/keep \
        --pool docs/results/validators_mnist_usps.json

The pool is every snapshot that benchmarks/methods.py kept under --keep/<experiment>/<variant>-seed<s>/
(methods × settings × seeds × 10 snapshots). Each is scored as the evaluate stage scores candidates
(uda.evaluation.validator_inputs: seeded samples of source train, source validation and target train
images; no target labels), and its target test accuracy is recorded for this benchmark only. The pool is
written as JSON as it grows (a re-run continues it), so the table can be recomputed without models:

    python benchmarks/validators.py --experiment mnist_usps --pool docs/results/validators_mnist_usps.json --table

Measures, per validator: Spearman's ρ between score and target accuracy over the whole pool; the weighted
Spearman of Musgrave et al. (2022), which weights each checkpoint by (its accuracy rank / N)², so that
ordering the best checkpoints matters most; and the regret, oracle minus picked target accuracy, of
picking (a) among one run's snapshots (checkpoint selection) and (b) among all runs of a method
(checkpoint and setting/seed selection), averaged over methods.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import prepare
from methods import method_spec, resolved
from scipy.stats import rankdata, spearmanr

from uda.evaluation import validator_inputs
from uda.io import load_tensors
from uda.runtime import accuracy, load_role, load_trained, sample
from uda.validators import VALIDATORS, score_all


def score_pool(args) -> list[dict]:
    pool = json.loads(args.pool.read_text()) if args.pool.exists() else []
    done = {(r["variant"], r["seed"]) for r in pool}
    runs = sorted((args.keep / args.experiment).glob("*-seed*"))
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        base = resolved(tmp, args.experiment, "source_only", {})
        prepare(base.params)
        spec = base.run("source_only")
        data = {r: load_role(spec, r, cpu) for r in ("source", "source_val", "target", "target_test")}
        k = args.features
        data |= {"source_idx": sample(len(data["source"]), k, 0), "target_idx": sample(len(data["target"]), k, 1),
                 "val_idx": sample(len(data["source_val"]), k, 2)}
        for run in runs:
            variant, seed = re.fullmatch(r"(.+)-seed(\d+)", run.name).groups()
            if (variant, int(seed)) in done or not (run / "model/model.pt").exists():
                continue
            name, overrides, _ = method_spec(variant)
            method = load_trained(resolved(tmp, args.experiment, name, overrides).run(name), run / "model", cpu)
            start = time.perf_counter()
            for snap in sorted((run / "model/snapshots").glob("step_*.pt")):
                state = load_tensors(snap, "benchmarks/methods.py --keep")
                method.load_eval_state(state["nets"])
                scores = score_all(*validator_inputs(method, data, 1000), 0)
                pool.append({"variant": variant, "method": name, "seed": int(seed), "step": state["step"],
                             "scores": scores, "target_test_acc": accuracy(method, data["target_test"], 1000)[0]})
            args.pool.parent.mkdir(parents=True, exist_ok=True)
            args.pool.write_text(json.dumps(pool, indent=1) + "\n")  # every run as it lands
            print(f"{run.name}: scored in {time.perf_counter() - start:.0f} s", flush=True)
    return pool


def weighted_spearman(score: np.ndarray, acc: np.ndarray) -> float:
    """Pearson correlation of the ranks, each checkpoint weighted by (accuracy rank / N)²."""
    rs, ra = rankdata(score), rankdata(acc)
    w = (ra / len(ra)) ** 2
    w = w / w.sum()
    ms, ma = (w * rs).sum(), (w * ra).sum()
    cov = (w * (rs - ms) * (ra - ma)).sum()
    return float(cov / np.sqrt((w * (rs - ms) ** 2).sum() * (w * (ra - ma) ** 2).sum()))


def regret(rows: list[dict], validator: str) -> float:
    """Oracle minus picked target accuracy within `rows` (ties go to the later checkpoint)."""
    acc = [r["target_test_acc"] for r in rows]
    if validator == "last":
        return max(acc) - acc[-1]
    picked = max(range(len(rows)), key=lambda i: (rows[i]["scores"][validator], i))
    return max(acc) - acc[picked]


def analyse(pool: list[dict]) -> dict:
    methods = sorted({r["method"] for r in pool})
    out = {"checkpoints": len(pool), "runs": len({(r["variant"], r["seed"]) for r in pool}),
           "per_method_checkpoints": {m: sum(r["method"] == m for r in pool) for m in methods}, "validators": {}}
    acc = np.array([r["target_test_acc"] for r in pool])
    for v in [*VALIDATORS, "last"]:
        row: dict = {}
        if v != "last":
            s = np.array([max(r["scores"][v], -1e30) for r in pool])
            row["spearman"] = float(spearmanr(s, acc).statistic)
            row["weighted_spearman"] = weighted_spearman(s, acc)
        per_run, across = {}, {}
        for m in methods:
            rows = [r for r in pool if r["method"] == m]
            runs = sorted({(r["variant"], r["seed"]) for r in rows})
            per_run[m] = float(np.mean([regret([r for r in rows if (r["variant"], r["seed"]) == k], v) for k in runs]))
            if v == "last":  # no score to choose a run by: the mean of the runs' last snapshots
                lasts = [[r for r in rows if (r["variant"], r["seed"]) == k][-1]["target_test_acc"] for k in runs]
                across[m] = float(max(r["target_test_acc"] for r in rows) - np.mean(lasts))
            else:
                across[m] = regret(rows, v)
        row |= {"regret_per_run": per_run, "regret_per_run_mean": float(np.mean(list(per_run.values()))),
                "regret_across_runs": across, "regret_across_runs_mean": float(np.mean(list(across.values())))}
        out["validators"][v] = row
    return out


def table(experiment: str, a: dict) -> str:
    lines = [f"{experiment}: {a['checkpoints']} checkpoints from {a['runs']} runs "
             f"({', '.join(f'{m} {n}' for m, n in a['per_method_checkpoints'].items())})", "",
             "| validator | Spearman ρ | weighted Spearman | regret, within a run | regret, across a method's runs |",
             "| --- | --- | --- | --- | --- |"]
    for v, r in sorted(a["validators"].items(), key=lambda kv: kv[1]["regret_per_run_mean"]):
        rho = "–" if "spearman" not in r else f"{r['spearman']:.3f}"
        w = "–" if "weighted_spearman" not in r else f"{r['weighted_spearman']:.3f}"
        lines.append(f"| {v} | {rho} | {w} | {100 * r['regret_per_run_mean']:.2f} pt | "
                     f"{100 * r['regret_across_runs_mean']:.2f} pt |")
    methods = list(next(iter(a["validators"].values()))["regret_per_run"])
    lines += ["", "Regret within a run, per method (points of target accuracy):", "",
              "| validator | " + " | ".join(methods) + " |", "| --- " * (len(methods) + 1) + "|"]
    for v, r in sorted(a["validators"].items(), key=lambda kv: kv[1]["regret_per_run_mean"]):
        lines.append(f"| {v} | " + " | ".join(f"{100 * r['regret_per_run'][m]:.2f}" for m in methods) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="mnist_usps")
    ap.add_argument("--keep", type=Path, help="benchmarks/methods.py's --keep folder (omit with --table)")
    ap.add_argument("--pool", type=Path, required=True, help="the scored pool (JSON), continued if it exists")
    ap.add_argument("--features", type=int, default=1000, help="images per sample (evaluate uses 2,000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", action="store_true", help="only recompute the table from --pool")
    args = ap.parse_args()
    if not args.table and args.keep is None:
        sys.exit("--keep is needed to score checkpoints (or pass --table)")
    pool = json.loads(args.pool.read_text()) if args.table else score_pool(args)
    analysis = analyse(pool)
    args.pool.with_name(args.pool.stem + "_analysis.json").write_text(json.dumps(analysis, indent=2) + "\n")
    print(table(args.experiment, analysis))


if __name__ == "__main__":
    main()
