"""Every method at the same wall-time budget per run: the last checkpoint and the label-free pick.

    python benchmarks/methods.py --experiment mnist_usps --minutes 5 --threads 1 --seeds 0 \
        --methods source_only dann cdan cdan:entropy=true mcc mcd adda --out docs/results/methods_mnist_usps.json

For each method (a `name:key=value,...` entry sets methods.<name> keys, e.g. CDAN+E) the steps that fit the
budget are measured once, by timing a short calibration run on the same data and threads, and rounded
down to a multiple of 100. Each run then trains for that many steps with 10 evaluations (snapshots kept
under --keep, for the validator benchmark) and is evaluated by the evaluate stage's code: target test
accuracy of the last checkpoint, and the snapshot DEV picks with its target accuracy (report only). Every
row is appended to --out as soon as it lands. Nothing is chosen with target labels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from _common import ROOT, prepare

from uda.config import merge
from uda.evaluation import evaluate, pick
from uda.methods import METHODS
from uda.runs import parse
from uda.training import train


def method_spec(entry: str) -> tuple[str, dict, str]:
    """'cdan:entropy=true' → ('cdan', {'entropy': True}, 'cdan:entropy=true'); an '@label' suffix (a longer
    budget, say) names the variant and is not a setting."""
    name, _, rest = entry.split("@")[0].partition(":")
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in rest.split(",") if kv)}
    return name, overrides, entry


def resolved(root: str, experiment: str, method: str, overrides: dict, recipe: dict | None = None,
             image_size: int | None = None, **train):
    """params.yaml with the method's overrides, a recipe (train keys, nested, as --train gives them) and the
    budget; `image_size` replaces the experiment's."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["experiment"] = experiment
    raw["data"]["root"] = root
    if image_size:
        raw["experiments"][experiment]["recipe"]["image_size"] = image_size
        # the pipeline's list plays no part in a benchmark run, but it is validated against the image size
        # (gta's networks take 32×32 only)
        raw["pipeline"] = {"methods": ["source_only"], "refine": {}}
    raw["train"] = merge(raw["train"], recipe or {}) | train
    block = dict(raw["methods"].get(method) or {})
    # the method's own optimiser settings stay (mcd's Adam); its own budget gives way to the wall-time one
    own = {k: v for k, v in block.pop("train", {}).items() if k not in ("steps", "epochs")}
    raw["methods"][method] = block | overrides | {"train": own}
    return parse(raw)


def start_of(args, tmp: str, method: str, seed: int) -> Path | None:
    """A refining method (dirt_t) starts from its start method's run of the same seed, trained earlier in
    this list (or kept under --keep by an earlier call)."""
    start = METHODS[method].starts_from
    if start is None:
        return None
    return (args.keep or Path(tmp) / "runs") / args.experiment / f"{start}-seed{seed}" / "model"


def steps_for(root: str, args, method: str, overrides: dict) -> tuple[int, float]:
    """Steps that fit the budget, from the seconds per step of a short run (evaluation excluded)."""
    n = args.calibrate_steps
    params = resolved(root, args.experiment, method, overrides, args.train, args.image_size, steps=n,
                      threads=args.threads, device="cpu",
                      eval_every=10**9, checkpoint_every=10**9, log_every=n, monitor_target=False, snapshots=False)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(params.run(method), f"{tmp}/out", f"{tmp}/ckpt", start=start_of(args, root, method, args.seeds[0]))
        per_step = (time.perf_counter() - start) / n
    return max(100, int(args.minutes * 60 / per_step) // 100 * 100), per_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="mnist_usps")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--methods", nargs="+", default=["source_only", "dann", "cdan", "mcc", "mcd", "adda"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (bf16 autocast as params.yaml's train.amp says)")
    ap.add_argument("--calibrate-steps", type=int, default=60)
    ap.add_argument("--steps", type=int, help="train this many steps instead of calibrating to --minutes")
    ap.add_argument("--label", help="appended to each variant's name as @label (e.g. a longer budget)")
    ap.add_argument("--train", type=yaml.safe_load, default={},
                    help="a recipe: train keys as YAML, merged into params.yaml's (e.g. '{batch_size: 128}')")
    ap.add_argument("--image-size", type=int, help="the experiment's image size instead of params.yaml's")
    ap.add_argument("--evaluations", type=int, default=10, help="evaluations (snapshots) per run")
    ap.add_argument("--keep", type=Path, help="where each run's model and snapshots stay (default: discarded)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--table", action="store_true", help="only print the table of --out's rows")
    args = ap.parse_args()
    if args.table:
        print(summary_table(args.experiment, json.loads(args.out.read_text())))
        return
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["variant"], r["seed"]) for r in rows}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(resolved(tmp, args.experiment, "dann", {}, image_size=args.image_size).params)
        for entry in args.methods:
            method, overrides, variant = method_spec(entry + (f"@{args.label}" if args.label else ""))
            if all((variant, s) in done for s in args.seeds):
                continue
            # every seed of a variant trains for the same steps: the first seed's calibration holds
            earlier = [r for r in rows if r["variant"] == variant and r["threads"] == args.threads]
            if args.steps:
                steps, per_step = args.steps, float("nan")
            else:
                steps, per_step = ((earlier[0]["steps"], earlier[0]["seconds_per_step"]) if earlier
                                   else steps_for(tmp, args, method, overrides))
            for seed in args.seeds:
                if (variant, seed) in done:
                    continue
                params = resolved(tmp, args.experiment, method, overrides, args.train, args.image_size, steps=steps,
                                  seed=seed, device=args.device, threads=args.threads,
                                  eval_every=max(steps // args.evaluations, 1),
                                  checkpoint_every=min(steps, 2500),  # a long run survives a kill
                                  log_every=max(steps // 20, 1))
                spec = params.run(method)
                out = (args.keep or Path(tmp) / "runs") / args.experiment / f"{variant}-seed{seed}"
                start = time.perf_counter()
                ckpt = (args.keep or Path(tmp)) / "ckpt"  # under --keep, a killed run resumes when run again
                _, result = train(spec, out / "model", ckpt, start=start_of(args, tmp, method, seed))
                train_s = time.perf_counter() - start
                ev = evaluate(spec, params.params.evaluate, out / "model", out / "evaluation")
                rows_ = ev["selection"]["candidates"]
                dev = pick(rows_, "dev")  # DEV's pick whatever evaluate.validator says (the table's column)
                row = {"experiment": args.experiment, "method": method, "variant": variant, "seed": seed,
                       "steps": steps, "threads": args.threads, "device": args.device, "recipe": args.train,
                       "image_size": args.image_size,
                       "seconds_per_step": round(per_step, 4) if per_step == per_step else None,
                       "train_wall_s": round(train_s, 1), "images_per_s": round(result.images_per_s),
                       "target_test_acc_last": rows_[-1]["target_test_acc_report_only"],
                       "source_test_acc": ev["source"]["test_acc"],
                       "source_val_acc_last": result.final["source/val_acc"], "dev_step": dev["step"],
                       "dev_target_test_acc": dev["target_test_acc_report_only"], "candidates": rows_}
                rows.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=2) + "\n")  # every result as it lands
                print(json.dumps({k: v for k, v in row.items() if k != "candidates"}), flush=True)
    print(summary_table(args.experiment, rows))


def _pm(values: list[float]) -> str:
    m = statistics.mean(values)
    return f"{m:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{m:.3f}"


def summary_table(experiment: str, rows: list[dict]) -> str:
    """One line per variant: steps, last checkpoint and DEV's pick (mean ± std over its seeds)."""
    lines = [f"| {experiment} | seeds | steps (train wall per run) | last checkpoint | DEV's pick |",
             "| --- | --- | --- | --- | --- |"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == variant]
        wall = statistics.mean(r["train_wall_s"] for r in rs) / 60
        last, dev = _pm([r["target_test_acc_last"] for r in rs]), _pm([r["dev_target_test_acc"] for r in rs])
        lines.append(f"| {variant} | {len(rs)} | {rs[0]['steps']:,} ({wall:.1f} min) | {last} | {dev} |")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
