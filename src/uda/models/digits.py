"""Digit networks: the DANN paper's MNIST and SVHN nets (Ganin et al., JMLR 2016, Fig. 4), the LeNet
variant of the popular PyTorch re-implementations (wogong/pytorch-dann's MNISTmodel), and the two digit
backbones of Transfer-Learning-Library (tllib.vision.models.digits): its LeNet and the DTN of SVHN→MNIST.
Their domain head is ADDA's discriminator (Tzeng et al., CVPR 2017, §4.1: two hidden layers of 500).

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


def lenet_tllib(num_classes: int, in_channels: int, image_size: int) -> Nets:
    """tllib's LeNet: conv5×5 20 → pool → ReLU → conv5×5 50 → dropout2d 0.5 → pool → ReLU → FC500 → ReLU →
    dropout 0.5 (500 features at 28×28); C: one linear layer; D: 500 → 500 → 1."""
    f = nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Conv2d(20, 50, 5), nn.Dropout2d(0.5), nn.MaxPool2d(2), nn.ReLU(inplace=True), nn.Flatten(),
    )
    f.append(nn.Linear(feature_size(f, in_channels, image_size), 500))
    f.extend([nn.ReLU(inplace=True), nn.Dropout(0.5)])
    return Nets(f, nn.Linear(500, num_classes), _mlp([500, 500, 500, 1]))


def dtn(num_classes: int, in_channels: int, image_size: int) -> Nets:
    """The DTN of SVHN→MNIST (Taigman et al., ICLR 2017; as in CyCADA and tllib): three conv5×5 stride-2
    layers of 64, 128, 256 with batch norm and dropout2d 0.1, 0.3, 0.5, then FC512 → BN → ReLU → dropout
    0.5; C: one linear layer; D: 512 → 500 → 500 → 1."""
    layers: list[nn.Module] = []
    for a, b, p in ((in_channels, 64, 0.1), (64, 128, 0.3), (128, 256, 0.5)):
        layers += [nn.Conv2d(a, b, 5, stride=2, padding=2), nn.BatchNorm2d(b), nn.Dropout2d(p), nn.ReLU(inplace=True)]
    f = nn.Sequential(*layers, nn.Flatten())
    f.append(nn.Linear(feature_size(f, in_channels, image_size), 512))
    f.extend([nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Dropout(0.5)])
    return Nets(f, nn.Linear(512, num_classes), _mlp([512, 500, 500, 1]))


BUILDERS = {"dann_mnist": dann_mnist, "dann_svhn": dann_svhn, "lenet": lenet, "lenet_tllib": lenet_tllib,
            "dtn": dtn}
