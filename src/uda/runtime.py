"""Run setup shared by training, evaluation and t-SNE: the device, the data roles, the method's networks,
and passes of a method over a whole domain.

Data roles: `source` (the train split minus its validation carve-out, val_split.json), `source_val`,
`source_test` (the official test split; the carve-out where there is none, as in PACS), `target` (its train
split, whose labels nothing reads) and `target_test` (the test split; for PACS, which has one split, the
unlabelled training images themselves). Target labels are read only by evaluation and monitoring.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from uda.batches import Domain, load_domain
from uda.io import DataError, load_tensors
from uda.methods import METHODS, Method
from uda.runs import RunSpec


def compute(cfg) -> torch.device:
    """The run's device (`train.device`), with its CPU thread budget (`train.threads`) applied: training,
    evaluation and t-SNE alike, so that runs side by side on one machine (a sweep's points) keep to theirs."""
    if cfg.threads:
        from threadpoolctl import threadpool_limits  # scikit-learn's: its BLAS and OpenMP pools (PAD, t-SNE)

        torch.set_num_threads(cfg.threads)
        threadpool_limits(cfg.threads)
    return resolve_device(cfg.device)


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


def role_images(spec: RunSpec, role: str) -> tuple[str, str, tuple[int, ...] | None]:
    """Which images a role reads (see the module docstring): (domain, split, indices into it or None for all)."""
    processed = spec.data.processed_dir
    domain = spec.exp.source if role.startswith("source") else spec.exp.target
    ds = spec.datasets[domain]
    if role == "target":
        return domain, ds.train_split, None
    if role == "target_test":
        return domain, ("test" if "test" in ds.splits else ds.train_split), None
    split_file = processed / domain / "val_split.json"
    if not split_file.is_file():
        raise DataError(f"{split_file}: missing; the preprocess stage writes it (dvc repro preprocess)")
    split = json.loads(split_file.read_text())
    if role == "source":
        return domain, split["split"], tuple(split["train"])
    if role == "source_val" or "test" not in ds.splits:
        return domain, split["split"], tuple(split["val"])
    return domain, "test", None


def load_role(spec: RunSpec, role: str, device: torch.device) -> Domain:
    """One of the data an experiment uses, normalised as the run says."""
    domain, split, idx = role_images(spec, role)
    return load_domain(spec.data.processed_dir, domain, split, device, spec.train.normalize,
                       None if idx is None else list(idx))


def load_roles(spec: RunSpec, roles: tuple[str, ...], device: torch.device) -> dict[str, Domain]:
    """Several roles; those that read the same images (PACS: target and target_test) share one object, so a
    pass over one serves both."""
    loaded: dict[tuple, Domain] = {}
    out = {}
    for role in roles:
        key = role_images(spec, role)
        if key not in loaded:
            loaded[key] = load_role(spec, role, device)
        out[role] = loaded[key]
    return out


def build_method(spec: RunSpec, channels: int, steps: int, device: torch.device) -> Method:
    """The method with freshly built sub-networks on `device` (channels_last: fastest for convolutions)."""
    cls = METHODS[spec.method]
    nets = cls.build_nets(spec.config, spec.train, len(spec.classes), channels, spec.exp.recipe.image_size)
    for net in nets.values():
        net.to(device, memory_format=torch.channels_last)
    return cls(nets, spec.config, spec.train, steps)


def load_trained(spec: RunSpec, model_dir: Path, device: torch.device) -> Method:
    """The method with the weights the train stage wrote (models/<name>/model.pt), in eval mode."""
    path = Path(model_dir) / "model.pt"
    model = load_tensors(path, f"the train@{spec.method} stage (dvc repro train@{spec.method} restores it)")
    if not isinstance(model, dict) or model.get("method") != spec.method:
        raise ValueError(f"{path}: holds method {model.get('method')!r}, expected {spec.method!r}")
    method = build_method(spec, spec.exp.recipe.channels, 1, device)
    method.load_export_state(model["nets"])
    method.train(False)
    return method


def sample(n: int, k: int, seed: int) -> torch.Tensor:
    """A seeded subset of k of n indices (all of them when k ≥ n), in index order."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


@torch.no_grad()
def outputs(method: Method, domain: Domain, batch_size: int,
            idx: torch.Tensor | None = None) -> tuple[np.ndarray, torch.Tensor]:
    """Features (float32 numpy) and class logits (torch, CPU) over a domain, or the rows `idx` of it."""
    idx = torch.arange(len(domain)) if idx is None else idx
    feats, logits = [], []
    for i in range(0, len(idx), batch_size):
        x, _ = domain.batch(idx[i:i + batch_size])
        with method.autocast():
            f = method.features(x)
            logits.append(method.classify(f).float().cpu())
        feats.append(f.float().flatten(1).cpu())
    return torch.cat(feats).numpy(), torch.cat(logits)


@torch.no_grad()
def accuracy(method: Method, domain: Domain, batch_size: int) -> tuple[float, torch.Tensor]:
    """Top-1 accuracy and the predictions over a whole domain split."""
    preds = []
    for i in range(0, len(domain), batch_size):
        x, _ = domain.batch(torch.arange(i, min(i + batch_size, len(domain))))
        with method.autocast():
            preds.append(method.predict(x).argmax(1))
    pred = torch.cat(preds)
    return (pred == domain.labels.to(pred.device)).float().mean().item(), pred.cpu()
