"""CDAN: conditional adversarial domain adaptation (CDAN+E with `entropy: true`).

Long, Cao, Wang, Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018. D sees the features
conditioned on the classifier's predictions g = softmax(C(f)) through the multilinear map (eq. 4)

    T⊗(f, g) = f ⊗ g   (flattened, d_f × |classes|),

or, when d_f·|classes| > 4096 (§3.1), the randomized multilinear map (eq. 5)

    T⊙(f, g) = (1/√d) (R_f f) ⊙ (R_g g),   R_f, R_g fixed Gaussian matrices of d columns,

whose inner products equal T⊗'s in expectation. The minimax problem (eq. 6) is solved as DANN's, with the
gradient reversal of strength λ_p after the map; g is treated as a constant there, as in the authors'
code (softmax output detached), and x_s and x_t go through F as one batch (`bn: shared`), as there.
CDAN+E (eq. 8) weights each sample's domain loss by w = 1 + e^{−H(g)}, normalised over the source half
and over the target half separately, as in the authors' code: L_d = Σ w_i ℓ_i / Σ w_i. The weights are
computed from the detached g, as in Transfer-Learning-Library (the authors' code also sends a reversed
gradient into C through them). D is Transfer-Learning-Library's (two hidden layers of 1024 with batch
norm; the authors' digits D has 500 with dropout).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import Count, Flag, TrainConfig
from uda.methods.adversarial import BnForward, entropy
from uda.methods.base import Method
from uda.methods.dann import Dann, DannConfig
from uda.models import domain_discriminator, feature_size


class CdanConfig(DannConfig):
    bn: BnForward = "shared"  # one forward of [x_s; x_t], as the authors' code (train_image.py) and tllib
    entropy: Flag = False  # CDAN+E: entropy-aware weights of the domain loss
    randomized: Literal["auto", "always", "never"] = "auto"  # auto: when d_f·|classes| > 4096 (the paper's rule)
    randomized_dim: Count = 1024  # d of the randomized map
    hidden: Count = 1024  # D: T(f, g) → hidden → hidden → 1 (batch norm, ReLU)


class MultilinearMap(nn.Module):
    """T(f, g) as above; the random matrices are fixed buffers drawn from `seed` (saved with the model)."""

    def __init__(self, features: int, classes: int, randomized_dim: int | None, seed: int):
        super().__init__()
        self.out_features = randomized_dim or features * classes
        if randomized_dim:
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("R_f", torch.randn(features, randomized_dim, generator=gen))
            self.register_buffer("R_g", torch.randn(classes, randomized_dim, generator=gen))
        else:
            self.R_f = self.R_g = None

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.R_f is None:
            return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)  # row c·d_f + j holds g_c·f_j
        return (f @ self.R_f) * (g @ self.R_g) / math.sqrt(self.out_features)


class Cdan(Dann):
    name = "cdan"
    Config = CdanConfig
    needs_target_logits = True

    @classmethod
    def build_nets(cls, cfg: CdanConfig, train: TrainConfig, num_classes: int, channels: int,
                   image_size: int) -> dict[str, nn.Module]:
        nets = Method.build_nets(cfg, train, num_classes, channels, image_size)
        d_f = feature_size(nets["F"], channels, image_size)
        randomized = cfg.randomized == "always" or (cfg.randomized == "auto" and d_f * num_classes > 4096)
        nets["T"] = MultilinearMap(d_f, num_classes, cfg.randomized_dim if randomized else None, train.seed)
        nets["D"] = domain_discriminator(nets["T"].out_features, cfg.hidden)
        return nets

    def __init__(self, nets: dict[str, nn.Module], cfg: CdanConfig, train: TrainConfig, total_steps: int):
        super().__init__(nets, cfg, train, total_steps)
        self.nets["T"] = nets["T"]  # no parameters: not in the optimiser, but saved and moved with the rest

    def adversary_input(self, f_s, f_t, logits_s, logits_t):
        g = F_.softmax(torch.cat([logits_s, logits_t]).float(), dim=1).detach()
        h = self.nets["T"](torch.cat([f_s, f_t]).float(), g)
        if not self.cfg.entropy:
            return h, None
        w = 1 + torch.exp(-entropy(g))
        w_s, w_t = w[: len(f_s)], w[len(f_s):]
        return h, torch.cat([w_s / w_s.sum(), w_t / w_t.sum()])


METHOD = Cdan
