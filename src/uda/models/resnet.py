"""ResNet-18/50 with a bottleneck (Linear → BN → ReLU, 256-d), the stronger backbones of tllib's recipes."""

from __future__ import annotations

import functools

from torch import nn

from uda.models import Nets
from uda.models.pretrained import load_pretrained


def resnet(arch: str, num_classes: int, in_channels: int, image_size: int, pretrained: str | None = "imagenet",
           bottleneck: int = 256) -> Nets:
    if in_channels != 3:
        raise ValueError(f"{arch} needs 3-channel input (set the experiment's recipe.channels to 3)")
    import torchvision  # here, as in alexnet.py: only the networks that need it pay for its import

    net = getattr(torchvision.models, arch)(weights=None)
    load_pretrained(net, arch, pretrained)
    width = net.fc.in_features
    net.fc = nn.Identity()
    f = nn.Sequential(net, nn.Linear(width, bottleneck), nn.BatchNorm1d(bottleneck), nn.ReLU(inplace=True))
    d = nn.Sequential(nn.Linear(bottleneck, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5),
                      nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(1024, 1))
    return Nets(f, nn.Linear(bottleneck, num_classes), d)


BUILDERS = {"resnet18": functools.partial(resnet, "resnet18"), "resnet50": functools.partial(resnet, "resnet50")}
