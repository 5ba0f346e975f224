"""Source only: a classifier trained on labelled source data alone (the "without adaptation" rows)."""

from __future__ import annotations

import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import MethodConfig, TrainConfig
from uda.methods.base import Batch, Method


class SourceOnly(Method):
    name = "source_only"
    uses_target = False

    def __init__(self, nets: dict[str, nn.Module], cfg: MethodConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"]}, train)
        self.add_optimizer("main", ["F", "C"], train.optimizer, train.schedule, total_steps)

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        return supervised_step(self, batch, "main")


def supervised_step(method: Method, batch: Batch, optimizer: str) -> dict[str, torch.Tensor]:
    """One cross-entropy update of F and C on the source batch (also ADDA's pre-training)."""
    with method.autocast():
        logits = method.predict(batch.x_s)
        loss = F_.cross_entropy(logits.float(), batch.y_s)
    lr = method.lr(optimizer)
    method.update(optimizer, loss)
    return {"loss/class": loss.detach(), "loss/total": loss.detach(),
            "train/source_acc": (logits.argmax(1) == batch.y_s).float().mean(), "schedule/lr": torch.tensor(lr)}


METHOD = SourceOnly
