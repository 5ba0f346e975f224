"""The DIRT-T paper's digit networks (Shu, Bui, Narui, Ermon, ICLR 2018, Appendix, Table 5; the authors'
codebase/models/nns/small.py and large.py): three blocks of three 3×3 convolutions (64 channels in
"small", 192 in "large"), each with batch norm and leaky ReLU (slope 0.1); after the first two blocks a
2×2 max pool, dropout (0.5) and Gaussian noise (σ = 1, training only); then global average pooling and a
dense layer to the classes, also batch-normalised, as the authors' arg_scope makes it.

F is everything up to the second noise layer (the code's default `trim=5`): the 8×8 feature map that
VADA's discriminator (dense 100, ReLU, dense 1) sees. C is the last block, the pooling and the dense layer.
"""

from __future__ import annotations

import torch
from torch import nn

from uda.models import Nets, feature_size


class GaussianNoise(nn.Module):
    """x + N(0, σ²) in training mode, the identity in evaluation mode."""

    def __init__(self, std: float = 1.0):
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x) if self.training else x


def _block(c_in: int, width: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(3):
        layers += [nn.Conv2d(c_in if i == 0 else width, width, 3, padding=1), nn.BatchNorm2d(width),
                   nn.LeakyReLU(0.1)]
    return layers


def _dirtt(width: int, num_classes: int, in_channels: int, image_size: int) -> Nets:
    f = nn.Sequential(
        *_block(in_channels, width), nn.MaxPool2d(2), nn.Dropout(0.5), GaussianNoise(1.0),
        *_block(width, width), nn.MaxPool2d(2), nn.Dropout(0.5), GaussianNoise(1.0),
    )
    c = nn.Sequential(*_block(width, width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(width, num_classes), nn.BatchNorm1d(num_classes))
    d = nn.Sequential(nn.Flatten(), nn.Linear(feature_size(f, in_channels, image_size), 100), nn.ReLU(),
                      nn.Linear(100, 1))
    return Nets(f, c, d)


def dirtt_small(num_classes: int, in_channels: int, image_size: int) -> Nets:
    return _dirtt(64, num_classes, in_channels, image_size)


def dirtt_large(num_classes: int, in_channels: int, image_size: int) -> Nets:
    return _dirtt(192, num_classes, in_channels, image_size)


BUILDERS = {"dirtt_small": dirtt_small, "dirtt_large": dirtt_large}
