"""Self-ensembling: a mean teacher for domain adaptation.

French, Mackiewicz, Fisher, "Self-ensembling for Visual Domain Adaptation", ICLR 2018, §3 (after the mean
teacher of Tarvainen & Valpola, 2017). A student (F, C) learns from labelled source images and from a
teacher whose weights are its exponential moving average (α = 0.99: `train.ema`, which this method sets),
on two independently augmented views of each target image:

    L = CE(student(aug(x_s)), y_s) + w_u · [ mean_i m_i·‖z_i − z̃_i‖²/K  +  w_b · mean_i(m_i) · L_bal ]

z = softmax(student(aug(x_t))), z̃ = softmax(teacher(aug′(x_t))) (no gradient); m_i = [max_k z̃_ik > τ] the
confidence threshold (τ = 0.968); L_bal = K·mean_k BCE(z̄_k, 1/K) on the batch's mean prediction z̄, the
class-balance loss (§3.3). Defaults as the authors' code: w_u = 3, w_b = 0.005, Adam(10⁻³), batches of 64,
augmentation by ±2 px translation, affine σ 0.1 and noise σ 0.1 on both domains (params.yaml). The teacher
runs in training mode with its own batch-norm statistics (of target batches); evaluation uses the teacher.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import MethodConfig, TrainConfig
from uda.methods.base import Batch, Method


class SelfEnsemblingConfig(MethodConfig):
    unsup_weight: Annotated[float, Field(ge=0)] = 3.0  # w_u
    confidence_threshold: Annotated[float, Field(ge=0, le=1)] = 0.96837722  # τ
    class_balance: Annotated[float, Field(ge=0)] = 0.005  # w_b


def robust_bce(p: torch.Tensor, target: torch.Tensor | float) -> torch.Tensor:
    """−[t·log(p + 10⁻⁶) + (1 − t)·log(1 − p + 10⁻⁶)], elementwise (the code's robust_binary_crossentropy)."""
    return -(target * torch.log(p + 1e-6) + (1 - target) * torch.log(1 - p + 1e-6))


def consistency_loss(z: torch.Tensor, z_teacher: torch.Tensor, threshold: float,
                     class_balance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(the unsupervised loss in brackets above, the confidence mask m) for student and teacher
    probabilities z and z̃."""
    mask = (z_teacher.max(1).values > threshold).float()
    loss = (((z - z_teacher) ** 2).mean(1) * mask).mean()
    if class_balance:
        k = z.shape[1]
        balance = robust_bce(z.mean(0), 1.0 / k).mean() * k
        loss = loss + class_balance * balance * mask.mean()
    return loss, mask


class SelfEnsembling(Method):
    name = "self_ensembling"
    Config = SelfEnsemblingConfig
    ema_default = 0.99  # the teacher
    ema_own_buffers = True

    def __init__(self, nets: dict[str, nn.Module], cfg: SelfEnsemblingConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"]}, train)
        if self.ema is None:
            raise ValueError("self_ensembling needs its teacher: train.ema must be > 0 (the paper's 0.99)")
        self.cfg = cfg
        self.add_optimizer("main", ["F", "C"], train.optimizer, train.schedule, total_steps)

    def augmented(self, batch: Batch) -> Batch:
        return batch  # step() draws its own views: one of x_s, two of x_t

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        cfg, aug = self.cfg, self.augment
        teacher = self.ema.nets
        x_s = aug(batch.x_s, batch.mean_s, batch.std_s)
        x_t_student, x_t_teacher = (aug(batch.x_t, batch.mean_t, batch.std_t) for _ in range(2))
        for net in teacher.values():
            net.train(True)  # dropout and batch statistics, as the student; no gradient
        with self.autocast():
            logits_s = self.predict(x_s)
            z = F_.softmax(self.predict(x_t_student).float(), 1)
            with torch.no_grad():
                z_teacher = F_.softmax(teacher["C"](teacher["F"](x_t_teacher)).float(), 1)
            loss_y = F_.cross_entropy(logits_s.float(), batch.y_s)
            loss_u, mask = consistency_loss(z, z_teacher, cfg.confidence_threshold, cfg.class_balance)
            loss = loss_y + cfg.unsup_weight * loss_u
        lr = self.lr("main")
        self.update("main", loss)  # the loop then moves the teacher: θ̄ ← α·θ̄ + (1 − α)·θ
        return {"loss/class": loss_y.detach(), "loss/consistency": loss_u.detach(), "loss/total": loss.detach(),
                "train/confident_fraction": mask.mean(), "train/source_acc": (logits_s.argmax(1) == batch.y_s)
                .float().mean(), "schedule/lr": torch.tensor(lr)}


METHOD = SelfEnsembling
