"""Digit networks: the DANN paper's MNIST and SVHN nets (Ganin et al., JMLR 2016, Fig. 4) and the LeNet
variant of the popular PyTorch re-implementations (wogong/pytorch-dann's MNISTmodel).

Feature sizes are measured with a dummy forward, so every net works at any input size it fits.
"""

from __future__ import annotations

from torch import nn

from uda.models import Nets, feature_size


def _mlp(sizes: list[int], bn: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.BatchNorm1d(b)] if bn else []
            layers += [nn.ReLU(inplace=True)]
            layers += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers)


def dann_mnist(num_classes: int, in_channels: int, image_size: int) -> Nets:
    """conv5×5 32 → pool → conv5×5 48 → pool; C: FC100 → FC100 → classes; D: FC100 → 1."""
    f = nn.Sequential(
        nn.Conv2d(in_channels, 32, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(),
    )
    n = feature_size(f, in_channels, image_size)
    return Nets(f, _mlp([n, 100, 100, num_classes]), _mlp([n, 100, 1]))


def dann_svhn(num_classes: int, in_channels: int, image_size: int) -> Nets:
    """conv5×5 64 → pool3/2 → conv5×5 64 → pool3/2 → conv5×5 128; C: FC3072 → FC2048 → classes;
    D: FC1024 → FC1024 → 1.

    The paper's unpadded third 5×5 conv does not fit a 32×32 input (32→28→13→9→4 leaves nothing for it),
    so every conv here pads by 2 ("same"): 32 → 32 → 15 → 15 → 7 → 7, i.e. 128×7×7 features.
    """
    f = nn.Sequential(
        nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 128, 5, padding=2), nn.ReLU(inplace=True), nn.Flatten(),
    )
    n = feature_size(f, in_channels, image_size)
    return Nets(f, _mlp([n, 3072, 2048, num_classes]), _mlp([n, 1024, 1024, 1]))


def lenet(num_classes: int, in_channels: int, image_size: int) -> Nets:
    """wogong/pytorch-dann's MNISTmodel: (conv5×5 → BN → pool → ReLU) with 32 then 48 channels (dropout
    before the second pool); C: FC100 → FC100 → classes with BN; D: FC100 → 1 with BN."""
    f = nn.Sequential(
        nn.Conv2d(in_channels, 32, 5), nn.BatchNorm2d(32), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Conv2d(32, 48, 5), nn.BatchNorm2d(48), nn.Dropout2d(), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Flatten(),
    )
    n = feature_size(f, in_channels, image_size)
    return Nets(f, _mlp([n, 100, 100, num_classes], bn=True), _mlp([n, 100, 1], bn=True))


BUILDERS = {"dann_mnist": dann_mnist, "dann_svhn": dann_svhn, "lenet": lenet}
