"""Pictures people look at: sample grids (matplotlib-free, so they are quick and headless)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from uda.io import atomic_write


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """uint8 N×C×H×W → one PNG grid."""
    grid = make_grid(images[: nrow * nrow], nrow=nrow, padding=2, pad_value=255)
    with atomic_write(Path(path)) as f:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(f, format="PNG")
    return Path(path)
