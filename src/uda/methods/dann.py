"""DANN: domain-adversarial training with a gradient reversal layer.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015; Ganin et al.,
"Domain-Adversarial Training of Neural Networks", JMLR 2016. The saddle point of eq. (18),

    E(θ_f, θ_y, θ_d) = L_y(θ_f, θ_y) − λ · L_d(θ_f, θ_d),

is found by plain SGD on L_y + w·L_d with the gradient reversal layer R_λ between F and D (eq. 19-20):
R is the identity forward and multiplies the gradient by −λ_p backward, so D minimises L_d (at λ = 1)
while F maximises it. λ_p = 2/(1+exp(−γ·p)) − 1 (§5.2.2).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import MethodConfig, TrainConfig
from uda.methods.adversarial import BnForward, class_confusion, domain_labels, forward_domains, grad_reverse
from uda.methods.base import Batch, Method
from uda.schedules import grl_lambda


class DannConfig(MethodConfig):
    """L = L_y + w·L_d with a gradient reversal of strength λ_p before D (+ an optional MCC term)."""

    domain_weight: Annotated[float, Field(ge=0)] = 1.0  # w
    gamma: Annotated[float, Field(ge=0)] = 10.0  # λ_p = 2/(1+exp(−γp)) − 1
    bn: BnForward = "per_domain"  # separate forwards of x_s and x_t, as wogong/pytorch-dann (adversarial.py)
    mcc_weight: Annotated[float, Field(ge=0)] = 0.0  # Minimum Class Confusion on target as an add-on (0: off)
    mcc_temperature: Annotated[float, Field(gt=0)] = 2.5


class Dann(Method):
    name = "dann"
    Config = DannConfig

    def __init__(self, nets: dict[str, nn.Module], cfg: DannConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"], "D": nets["D"]}, train)
        self.cfg = cfg
        self.add_optimizer("main", ["F", "C", "D"], train.optimizer, train.schedule, total_steps)

    def adversary_input(self, f_s: torch.Tensor, f_t: torch.Tensor, logits_s: torch.Tensor,
                        logits_t: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What D sees (before the gradient reversal) and each sample's weight in L_d (None: equal)."""
        return torch.cat([f_s, f_t]), None

    needs_target_logits = False  # whether adversary_input reads logits_t

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        cfg, C = self.cfg, self.nets["C"]
        lambda_p = grl_lambda(progress, cfg.gamma)
        with self.autocast():
            f_s, f_t = forward_domains(self.nets["F"], batch.x_s, batch.x_t, cfg.bn)
            logits_s = C(f_s)
            logits_t = C(f_t) if self.needs_target_logits or cfg.mcc_weight else None
            h, weight = self.adversary_input(f_s, f_t, logits_s, logits_t)
            d = self.nets["D"](grad_reverse(h, lambda_p)).squeeze(1).float()
            d_label = domain_labels(len(f_s), len(f_t), d.device)
            loss_y = F_.cross_entropy(logits_s.float(), batch.y_s)
            if weight is None:
                loss_d = F_.binary_cross_entropy_with_logits(d, d_label)
            else:  # Σ w_i·ℓ_i / Σ w_i
                losses = F_.binary_cross_entropy_with_logits(d, d_label, reduction="none")
                loss_d = (weight * losses).sum() / weight.sum()
            loss = loss_y + cfg.domain_weight * loss_d
            out = {}
            if cfg.mcc_weight:
                out["loss/mcc"] = class_confusion(logits_t, cfg.mcc_temperature)
                loss = loss + cfg.mcc_weight * out["loss/mcc"]
        lr = self.lr("main")
        self.update("main", loss)
        return {k: v.detach() for k, v in out.items()} | {
            "loss/class": loss_y.detach(), "loss/domain": loss_d.detach(), "loss/total": loss.detach(),
            "train/source_acc": (logits_s.argmax(1) == batch.y_s).float().mean(),
            "train/domain_acc": ((d > 0).float() == d_label).float().mean(),
            "schedule/lambda": torch.tensor(lambda_p), "schedule/lr": torch.tensor(lr)}


METHOD = Dann
