"""Decode a domain once into uint8 N×C×H×W tensors at the experiment's recipe, with stats and a val split.

Output, under `<processed>/<domain>/`, written as one atomic folder swap:
- `<split>.pt`: {"images": uint8 N×C×H×W, "labels": int64 N} (torch.load(..., mmap=True) maps it);
- `stats.json`: per split `n`, `class_counts`, per-channel `mean`/`std` of pixels in [0, 1], and the recipe;
- `samples.png`: a seeded grid of 64 stored train images;
- `val_split.json`: sorted indices into the train split, `train` and `val`, stratified and seeded,
  so later stages select models on held-out source data, never on target labels.
Normalisation is not baked in: training normalises on the device with these stats or ImageNet's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from uda.config import DataConfig, Recipe
from uda.datasets import DatasetSpec, Decoded, dataset_of
from uda.io import DataError, atomic_dir, load_tensors, write_json
from uda.viz import save_grid

_CHUNK = 4096  # images transformed at a time: bounds memory for 224×224 domains


def to_recipe(images: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """uint8 N×C×H×W → uint8 N×channels×S×S: channel conversion, then resize (and centre crop)."""
    c = images.shape[1]
    if c == 1 and recipe.channels == 3:
        images = images.expand(-1, 3, -1, -1)
    elif c == 3 and recipe.channels == 1:
        # ITU-R 601 luma, as PIL's convert("L") does.
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    from torchvision.transforms.v2 import functional as TF  # here: training, which imports this module, needn't

    size = recipe.image_size
    if recipe.resize is not None:
        images = TF.center_crop(TF.resize(images, [recipe.resize], antialias=True), [size, size])
    elif images.shape[-2:] != (size, size):
        images = TF.resize(images, [size, size], antialias=True)
    return images.contiguous()


def _transform(decoded: Decoded, recipe: Recipe) -> torch.Tensor:
    if isinstance(decoded.images, np.ndarray):
        chunks = (decoded.images[i : i + _CHUNK] for i in range(0, len(decoded.images), _CHUNK))
    else:  # images of varying size go one by one
        chunks = (img[None] for img in decoded.images)
    return torch.cat([to_recipe(torch.from_numpy(np.array(c)).permute(0, 3, 1, 2), recipe)
                      for c in chunks])


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels scaled to [0, 1], accumulated in float64."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for i in range(0, len(images), _CHUNK):
        x = images[i : i + _CHUNK].to(torch.float64) / 255
        total += x.sum((0, 2, 3))
        total_sq += (x * x).sum((0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return [round(v, 6) for v in mean.tolist()], [round(v, 6) for v in std.tolist()]


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded per-class carve-out of `fraction` of each class (at least one where a class has two)."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx) - 1, max(1, round(len(idx) * fraction))) if len(idx) > 1 else 0
        val.extend(rng.permutation(idx)[:k].tolist())
    val_set = set(val)
    return [i for i in range(len(labels)) if i not in val_set], sorted(val)


def _subset(decoded: Decoded, limit: int | None, seed: int) -> Decoded:
    if limit is None or len(decoded.labels) <= limit:
        return decoded
    keep = np.sort(np.random.default_rng(seed).permutation(len(decoded.labels))[:limit])
    images = decoded.images[keep] if isinstance(decoded.images, np.ndarray) else [decoded.images[i] for i in keep]
    return Decoded(images, decoded.labels[keep])


def preprocess_domain(domain: str, recipe: Recipe, data: DataConfig, ds: DatasetSpec | None = None) -> dict:
    """Decode, transform and write one domain; returns the content of its stats.json. `ds`: the domain's
    dataset where it is not built in (a folder domain's, from Params.dataset)."""
    ds = ds or dataset_of(domain)
    out = data.processed_dir / domain
    stats = {"domain": domain, "dataset": ds.name, "classes": list(ds.classes), "recipe": recipe.model_dump(),
             "max_per_split": data.max_per_split, "splits": {}}
    with atomic_dir(out) as tmp:
        for split in ds.splits:
            decoded = _subset(ds.decode(ds.raw_dir(data.raw_dir), domain, split), data.max_per_split, data.split_seed)
            if decoded.labels.min() < 0 or decoded.labels.max() >= len(ds.classes):
                raise DataError(f"{domain}/{split}: labels outside 0..{len(ds.classes) - 1}")
            images = _transform(decoded, recipe)
            labels = torch.from_numpy(decoded.labels.astype(np.int64))
            torch.save({"images": images, "labels": labels}, tmp / f"{split}.pt")
            mean, std = channel_stats(images)
            stats["splits"][split] = {
                "n": len(labels), "shape": list(images.shape[1:]), "mean": mean, "std": std,
                "class_counts": np.bincount(decoded.labels, minlength=len(ds.classes)).tolist(),
            }
            if split == ds.train_split:
                # A seeded sample of the stored pixels, for people to check what the models will see.
                pick = torch.from_numpy(np.random.default_rng(data.split_seed).permutation(len(images))[:64])
                save_grid(images[pick], tmp / "samples.png")
                train, val = stratified_split(decoded.labels, data.val_fraction, data.split_seed)
                write_json(tmp / "val_split.json", {"split": split, "fraction": data.val_fraction,
                                                    "seed": data.split_seed, "train": train, "val": val})
        write_json(tmp / "stats.json", stats)
    return stats


def load_split(processed_dir: Path, domain: str, split: str, mmap: bool = True) -> dict[str, torch.Tensor]:
    path = Path(processed_dir) / domain / f"{split}.pt"
    data = load_tensors(path, "the preprocess stage (dvc repro preprocess restores it)", mmap=mmap)
    if not (isinstance(data, dict) and {"images", "labels"} <= set(data)):
        raise DataError(f"{path}: expected a mapping with images and labels; dvc repro preprocess restores it")
    return data
