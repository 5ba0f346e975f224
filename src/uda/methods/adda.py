"""ADDA: Adversarial Discriminative Domain Adaptation.

Tzeng, Hoffman, Saenko, Darrell, CVPR 2017, §4 and eq. 9. Two phases within one run:

1. Pre-training (the first `source_fraction` of the steps): the encoder F and classifier C on labelled
   source, min CE(C(F(x_s)), y_s), with train.optimizer and train.schedule.
2. Adaptation: the source encoder F_s is frozen as a copy of F (batch norm in eval mode), and F, from then
   on the target encoder M_t, starts equal to it (the paper's initialisation M_t = M_s). With the
   discriminator D (source 0, target 1, as in the authors' code) and Adam (lr 2e-4, β1 0.5, the authors'),
   each step updates, in order,

       D:   min  BCE(D(F_s(x_s)), 0) + BCE(D(F(x_t)), 1)       (L_adv_D, eq. 9, first line)
       M_t: min  BCE(D(F(x_t)), 0)                             (L_adv_M, the inverted-label GAN loss)

   C stays fixed; evaluation and features use the target encoder F with C.

D has three fully connected layers (`hidden`, `hidden`, 1; the paper's 500 with ReLU). What it sees is
`input`: `logits` (the default) as in the authors' code, whose LeNet encoder ends in the 10-d class
output, so here D sees C(F(x)) with C fixed (in eval mode, no gradient into it: only F adapts, through
it); `features` gives D the feature extractor's output, as Transfer-Learning-Library and pytorch-adapt
do. Why logits by default: against LeNet's 768-1,200-d features D wins outright and the target encoder
collapsed (0.31 on MNIST→USPS, source validation 0.15); matching the 10-d outputs keeps what C reads.
"""

from __future__ import annotations

import copy
from typing import Annotated, Literal

import torch
import torch.nn.functional as F_
from pydantic import Field
from torch import nn

from uda.config import Count, MethodConfig, TrainConfig
from uda.methods.adversarial import domain_labels
from uda.methods.base import Batch, Method
from uda.methods.source_only import supervised_step
from uda.models import feature_size


class AddaConfig(MethodConfig):
    source_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5  # the authors: 10,000 + 10,000 iterations
    lr: Annotated[float, Field(gt=0)] = 2e-4  # adaptation phase: Adam for D and M_t
    beta1: Annotated[float, Field(ge=0, lt=1)] = 0.5
    hidden: Count = 500
    input: Literal["logits", "features"] = "logits"  # what D sees: C(F(x)) as the authors, or F(x)


class Adda(Method):
    name = "adda"
    Config = AddaConfig

    @classmethod
    def build_nets(cls, cfg: AddaConfig, train: TrainConfig, num_classes: int, channels: int,
                   image_size: int) -> dict[str, nn.Module]:
        nets = Method.build_nets(cfg, train, num_classes, channels, image_size)
        d_f = num_classes if cfg.input == "logits" else feature_size(nets["F"], channels, image_size)
        D = nn.Sequential(nn.Linear(d_f, cfg.hidden), nn.ReLU(inplace=True), nn.Linear(cfg.hidden, cfg.hidden),
                          nn.ReLU(inplace=True), nn.Linear(cfg.hidden, 1))
        return {"F": nets["F"], "C": nets["C"], "F_s": copy.deepcopy(nets["F"]), "D": D}

    def __init__(self, nets: dict[str, nn.Module], cfg: AddaConfig, train: TrainConfig, total_steps: int):
        super().__init__(nets, train)
        self.cfg = cfg
        self.source_steps = max(1, round(cfg.source_fraction * total_steps))
        self.add_optimizer("source", ["F", "C"], train.optimizer, train.schedule, self.source_steps)
        for name in ("F", "D"):
            self.optimizers[name] = torch.optim.Adam(nets[name].parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.steps_done = 0
        for p in self.nets["F_s"].parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.nets["F_s"].train(False)  # the frozen source encoder keeps its batch-norm statistics

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        if self.steps_done < self.source_steps:
            out = self._pretrain(batch)
        else:
            if self.steps_done == self.source_steps:  # M_t = M_s at the start of adaptation
                self.nets["F_s"].load_state_dict(self.nets["F"].state_dict())
            out = self._adapt(batch)
        self.steps_done += 1
        return out

    def _pretrain(self, batch: Batch) -> dict[str, torch.Tensor]:
        return supervised_step(self, batch, "source") | {"schedule/phase": torch.tensor(0.0)}

    def _seen(self, encoder: str, x: torch.Tensor) -> torch.Tensor:
        """What D sees of x through `encoder`: its features, or C's logits of them."""
        f = self.nets[encoder](x)
        return self.nets["C"](f) if self.cfg.input == "logits" else f

    def _adapt(self, batch: Batch) -> dict[str, torch.Tensor]:
        D, C = self.nets["D"], self.nets["C"]
        C.train(False)  # fixed while adapting: its batch-norm statistics must not drift to target
        C.requires_grad_(False)
        with self.autocast():
            with torch.no_grad():
                f_s = self._seen("F_s", batch.x_s)
            f_t = self._seen("F", batch.x_t)
            d = D(torch.cat([f_s, f_t.detach()])).squeeze(1).float()
            d_label = domain_labels(len(f_s), len(f_t), d.device)
            loss_d = F_.binary_cross_entropy_with_logits(d, d_label)
        self.update("D", loss_d)
        with self.autocast():
            d_t = D(f_t).squeeze(1).float()
            loss_m = F_.binary_cross_entropy_with_logits(d_t, torch.zeros_like(d_t))  # inverted label
        self.update("F", loss_m)
        with torch.no_grad(), self.autocast():  # monitoring: the target encoder's source loss, C fixed
            logits = self.predict(batch.x_s)
            loss_y = F_.cross_entropy(logits.float(), batch.y_s)
        return {"loss/domain": loss_d.detach(), "loss/mapping": loss_m.detach(), "loss/total": loss_m.detach(),
                "loss/class": loss_y, "train/source_acc": (logits.argmax(1) == batch.y_s).float().mean(),
                "train/domain_acc": ((d > 0).float() == d_label).float().mean(),
                "schedule/lr": torch.tensor(self.lr("F")), "schedule/phase": torch.tensor(1.0)}

    def extra_state(self) -> dict:
        return {"steps_done": self.steps_done}

    def load_extra_state(self, state: dict) -> None:
        self.steps_done = state.get("steps_done", 0)


METHOD = Adda
