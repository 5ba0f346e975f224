"""Generate to Adapt's digit networks (Sankaranarayanan et al., CVPR 2018), as the authors' code builds them.

F: three unpadded 5×5 convolutions (64, 64, 128) with ReLU, 2×2 max-pooling after the first two → a 128-d
embedding for a 32×32 input. C: 128 → 128 → ReLU → classes. G: [one-hot label with an extra "fake" slot,
embedding, 512-d noise] as a 1×1 map → five transposed convolutions (batch norm + ReLU, tanh out) → 32×32.
D: four 3×3 conv + BN + LeakyReLU(0.2) blocks with pooling → 128-d, a real/fake head and a class head
(AC-GAN). The real/fake head returns a logit (the authors' sigmoid + BCE, in the numerically stable form).

`embedder2`/`classifier2` stand in for the paper's second digit pair (DigF2/DigC2, named by the MNIST→SVHN
study this project grew from). Their layer table is in the paper's supplementary, which is not available
here, so they are this project's own: a LeNet-style pair with a fully connected 512-d embedding, no batch
norm (so F may embed source and target in one forward), and C a single linear layer on top of it.
"""

from __future__ import annotations

import torch
from torch import nn


def embedder(in_channels: int, ndf: int = 64) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, ndf, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(ndf, ndf, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(ndf, 2 * ndf, 5), nn.ReLU(inplace=True), nn.Flatten(),
    )


def classifier(num_classes: int, embedding: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(embedding, embedding), nn.ReLU(inplace=True), nn.Linear(embedding, num_classes))


def embedder2(in_channels: int, ndf: int = 64) -> nn.Sequential:
    """32×32 → 5×5×2ndf → a 512-d embedding."""
    return nn.Sequential(
        nn.Conv2d(in_channels, ndf, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(ndf, 2 * ndf, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(2 * ndf * 25, 512), nn.ReLU(inplace=True),
    )


def classifier2(num_classes: int, embedding: int = 512) -> nn.Sequential:
    return nn.Sequential(nn.Linear(embedding, num_classes))


# name → (F, C, embedding width given ndf)
EMBEDDERS = {"dig1": (embedder, classifier, lambda ndf: 2 * ndf), "dig2": (embedder2, classifier2, lambda ndf: 512)}


class Generator(nn.Module):
    def __init__(self, num_classes: int, out_channels: int, embedding: int = 128, nz: int = 512, ngf: int = 64):
        super().__init__()
        self.nz = nz
        widths = [nz + embedding + num_classes + 1, ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = [nn.ConvTranspose2d(widths[0], widths[1], 2, 1, 0, bias=False)]
        for a, b in zip(widths[1:-1], widths[2:], strict=True):  # 2 → 4 → 8 → 16
            layers += [nn.BatchNorm2d(a), nn.ReLU(inplace=True), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)]
        layers += [nn.BatchNorm2d(ngf), nn.ReLU(inplace=True), nn.ConvTranspose2d(ngf, out_channels, 4, 2, 1,
                                                                                   bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, onehot: torch.Tensor, f: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """onehot: N×(classes+1), f: N×128 embedding, noise: N×nz → N×C×32×32 in [−1, 1]."""
        return self.main(torch.cat([onehot, f, noise], 1)[:, :, None, None])


class Discriminator(nn.Module):
    """`real_fake=False` drops the real/fake head (a source D whose class head has an extra "fake" class);
    `num_classes=0` drops the class head (a target D that only tells real from fake)."""

    def __init__(self, num_classes: int, in_channels: int, ndf: int = 64, real_fake: bool = True):
        super().__init__()
        blocks, widths, pools = [], [in_channels, ndf, ndf * 2, ndf * 4, ndf * 2], [2, 2, 2, 4]
        for a, b, pool in zip(widths[:-1], widths[1:], pools, strict=True):
            blocks += [nn.Conv2d(a, b, 3, 1, 1), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True), nn.MaxPool2d(pool)]
        self.features = nn.Sequential(*blocks, nn.Flatten())
        self.real_fake = nn.Linear(ndf * 2, 1) if real_fake else None
        self.classes = nn.Linear(ndf * 2, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """→ (real/fake logit N, class logits N×classes); None for a head this D does not have."""
        h = self.features(x)
        return (self.real_fake(h).squeeze(1) if self.real_fake is not None else None,
                self.classes(h) if self.classes is not None else None)


def init_weights(module: nn.Module) -> None:
    """As the authors' utils.weights_init: conv N(0, 0.02), batch norm weight N(1, 0.02), linear N(0, 0.1)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.1)
            nn.init.zeros_(m.bias)
