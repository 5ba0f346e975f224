"""Wire one training run from its spec: data, networks, method, loop, outputs. Tracking is injected by
the caller.

Source data: the train split minus its validation carve-out (val_split.json). Target data: the target's
train split, images only. Model selection uses source validation accuracy or the last step; target labels
feed only metrics under `monitor/`, which nothing selects on.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from uda.batches import EndlessSampler
from uda.io import atomic_dir, atomic_write, load_tensors, write_json
from uda.methods import Batch, Method
from uda.runs import RunSpec
from uda.runtime import accuracy, build_method, compute, load_role
from uda.trainer import FitResult, fit


def total_steps(spec: RunSpec, n_source_train: int) -> int:
    cfg = spec.train
    return cfg.steps if cfg.steps is not None else math.ceil(cfg.epochs * n_source_train / cfg.batch_size)


def train(spec: RunSpec, out_dir: Path, checkpoint_root: Path,
          log: Callable[[dict[str, float], int], None] = lambda m, s: None,
          log_images: Callable[[dict[str, torch.Tensor], int], None] = lambda i, s: None,
          finish: Callable[[Path, Method, FitResult], None] | None = None,
          start: Path | None = None) -> tuple[Method, FitResult]:
    """Train (or resume) the run and write its outputs. They are written into a temporary folder that
    replaces `out_dir` whole only when all of them are written, `finish(folder, method, result)`'s
    included: a failure at any point leaves the previous outputs as they were. A method that starts from
    another's model (`starts_from`) is given that stage's output folder as `start`."""
    cfg = spec.train
    torch.manual_seed(cfg.seed)
    device = compute(cfg)
    source, source_val, target = (load_role(spec, r, device) for r in ("source", "source_val", "target"))
    if cfg.monitor_target:
        target_test = load_role(spec, "target_test", device)
    steps = total_steps(spec, len(source))
    method = build_method(spec, source.images.shape[1], steps, device)
    samplers = {"source": EndlessSampler(len(source), cfg.batch_size, cfg.seed),
                "target": EndlessSampler(len(target), cfg.batch_size, cfg.seed + 1)}
    empty = torch.empty(0, device=device)

    def draw() -> Batch:
        x_s, y_s = source.batch(samplers["source"].next())
        x_t = target.batch(samplers["target"].next())[0] if method.uses_target else empty
        return Batch(x_s, y_s, x_t, source.mean, source.std, target.mean, target.std)

    def evaluate(m: Method) -> dict[str, float]:
        out = {"source/val_acc": accuracy(m, source_val, cfg.eval_batch_size)[0]}
        if cfg.monitor_target:  # monitoring only: never used to select anything
            out["monitor/target_test_acc"] = accuracy(m, target_test, cfg.eval_batch_size)[0]
        return out

    checkpoint_dir = Path(checkpoint_root) / spec.key
    if method.starts_from is not None:
        checkpoint_dir = checkpoint_dir.with_name(f"{checkpoint_dir.name}-from-{_start(method, start)}")
    result = fit(method, draw, samplers, cfg, steps, checkpoint_dir, evaluate, log, log_images)
    with atomic_dir(Path(out_dir)) as tmp:
        _save_outputs(tmp, spec, method, result, checkpoint_dir / "snapshots")
        if finish is not None:
            finish(tmp, method, result)
    return method, result


def _start(method: Method, start: Path | None) -> str:
    """Load the model `method` starts from; returns its digest, so that a new start model is not taken for
    the one a checkpoint began from."""
    if start is None:
        raise ValueError(f"{method.name} starts from {method.starts_from}'s trained model: pass its folder")
    path = Path(start) / "model.pt"
    model = load_tensors(path, f"the train@{method.starts_from} stage (dvc repro train@{method.starts_from})")
    if not isinstance(model, dict) or model.get("method") != method.starts_from:
        raise ValueError(f"{path}: holds method {model.get('method')!r}; {method.name} starts from "
                         f"{method.starts_from}")
    method.start_from(model["nets"], path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def _save_outputs(out: Path, spec: RunSpec, method: Method, result: FitResult, snapshots: Path) -> None:
    cfg = spec.train
    if snapshots.is_dir():  # a stage output, so that evaluate's dependency on them is declared
        with atomic_dir(out / "snapshots") as tmp:
            shutil.copytree(snapshots, tmp, dirs_exist_ok=True)
    model = {"method": spec.method, "network": cfg.network.model_dump(), "classes": list(spec.classes),
             "recipe": spec.exp.recipe.model_dump(), "normalize": cfg.normalize,
             "selected_step": result.selected_step,
             "nets": {k: {p: t.cpu() for p, t in state.items()} for k, state in method.export_state().items()}}
    with atomic_write(out / "model.pt") as f:
        torch.save(model, f)
    write_json(out / "metrics.json", {
        "steps": result.steps, "selected_step": result.selected_step, "select": cfg.select,
        "selected": result.selected, "final": result.final, "images_per_s": round(result.images_per_s, 1)})
