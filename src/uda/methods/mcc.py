"""MCC: Minimum Class Confusion, on its own (with the source loss); `mcc_weight` adds it to DANN and CDAN.

Jin, Wang, Long, Wang, "Minimum Class Confusion for Versatile Domain Adaptation", ECCV 2020. On a target
batch, with temperature-scaled predictions Ŷ = softmax(Z/T) (eq. 1) and entropy-based sample weights
w_i ∝ 1 + e^{−H(ŷ_i)}, normalised to sum to the batch size (eq. 3-4), the class correlation
C = Ŷᵀ W Ŷ (eq. 5) is normalised per row (eq. 6, the category normalisation), and

    L_MCC = (1/|classes|) Σ_j Σ_{j'≠j} C_jj'   (eq. 7);   L = L_y(source) + μ·L_MCC   (eq. 8).

x_s and x_t go through F as one batch (`bn: shared`), as in the authors' code and Transfer-Learning-Library,
so batch norm normalises the mixed batch; `per_domain` forwards each domain alone.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import MethodConfig, TrainConfig
from uda.methods.adversarial import BnForward, class_confusion, forward_domains
from uda.methods.base import Batch, Method


class MccConfig(MethodConfig):
    mcc_weight: Annotated[float, Field(ge=0)] = 1.0  # μ
    temperature: Annotated[float, Field(gt=0)] = 2.5  # T
    bn: BnForward = "shared"


class Mcc(Method):
    name = "mcc"
    Config = MccConfig

    def __init__(self, nets: dict[str, nn.Module], cfg: MccConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"]}, train)
        self.cfg = cfg
        self.add_optimizer("main", ["F", "C"], train.optimizer, train.schedule, total_steps)

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        with self.autocast():
            f_s, f_t = forward_domains(self.nets["F"], batch.x_s, batch.x_t, self.cfg.bn)
            logits_s, logits_t = self.classify(f_s), self.classify(f_t)
            loss_y = F_.cross_entropy(logits_s.float(), batch.y_s)
            loss_mcc = class_confusion(logits_t, self.cfg.temperature)
            loss = loss_y + self.cfg.mcc_weight * loss_mcc
        lr = self.lr("main")
        self.update("main", loss)
        return {"loss/class": loss_y.detach(), "loss/mcc": loss_mcc.detach(), "loss/total": loss.detach(),
                "train/source_acc": (logits_s.argmax(1) == batch.y_s).float().mean(), "schedule/lr": torch.tensor(lr)}


METHOD = Mcc
