"""Network registry: each builder returns the sub-networks a method takes (F, C and a domain head D)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from torch import nn


@dataclass
class Nets:
    """F: x → f (flat features); C: f → class logits; D: f → one domain logit (source 0, target 1)."""

    feature_extractor: nn.Module
    classifier: nn.Module
    domain_head: nn.Module


def build(name: str, num_classes: int, in_channels: int, image_size: int, **options) -> Nets:
    from uda.models import alexnet, digits, dirtt, resnet

    builders = {**digits.BUILDERS, **dirtt.BUILDERS, **alexnet.BUILDERS, **resnet.BUILDERS}
    if name not in builders:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(sorted(builders))}")
    accepted = inspect.signature(builders[name]).parameters  # options a network has no use for are dropped
    return builders[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                          **{k: v for k, v in options.items() if k in accepted})


def feature_size(f: nn.Module, in_channels: int, image_size: int) -> int:
    """Width of F's flat output, by a dummy forward in eval mode (so every net works at any size it fits)."""
    import torch

    with torch.no_grad():
        was = f.training
        f.eval()
        n = f(torch.zeros(1, in_channels, image_size, image_size)).flatten(1).shape[1]
        f.train(was)
    return n


def domain_discriminator(in_features: int, hidden: int = 1024) -> nn.Sequential:
    """in → hidden → hidden → 1 logit, with batch norm and ReLU between (Transfer-Learning-Library's
    DomainDiscriminator; the CDAN authors' AdversarialNetwork is the same widths with dropout instead)."""
    return nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, 1))


def with_bottleneck(nets: Nets, width: int, num_classes: int, in_channels: int, image_size: int) -> Nets:
    """Transfer-Learning-Library's ImageClassifier: F's features through Linear → BN → ReLU of `width`, and C
    one linear layer on them. D must take `width` inputs, so it is the tllib discriminator."""
    n = feature_size(nets.feature_extractor, in_channels, image_size)
    f = nn.Sequential(nets.feature_extractor, nn.Linear(n, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True))
    return Nets(f, nn.Linear(width, num_classes), domain_discriminator(width))


class InstanceNorm(nn.Module):
    """Each image's channels to zero mean and unit variance over its pixels (no learned scale): the
    `--inorm` input layer of the DIRT-T code, which makes one VAT radius fit every dataset."""

    def forward(self, x):
        from torch.nn import functional as F_

        return F_.instance_norm(x)


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every conv and linear layer."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
