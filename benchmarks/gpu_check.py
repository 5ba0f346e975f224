"""GPU readiness: each method's step under bf16 autocast + channels_last against fp32, its images/s, and the
default experiment's methods trained at a short budget through uda's own loop, with wall times.

    python benchmarks/gpu_check.py --bundle .gpu           # here: pydantic's wheels + a small preprocessed subset
    # there (Python 3.12, its own PyTorch, no network):
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/*.whl
    PYTHONPATH=/tmp/site:src python3 benchmarks/gpu_check.py --data .gpu/data --out $OUT/gpu_check.json

Without CUDA it says so and exits 0 (`--device cpu` runs the same checks on the CPU, as the test does, where
autocast is off and the comparison is fp32 against fp32). Agreement: after `--steps` identical updates from
identical weights and batches, every loss of the bf16 run is within `--tolerance` (relative, or absolute
below 1) of the fp32 run's. The whole check is sized to finish in a few minutes on one GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import prepare, scratch_params

from uda.methods import METHODS, Batch
from uda.runtime import build_method, load_role
from uda.training import train

# This project's known-good versions (constraints.txt) of what the GPU machine's image lacks or may hold older.
BUNDLE_WHEELS = ("pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5",
                 "typing-extensions==4.16.0")


def spec_for(params, name: str, device: str, amp: bool):
    spec = params.run(name)
    return dataclasses.replace(spec, train=spec.train.model_copy(update={"amp": amp, "device": device}))


def batches(spec, device: torch.device, n: int) -> list[Batch]:
    g = torch.Generator().manual_seed(0)
    source, target = load_role(spec, "source", device), load_role(spec, "target", device)
    out = []
    for _ in range(n):
        i = torch.randint(len(source), (spec.train.batch_size,), generator=g)
        j = torch.randint(len(target), (spec.train.batch_size,), generator=g)
        x_s, y_s = source.batch(i)
        out.append(Batch(x_s, y_s, target.batch(j)[0], source.mean, source.std, target.mean, target.std))
    return out


def run_steps(spec, data: list[Batch], device: torch.device, steps: int, channels_last: bool) -> list[dict]:
    torch.manual_seed(spec.train.seed)
    method = build_method(spec, data[0].x_s.shape[1], steps, device)
    if not channels_last:  # the reference: plain layout, fp32
        for net in method.nets.values():
            net.to(memory_format=torch.contiguous_format)
    return [{k: float(v) for k, v in method.step(data[i % len(data)], i / steps).items()} for i in range(steps)]


def agreement(params, name: str, device: torch.device, steps: int, tolerance: float) -> dict:
    data = batches(spec_for(params, name, device.type, False), device, 4)
    ref = run_steps(spec_for(params, name, device.type, False), data, device, steps, channels_last=False)
    fast = run_steps(spec_for(params, name, device.type, True), data, device, steps, channels_last=True)
    worst = max(abs(a[k] - b[k]) / max(1.0, abs(a[k])) for a, b in zip(ref, fast, strict=True) for k in a)
    return {"losses_fp32": ref[-1], "losses_bf16": fast[-1], "worst_difference": worst, "agree": worst <= tolerance}


def images_per_s(params, name: str, device: torch.device, steps: int) -> float:
    spec = spec_for(params, name, device.type, True)
    data = batches(spec, device, 8)
    method = build_method(spec, data[0].x_s.shape[1], steps, device)
    for b in data[:3]:  # warm-up: kernels chosen, memory allocated
        method.step(b, 0.5)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        method.step(data[i % len(data)], i / steps)
    sync()
    per_step = data[0].x_s.shape[0] + (data[0].x_t.shape[0] if method.uses_target else 0)
    return steps * per_step / (time.perf_counter() - start)


def short_training(params, device: str) -> dict:
    """Every method of the default pipeline, in its order (a refined one starts from its start's model)."""
    out, refine = {}, params.params.pipeline.refine
    with tempfile.TemporaryDirectory() as tmp:
        for name in params.params.pipeline.all_methods:
            spec = spec_for(params, name, device, True)
            start_from = next((Path(tmp) / s for s, m in refine.items() if m == name), None)
            start = time.perf_counter()
            _, result = train(spec, Path(tmp) / name, Path(tmp) / "ckpt", start=start_from)
            out[name] = {"steps": spec.train.steps, "wall_s": time.perf_counter() - start,
                         "images_per_s": result.images_per_s}
            print(f"train {name}: {out[name]}", flush=True)
    return out


def bundle(dest: Path, max_per_split: int, wheels: bool = True) -> None:
    """What the bare GPU machine lacks: pydantic's wheels for its Python 3.12, and the subset, preprocessed
    (the raw files stay here: only the tensors travel)."""
    params = scratch_params(str(dest / "data"), "mnist_mnistm", data={"max_per_split": max_per_split}).params
    prepare(params)
    shutil.rmtree(params.data.raw_dir)
    if not wheels:
        return
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_17_x86_64",
                    "--platform", "manylinux2014_x86_64", "-d", str(dest / "wheels"), *BUNDLE_WHEELS], check=True)
    print(f"bundle in {dest}: " + ", ".join(sorted(p.name for p in (dest / "wheels").iterdir())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="write the bundle here and stop")
    ap.add_argument("--max-per-split", type=int, default=2000, help="the bundle's subset size")
    ap.add_argument("--no-wheels", action="store_true", help="the bundle's data only")
    ap.add_argument("--data", type=Path, default=Path(".gpu/data"), help="a bundle's data folder")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--methods", nargs="+", help="default: every method that takes 32×32 images")
    ap.add_argument("--steps", type=int, default=5, help="updates compared, fp32 against bf16")
    ap.add_argument("--speed-steps", type=int, default=100)
    ap.add_argument("--train-steps", type=int, default=500, help="budget of the short training runs")
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.bundle:
        return bundle(args.bundle, args.max_per_split, wheels=not args.no_wheels)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; skipped (nothing was checked)")
        return
    device = torch.device(args.device)
    params = scratch_params(str(args.data), "mnist_mnistm", steps=args.train_steps, device=args.device,
                            log_every=100, eval_every=max(args.train_steps // 2, 1),
                            checkpoint_every=10**9, monitor_target=False)
    names = args.methods or [m for m, cls in METHODS.items() if cls.image_sizes is None or 32 in cls.image_sizes]
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "tolerance": args.tolerance, "methods": {}, "training": {}}
    for name in names:
        row = agreement(params, name, device, args.steps, args.tolerance)
        row["images_per_s"] = images_per_s(params, name, device, args.speed_steps)
        report["methods"][name] = row
        print(f"{name}: worst difference {row['worst_difference']:.4f} ({'agree' if row['agree'] else 'DISAGREE'}), "
              f"{row['images_per_s']:,.0f} images/s", flush=True)
    report["training"] = short_training(params, args.device)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if not all(r["agree"] for r in report["methods"].values()):
        sys.exit("gpu_check: bf16 + channels_last disagree with fp32 beyond the tolerance (see above)")


if __name__ == "__main__":
    main()
