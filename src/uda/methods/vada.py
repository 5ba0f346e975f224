"""VADA: Virtual Adversarial Domain Adaptation.

Shu, Bui, Narui, Ermon, "A DIRT-T Approach to Unsupervised Domain Adaptation", ICLR 2018, eq. 8:

    min_θ  L_y(θ; D_s) + λ_d·L_d(θ; D_s, D_t) + λ_s·L_v(θ; D_s) + λ_t·[L_c(θ; D_t) + L_v(θ; D_t)]

L_y the source cross-entropy; L_d the domain loss of a feature discriminator D (dense 100, ReLU, dense 1),
trained as a GAN with flipped labels rather than a gradient reversal: D minimises
½[BCE(D(f_s), 1) + BCE(D(f_t), 0)], the classifier ½[BCE(D(f_s), 0) + BCE(D(f_t), 1)]; L_c the conditional
entropy on target (eq. 6); L_v virtual adversarial training in a ball of radius ε (eq. 7). Defaults are
the authors' code's (run_dirtt.py): λ_d = λ_t = 10⁻², λ_s = 1, ε = 3.5, Adam(10⁻³, β1 0.5) for both
players (params.yaml), an EMA of the classifier's weights (0.998) for evaluation.

The code draws a fresh batch for D's update; here D's update and the classifier's share one batch (D first,
on detached features, then the classifier against the updated D).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import MethodConfig, TrainConfig
from uda.methods.base import Batch, Method
from uda.methods.consistency import conditional_entropy, vat_loss


class VadaConfig(MethodConfig):
    domain_weight: Annotated[float, Field(ge=0)] = 1e-2  # λ_d
    source_vat: Annotated[float, Field(ge=0)] = 1.0  # λ_s
    target_weight: Annotated[float, Field(ge=0)] = 1e-2  # λ_t, on L_c and L_v of target
    radius: Annotated[float, Field(gt=0)] = 3.5  # ε


def _halves(d_s: torch.Tensor, d_t: torch.Tensor, source_label: float) -> torch.Tensor:
    bce = F_.binary_cross_entropy_with_logits
    return 0.5 * (bce(d_s, torch.full_like(d_s, source_label)) + bce(d_t, torch.full_like(d_t, 1 - source_label)))


def discriminator_loss(D: nn.Module, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """D's loss, source labelled 1, on detached features (no gradient reaches the classifier)."""
    return _halves(D(f_s.detach()).float(), D(f_t.detach()).float(), 1.0)


def confusion_loss(D: nn.Module, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """The classifier's domain loss L_d: D's labels flipped."""
    return _halves(D(f_s).float(), D(f_t).float(), 0.0)


class Vada(Method):
    name = "vada"
    Config = VadaConfig
    ema_default = 0.998

    def __init__(self, nets: dict[str, nn.Module], cfg: VadaConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"], "D": nets["D"]}, train)
        self.cfg = cfg
        self.add_optimizer("main", ["F", "C"], train.optimizer, train.schedule, total_steps)
        self.add_optimizer("disc", ["D"], train.optimizer, train.schedule, total_steps)

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        cfg, F, C = self.cfg, self.nets["F"], self.nets["C"]
        with self.autocast():
            f_s, f_t = F(batch.x_s), F(batch.x_t)  # separate forwards: per-domain batch-norm statistics
            loss_disc = discriminator_loss(self.nets["D"], f_s, f_t)
        self.update("disc", loss_disc)  # D first; the classifier then plays against the updated D
        predict = lambda x: C(F(x))  # noqa: E731
        with self.autocast():
            logits_s, logits_t = C(f_s), C(f_t)
            loss_y = F_.cross_entropy(logits_s.float(), batch.y_s)
            loss_d = confusion_loss(self.nets["D"], f_s, f_t)
            loss_ent = conditional_entropy(logits_t)
            zero = loss_y.new_zeros(())
            loss_vat_s = vat_loss(predict, batch.x_s, logits_s, cfg.radius) if cfg.source_vat else zero
            loss_vat_t = vat_loss(predict, batch.x_t, logits_t, cfg.radius) if cfg.target_weight else zero
            loss = (loss_y + cfg.domain_weight * loss_d + cfg.source_vat * loss_vat_s
                    + cfg.target_weight * (loss_ent + loss_vat_t))
        lr = self.lr("main")
        self.update("main", loss)
        return {"loss/class": loss_y.detach(), "loss/domain": loss_d.detach(), "loss/disc": loss_disc.detach(),
                "loss/entropy": loss_ent.detach(), "loss/vat_source": loss_vat_s.detach(),
                "loss/vat_target": loss_vat_t.detach(), "loss/total": loss.detach(),
                "train/source_acc": (logits_s.argmax(1) == batch.y_s).float().mean(), "schedule/lr": torch.tensor(lr)}


METHOD = Vada
