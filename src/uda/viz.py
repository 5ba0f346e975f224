"""Pictures people look at: sample grids (PIL, quick), confusion matrices, curves and scatter plots (matplotlib,
headless). Every file is written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from uda.io import atomic_write

if TYPE_CHECKING:
    import torch


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """uint8 N×C×H×W → one PNG grid."""
    from torchvision.utils import make_grid  # here: the report draws with matplotlib only, and needs no torch

    grid = make_grid(images[: nrow * nrow], nrow=nrow, padding=2, pad_value=255)
    with atomic_write(Path(path)) as f:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(f, format="PNG")
    return Path(path)


def _figure(path: Path, fig) -> Path:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    with atomic_write(Path(path)) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers or CI
    import matplotlib.pyplot as plt

    return plt


def save_confusion(cm, classes: list[str], path: Path, title: str) -> Path:
    """Counts in each cell, colour by row-normalised rate (rows: true class, columns: predicted)."""
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(cm)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=90 if len(classes) > 10 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _figure(path, fig)


def save_curves(series: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    """One panel per metric group (loss/…, source/…, monitor/…): each series against the step."""
    plt = _pyplot()
    groups: dict[str, dict] = {}
    for key, points in series.items():
        groups.setdefault(key.split("/")[0], {})[key] = points
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.4), squeeze=False)
    order = {"loss": 0, "source": 1, "monitor": 2}
    for ax, (group, members) in zip(axes[0], sorted(groups.items(), key=lambda g: (order.get(g[0], 3), g[0])),
                                    strict=True):
        for key, points in sorted(members.items()):
            steps, values = zip(*points, strict=True) if points else ((), ())
            ax.plot(steps, values, label=key, marker="." if len(points) < 30 else None)
        ax.set_title(group + (" (monitoring only)" if group == "monitor" else ""))
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title, y=1.03)
    return _figure(path, fig)


def save_scatter_grid(panels: list[tuple[str, object, object, list[str]]], path: Path, ncols: int) -> Path:
    """Panels of 2-D points: (title, xy N×2, integer colour index N, legend names)."""
    plt = _pyplot()
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.0 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, xy, colour, names) in zip(axes.flat, panels, strict=False):
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        for k, name in enumerate(names):
            sel = colour == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=3, color=cmap(k % cmap.N), label=name, alpha=0.7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, markerscale=3, loc="best")
    return _figure(path, fig)


def save_heatmap(values, rows: list[str], cols: list[str], path: Path, title: str, row_name: str,
                 col_name: str, fmt: str = "{:.3f}") -> Path:
    """A grid of numbers (NaN: missing) as a coloured table."""
    import numpy as np

    plt = _pyplot()
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2.5, 0.8 * len(rows) + 1.8))
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    for i, j in np.ndindex(values.shape):
        if np.isfinite(values[i, j]):
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", color="white", fontsize=9)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(col_name)
    ax.set_ylabel(row_name)
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax)
    return _figure(path, fig)
