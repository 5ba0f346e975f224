"""MCD: Maximum Classifier Discrepancy.

Saito, Watanabe, Ushiku, Harada, "Maximum Classifier Discrepancy for Unsupervised Domain Adaptation",
CVPR 2018, §3.2. A feature generator F and two classifiers C1, C2, with the discrepancy

    d(p1, p2) = (1/K) Σ_k |p1_k − p2_k|   (eq. 1; mean over the batch too),

are trained in three steps per iteration, as in the authors' code (mil-tokyo/MCD_DA, classification):

    A: min over F, C1, C2 of  L(x_s, y_s) = CE(C1(F(x_s)), y_s) + CE(C2(F(x_s)), y_s)          (eq. 2)
    B: min over C1, C2 (F fixed) of  L(x_s, y_s) − d(C1(F(x_t)), C2(F(x_t)))                   (eq. 3)
    C: min over F (C1, C2 fixed) of  d(C1(F(x_t)), C2(F(x_t))), repeated n times (num_k = 4)   (eq. 4)

Each step runs a fresh forward after the previous update. Predictions are the sum of C1's and C2's logits
(the authors' ensemble). F's and the classifiers' optimisers are train.optimizer and train.schedule (the
paper: Adam, lr 2e-4, weight decay 5e-4, which params.yaml sets for mcd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import Count, MethodConfig, TrainConfig
from uda.methods.base import Batch, Method


class McdConfig(MethodConfig):
    num_k: Count = 4  # n: F's updates per iteration in step C


def discrepancy(logits_1: torch.Tensor, logits_2: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the two classifiers' probabilities (eq. 1)."""
    return (F_.softmax(logits_1.float(), dim=1) - F_.softmax(logits_2.float(), dim=1)).abs().mean()


class Ensemble(nn.Module):
    """C1(f) + C2(f): the classifier evaluation uses."""

    def __init__(self, c1: nn.Module, c2: nn.Module):
        super().__init__()
        self.c1, self.c2 = c1, c2

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.c1(f) + self.c2(f)


class Mcd(Method):
    name = "mcd"
    Config = McdConfig
    eval_nets = ("F", "C1", "C2")

    @classmethod
    def build_nets(cls, cfg: McdConfig, train: TrainConfig, num_classes: int, channels: int,
                   image_size: int) -> dict[str, nn.Module]:
        nets = Method.build_nets(cfg, train, num_classes, channels, image_size)
        second = Method.build_nets(cfg, train, num_classes, channels, image_size)  # C2: its own initial weights
        return {"F": nets["F"], "C1": nets["C"], "C2": second["C"]}

    def __init__(self, nets: dict[str, nn.Module], cfg: McdConfig, train: TrainConfig, total_steps: int):
        super().__init__(nets, train)
        self.cfg = cfg
        self.add_optimizer("F", ["F"], train.optimizer, train.schedule, total_steps)
        self.add_optimizer("C", ["C1", "C2"], train.optimizer, train.schedule, total_steps)

    def classify(self, f: torch.Tensor) -> torch.Tensor:
        return self.nets["C1"](f) + self.nets["C2"](f)

    def classifier(self) -> nn.Module:
        return nn.Sequential(self.nets["F"], Ensemble(self.nets["C1"], self.nets["C2"]))

    def _source_loss(self, x_s: torch.Tensor, y_s: torch.Tensor, detach: bool = False) -> tuple[torch.Tensor, ...]:
        f_s = self.nets["F"](x_s)
        f_s = f_s.detach() if detach else f_s
        z_1, z_2 = self.nets["C1"](f_s), self.nets["C2"](f_s)
        return F_.cross_entropy(z_1.float(), y_s) + F_.cross_entropy(z_2.float(), y_s), z_1

    def _target_discrepancy(self, x_t: torch.Tensor, detach: bool = False) -> torch.Tensor:
        f_t = self.nets["F"](x_t)
        f_t = f_t.detach() if detach else f_t
        return discrepancy(self.nets["C1"](f_t), self.nets["C2"](f_t))

    def step_a(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        with self.autocast():
            loss_s, z_1 = self._source_loss(batch.x_s, batch.y_s)
        for name in ("F", "C"):
            self.optimizers[name].zero_grad(set_to_none=True)
        loss_s.backward()
        for name in ("F", "C"):
            self.optimizers[name].step()
        return loss_s, z_1

    def step_b(self, batch: Batch) -> torch.Tensor:
        with self.autocast():  # F fixed: its outputs are detached, so only C1 and C2 move
            loss_s, _ = self._source_loss(batch.x_s, batch.y_s, detach=True)
            loss_dis = self._target_discrepancy(batch.x_t, detach=True)
        self._step("C", loss_s - loss_dis)
        return loss_dis

    def step_c(self, batch: Batch) -> torch.Tensor:
        with self.autocast():
            loss_dis = self._target_discrepancy(batch.x_t)
        self._step("F", loss_dis)  # C1 and C2 get gradients here but their optimiser does not step
        return loss_dis

    def _step(self, name: str, loss: torch.Tensor) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers[name].step()

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        lr = self.lr("F")
        loss_s, z_1 = self.step_a(batch)
        loss_b = self.step_b(batch)
        for _ in range(self.cfg.num_k):
            loss_c = self.step_c(batch)
        for scheduler in self.schedulers.values():  # one schedule step per iteration
            scheduler.step()
        return {"loss/class": loss_s.detach(), "loss/discrepancy": loss_b.detach(),
                "loss/discrepancy_F": loss_c.detach(), "loss/total": loss_s.detach(),
                "train/source_acc": (z_1.argmax(1) == batch.y_s).float().mean(), "schedule/lr": torch.tensor(lr)}


METHOD = Mcd
