"""Wire one training run: data, networks, method, loop, outputs. Tracking is injected by the caller.

Source data: the train split minus its validation carve-out (val_split.json). Target data: the target's
train split, images only. Model selection uses source validation accuracy or the last step; target labels
feed only metrics under `monitor/`, which nothing selects on.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from uda.batches import Domain, EndlessSampler, load_domain
from uda.config import Params, TrainConfig
from uda.datasets import dataset_of
from uda.io import atomic_dir, atomic_write, write_json
from uda.methods import METHODS, Batch, Method
from uda.trainer import FitResult, fit


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is visible (check CUDA_VISIBLE_DEVICES)")
    return torch.device(name)


def total_steps(params: Params, method: str, n_source_train: int) -> int:
    cfg = params.train_for(method)
    return cfg.steps if cfg.steps is not None else math.ceil(cfg.epochs * n_source_train / cfg.batch_size)


def _code_digest() -> str:
    """Hash of the uda package's source: a checkpoint made by other code is not resumed (DVC re-runs a
    finished stage when its code changed, and that must retrain, not return the old result)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def run_key(params: Params, method: str) -> str:
    """Identifies what a checkpoint belongs to: same key, same run (so resuming it is sound)."""
    relevant = {"exp": params.exp.model_dump(mode="json"), "data": params.data.model_dump(mode="json",
                exclude={"mirror"}), "train": params.train_for(method).model_dump(mode="json"),
                "method": getattr(params.methods, method).model_dump(mode="json"), "name": method,
                "code": _code_digest()}
    digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]
    return f"{params.experiment}/{method}-seed{params.train_for(method).seed}-{digest}"


@torch.no_grad()
def accuracy(method: Method, domain, batch_size: int) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy and the predictions over a whole domain split."""
    preds = []
    for i in range(0, len(domain), batch_size):
        x, _ = domain.batch(torch.arange(i, min(i + batch_size, len(domain))))
        with method.autocast():
            preds.append(method.predict(x).argmax(1))
    pred = torch.cat(preds)
    return (pred == domain.labels.to(pred.device)).float().mean().item(), pred.cpu()


def load_role(params: Params, cfg: TrainConfig, role: str, device: torch.device) -> Domain:
    """One of the data an experiment uses: `source` (train split minus the validation carve-out),
    `source_val`, `source_test` (the official test split; the carve-out where there is none, as in PACS),
    `target` (its train split, whose labels nothing reads) and `target_test` (the test split; for PACS,
    which has one split, the unlabelled training images themselves)."""
    exp, processed = params.exp, params.data.processed_dir
    domain = exp.source if role.startswith("source") else exp.target
    ds = dataset_of(domain)
    load = lambda s, idx=None: load_domain(processed, domain, s, device, cfg.normalize, idx)  # noqa: E731
    if role == "target":
        return load(ds.train_split)
    if role == "target_test":
        return load("test" if "test" in ds.splits else ds.train_split)
    split = json.loads((processed / domain / "val_split.json").read_text())
    if role == "source":
        return load(split["split"], split["train"])
    if role == "source_val" or "test" not in ds.splits:
        return load(split["split"], split["val"])
    return load("test")


def build_method(params: Params, name: str, channels: int, steps: int, device: torch.device) -> Method:
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    cfg = params.train_for(name)
    cls, method_cfg = METHODS[name], getattr(params.methods, name)
    nets = cls.build_nets(method_cfg, cfg, len(dataset_of(params.exp.source).classes), channels,
                          params.exp.recipe.image_size)
    for net in nets.values():
        net.to(device, memory_format=torch.channels_last)
    return cls(nets, method_cfg, cfg, steps)


def train(params: Params, method_name: str, out_dir: Path, checkpoint_root: Path,
          log: Callable[[dict[str, float], int], None] = lambda m, s: None,
          log_images: Callable[[dict[str, torch.Tensor], int], None] = lambda i, s: None) -> tuple[Method, FitResult]:
    cfg = params.train_for(method_name)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    source, source_val, target = (load_role(params, cfg, r, device) for r in ("source", "source_val", "target"))
    if cfg.monitor_target:
        target_test = load_role(params, cfg, "target_test", device)
    steps = total_steps(params, method_name, len(source))
    method = build_method(params, method_name, source.images.shape[1], steps, device)
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

    checkpoint_dir = Path(checkpoint_root) / run_key(params, method_name)
    result = fit(method, draw, samplers, cfg, steps, checkpoint_dir, evaluate, log, log_images)
    _save_outputs(Path(out_dir), params, method_name, method, result, dataset_of(params.exp.source).classes,
                  checkpoint_dir / "snapshots")
    return method, result


def _save_outputs(out: Path, params: Params, name: str, method: Method, result: FitResult, classes,
                  snapshots: Path) -> None:
    cfg = params.train_for(name)
    if snapshots.is_dir():  # a stage output, so that evaluate's dependency on them is declared
        with atomic_dir(out / "snapshots") as tmp:
            shutil.copytree(snapshots, tmp, dirs_exist_ok=True)
    model = {"method": name, "network": cfg.network.model_dump(), "classes": list(classes),
             "recipe": params.exp.recipe.model_dump(), "normalize": cfg.normalize,
             "selected_step": result.selected_step, "nets": {k: {p: t.cpu() for p, t in n.state_dict().items()}
                                                             for k, n in method.nets.items()}}
    with atomic_write(out / "model.pt") as f:
        torch.save(model, f)
    write_json(out / "metrics.json", {
        "steps": result.steps, "selected_step": result.selected_step, "select": cfg.select,
        "selected": result.selected, "final": result.final, "images_per_s": round(result.images_per_s, 1)})
