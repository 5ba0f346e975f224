"""Batched, seeded image augmentation on the device (`train.augment`, uda.config.AugmentConfig).

French, Mackiewicz, Fisher, "Self-ensembling for Visual Domain Adaptation", ICLR 2018, §4: a random affine
map per image (I + N(0, σ) on the 2×2 part, a translation uniform in ±t pixels, about the image centre),
then Gaussian noise; for MNIST↔SVHN also an intensity flip, scale and offset. Everything is drawn from one
`torch.Generator` whose state travels with the checkpoint, so a resumed run augments exactly as an
uninterrupted one. Images arrive normalised (x − mean)/std and are augmented in pixel units: mapped back,
changed, normalised again, so that σ and t mean the same on every dataset.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F_

from uda.config import AugmentConfig


class Augment:
    def __init__(self, cfg: AugmentConfig, seed: int):
        self.cfg = cfg
        # On the CPU whatever the device: the same seed draws the same numbers on every machine.
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    def _uniform(self, n: int, lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, *shape, generator=self.generator)

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = torch.eye(2, 3).repeat(n, 1, 1)
        if self.cfg.affine_std:
            theta[:, :, :2] += self.cfg.affine_std * torch.randn(n, 2, 2, generator=self.generator)
        if self.cfg.translate:  # pixels → affine_grid's [−1, 1] coordinates (2/size per pixel)
            shift = self._uniform(n, -self.cfg.translate, self.cfg.translate, 2)
            theta[:, :, 2] = shift * torch.tensor([2.0 / w, 2.0 / h])
        theta = theta.to(x.device, x.dtype)
        grid = F_.affine_grid(theta, list(x.shape), align_corners=False)
        return F_.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def __call__(self, x: torch.Tensor, mean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None) -> torch.Tensor:
        """A freshly augmented copy of the normalised batch `x` (the batch itself when nothing is enabled)."""
        cfg = self.cfg
        if not cfg.enabled:
            return x
        mean = torch.zeros(1, device=x.device) if mean is None else mean
        std = torch.ones(1, device=x.device) if std is None else std
        n = len(x)
        p = x.float() * std + mean  # pixels in [0, 1]; zero padding outside the image is black
        if cfg.affine_std or cfg.translate:
            p = self._affine(p)
        per_image = (n, 1, 1, 1)
        if cfg.intensity_flip:
            flip = (torch.rand(per_image, generator=self.generator) < 0.5).to(p.device)
            p = torch.where(flip, 1.0 - p, p)
        if cfg.intensity_scale:
            p = 0.5 + (p - 0.5) * self._uniform(n, *cfg.intensity_scale, 1, 1, 1).to(p.device)
        if cfg.intensity_offset:
            p = p + self._uniform(n, *cfg.intensity_offset, 1, 1, 1).to(p.device)
        if cfg.noise_std:
            p = p + cfg.noise_std * torch.randn(p.shape, generator=self.generator).to(p.device)
        out = ((p - mean) / std).to(x.dtype)
        return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
