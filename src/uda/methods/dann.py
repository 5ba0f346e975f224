"""DANN: domain-adversarial training with a gradient reversal layer.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015; Ganin et al.,
"Domain-Adversarial Training of Neural Networks", JMLR 2016. The saddle point of eq. (18),

    E(θ_f, θ_y, θ_d) = L_y(θ_f, θ_y) − λ · L_d(θ_f, θ_d),

is found by plain SGD on L_y + w·L_d with the gradient reversal layer R_λ between F and D (eq. 19-20):
R is the identity forward and multiplies the gradient by −λ_p backward, so D minimises L_d (at λ = 1)
while F maximises it. λ_p = 2/(1+exp(−γ·p)) − 1 (§5.2.2).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import MethodConfig, TrainConfig
from uda.methods.base import Batch, Method
from uda.schedules import grl_lambda


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lambda_):
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lambda_ * grad, None


def grad_reverse(x: torch.Tensor, lambda_: float) -> torch.Tensor:
    """R_λ(x) = x forward; dR/dx = −λ·I backward."""
    return _GradientReversal.apply(x, lambda_)


class DannConfig(MethodConfig):
    """L = L_y + w·L_d with a gradient reversal of strength λ_p before D."""

    domain_weight: Annotated[float, Field(ge=0)] = 1.0  # w
    gamma: Annotated[float, Field(ge=0)] = 10.0  # λ_p = 2/(1+exp(−γp)) − 1
    bn: Literal["shared", "per_domain"] = Field(
        "per_domain", description="shared: one forward of [x_s; x_t]; per_domain: separate forwards")


class Dann(Method):
    name = "dann"
    Config = DannConfig

    def __init__(self, nets: dict[str, nn.Module], cfg: DannConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"], "D": nets["D"]}, train)
        self.cfg = cfg
        self.add_optimizer("main", ["F", "C", "D"], train.optimizer, train.schedule, total_steps)

    def _features(self, x_s: torch.Tensor, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        F = self.nets["F"]
        if self.cfg.bn == "shared":  # one forward: batch-norm statistics over the mixed batch
            f = F(torch.cat([x_s, x_t]))
            return f[: len(x_s)], f[len(x_s):]
        return F(x_s), F(x_t)  # per-domain batch-norm statistics

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        lambda_p = grl_lambda(progress, self.cfg.gamma)
        with self.autocast():
            f_s, f_t = self._features(batch.x_s, batch.x_t)
            logits = self.nets["C"](f_s)
            d = self.nets["D"](grad_reverse(torch.cat([f_s, f_t]), lambda_p)).squeeze(1).float()
            d_label = torch.cat([torch.zeros(len(f_s)), torch.ones(len(f_t))]).to(d.device)
            loss_y = F_.cross_entropy(logits.float(), batch.y_s)
            loss_d = F_.binary_cross_entropy_with_logits(d, d_label)
            loss = loss_y + self.cfg.domain_weight * loss_d
        lr = self.lr("main")
        self.update("main", loss)
        return {"loss/class": loss_y.detach(), "loss/domain": loss_d.detach(), "loss/total": loss.detach(),
                "train/source_acc": (logits.argmax(1) == batch.y_s).float().mean(),
                "train/domain_acc": ((d > 0).float() == d_label).float().mean(),
                "schedule/lambda": torch.tensor(lambda_p), "schedule/lr": torch.tensor(lr)}


METHOD = Dann
