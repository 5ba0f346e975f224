"""Training data straight from the preprocessed uint8 tensors: index batches, normalise on the device.

No per-sample PIL or DataLoader work: a batch is one gather of uint8 rows, one copy, one fused
normalisation. Each domain is iterated endlessly and reshuffled every pass by its own seeded generator,
whose state is checkpointed so that a resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from uda.preprocess import load_split

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
_RESIDENT_BYTES = 4 << 30  # on CUDA, domains up to this size live on the GPU; larger ones stay pinned on host


@dataclass
class Domain:
    images: torch.Tensor  # uint8 N×C×H×W, on the device or (pinned) host memory
    labels: torch.Tensor  # int64 N, same device as images
    mean: torch.Tensor  # 1×C×1×1 float on the training device
    std: torch.Tensor
    device: torch.device

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(self.images.device)
        x = self.images.index_select(0, idx)
        y = self.labels.index_select(0, idx)
        # by kind: a resident domain is on cuda:0, and torch.device("cuda") != torch.device("cuda:0")
        if x.device.type != self.device.type:
            x = x.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else x.to(self.device)
            y = y.to(self.device, non_blocking=True)
        # channels_last: oneDNN and cuDNN convolutions run fastest on it (1.6× here for LeNet on 2 cores).
        x = x.contiguous(memory_format=torch.channels_last).float().div_(255).sub_(self.mean).div_(self.std)
        return x, y


def load_domain(processed_dir: Path, domain: str, split: str, device: torch.device, normalize: str,
                indices: list[int] | None = None) -> Domain:
    """One split of a processed domain (optionally a subset by index), with its normalisation constants."""
    data = load_split(processed_dir, domain, split, mmap=True)
    images, labels = data["images"], data["labels"]
    if indices is not None:
        idx = torch.as_tensor(indices, dtype=torch.long)
        images, labels = images.index_select(0, idx), labels.index_select(0, idx)
    stats = json.loads((Path(processed_dir) / domain / "stats.json").read_text())
    train_split = next(iter(stats["splits"])) if "train" not in stats["splits"] else "train"
    channels = images.shape[1]
    if normalize == "per_domain":  # each domain by its own train-split statistics (no labels involved)
        mean, std = stats["splits"][train_split]["mean"], stats["splits"][train_split]["std"]
    elif normalize == "imagenet":
        mean, std = IMAGENET if channels == 3 else ([sum(IMAGENET[0]) / 3], [sum(IMAGENET[1]) / 3])
    else:
        mean, std = [0.5] * channels, [0.5] * channels
    if device.type == "cuda" and images.numel() <= _RESIDENT_BYTES:
        images, labels = images.to(device), labels.to(device)
    elif indices is None:
        images, labels = images.clone(), labels.clone()  # read the mmap once rather than at every batch
    as_t = lambda v: torch.tensor(v, dtype=torch.float32, device=device).view(1, -1, 1, 1)  # noqa: E731
    return Domain(images, labels, as_t(mean), as_t(std).clamp_min(1e-3), device)


class EndlessSampler:
    """Batches of indices into n items, forever; a fresh seeded permutation each pass (tail dropped)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds the {n} samples available")
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos, self.passes = 0, 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos, self.passes = 0, self.passes + 1
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos, "passes": self.passes}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos, self.passes = state["perm"], state["pos"], state["passes"]
