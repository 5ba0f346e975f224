"""Pieces the adversarial methods share (DANN, CDAN, MCC): gradient reversal, the domain labels, the
batch-norm choice of one forward for both domains, and the class-confusion term (the tllib discriminator
is a network: uda.models). Not a method itself."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F_
from torch import nn


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambda_):
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambda_ * grad, None


def grad_reverse(x: torch.Tensor, lambda_: float) -> torch.Tensor:
    """R_λ(x) = x forward; dR/dx = −λ·I backward (Ganin & Lempitsky 2015, eq. 19-20)."""
    return _GradientReversal.apply(x, lambda_)


BnForward = Literal["shared", "per_domain"]  # the `bn` setting of DANN, CDAN and MCC


def forward_domains(F: nn.Module, x_s: torch.Tensor, x_t: torch.Tensor,
                    bn: BnForward) -> tuple[torch.Tensor, torch.Tensor]:
    """F(x_s), F(x_t). `shared`: one forward of [x_s; x_t], so batch norm normalises the mixed batch (the
    Caffe DANN's concatenated batch; CDAN's and MCC's authors' code; Transfer-Learning-Library);
    `per_domain`: separate forwards, so each domain is normalised by its own batch statistics."""
    if bn == "shared":
        f = F(torch.cat([x_s, x_t]))
        return f[: len(x_s)], f[len(x_s):]
    return F(x_s), F(x_t)


def domain_labels(n_s: int, n_t: int, device: torch.device) -> torch.Tensor:
    """0 for source, 1 for target."""
    return torch.cat([torch.zeros(n_s, device=device), torch.ones(n_t, device=device)])


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) per row, for probabilities p."""
    return -(p * torch.log(p + 1e-5)).sum(1)


def class_confusion(logits_t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Minimum Class Confusion (Jin et al., ECCV 2020, eq. 1-7) on a target batch:
    Ŷ = softmax(Z/T); w_i = B·(1 + e^{−H(ŷ_i)}) / Σ_j (1 + e^{−H(ŷ_j)}) (detached);
    C = Ŷᵀ W Ŷ, each row divided by its sum; L = (Σ_jj' C_jj' − Σ_j C_jj) / |classes|."""
    y = F_.softmax(logits_t.float() / temperature, dim=1)
    w = (1 + torch.exp(-entropy(y).detach()))
    w = (len(y) * w / w.sum()).unsqueeze(1)
    confusion = (y * w).t() @ y
    confusion = confusion / confusion.sum(1, keepdim=True)
    return (confusion.sum() - confusion.trace()) / y.shape[1]
