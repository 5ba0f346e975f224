"""DIRT-T: Decision-boundary Iterative Refinement Training with a Teacher.

Shu, Bui, Narui, Ermon, "A DIRT-T Approach to Unsupervised Domain Adaptation", ICLR 2018, eq. 9-10. It
starts from a trained VADA model (the `vada` stage's output: `pipeline.refine: {vada: dirt_t}` makes
`train@dirt_t` depend on `models/vada`) and refines it on target data alone:

    min_θn  λ_t·[L_c(θn; D_t) + L_v(θn; D_t)] + β·E_{x∼D_t} KL(h_θ(n−1)(x) ‖ h_θn(x))

L_c the conditional entropy, L_v virtual adversarial training (radius ε), and the KL term to the teacher
θ(n−1), a frozen copy of the weight average that is re-anchored every `anchor_every` steps (the code's
`--dirt` interval, 5,000 in the authors' runs); KL up to a constant is the cross-entropy to the teacher's
soft labels. Defaults as the code's: λ_t = β = 10⁻², ε = 3.5, Adam(10⁻³, β1 0.5), evaluation with an EMA
of the weights (0.998). The code feeds the KL term and L_c + L_v separate target batches; here they share
one. The source batch and D are unused.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from uda.config import Count, MethodConfig, TrainConfig
from uda.methods.base import Batch, Method
from uda.methods.consistency import conditional_entropy, soft_cross_entropy, vat_loss


class DirtTConfig(MethodConfig):
    target_weight: Annotated[float, Field(ge=0)] = 1e-2  # λ_t, on L_c and L_v
    kl_weight: Annotated[float, Field(ge=0)] = 1e-2  # β
    radius: Annotated[float, Field(gt=0)] = 3.5  # ε
    anchor_every: Count = 5000  # steps between re-anchorings of the teacher to the weight average


class DirtT(Method):
    name = "dirt_t"
    Config = DirtTConfig
    ema_default = 0.998
    starts_from = "vada"

    def __init__(self, nets: dict[str, nn.Module], cfg: DirtTConfig, train: TrainConfig, total_steps: int):
        super().__init__({"F": nets["F"], "C": nets["C"], "D": nets["D"]}, train)
        self.cfg = cfg
        self.add_optimizer("main", ["F", "C"], train.optimizer, train.schedule, total_steps)
        self.teacher = self._frozen_average()
        self.steps_done = 0

    def _frozen_average(self) -> nn.Module:
        nets = self.ema.nets if self.ema is not None else self.nets
        teacher = copy.deepcopy(nn.Sequential(nets["F"], nets["C"])).train(False)
        return teacher.requires_grad_(False)

    def start_from(self, nets: dict, source: Path) -> None:
        """VADA's trained model (its F and C as evaluated): the student, its average and the teacher."""
        try:
            self.load_export_state(nets)
        except (KeyError, RuntimeError) as e:
            raise ValueError(f"{source}: its networks do not fit dirt_t's; vada and dirt_t must share "
                             f"train.network ({type(e).__name__}: {str(e).splitlines()[0]})") from None
        self.teacher = self._frozen_average()

    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        cfg, F, C = self.cfg, self.nets["F"], self.nets["C"]
        if self.steps_done and self.steps_done % cfg.anchor_every == 0:
            self.teacher = self._frozen_average()  # θ(n−1) ← the current average
        self.steps_done += 1
        predict = lambda x: C(F(x))  # noqa: E731
        with self.autocast():
            logits_t = predict(batch.x_t)
            with torch.no_grad():
                teacher_logits = self.teacher(batch.x_t)
            loss_kl = soft_cross_entropy(logits_t, teacher_logits)
            loss_ent = conditional_entropy(logits_t)
            loss_vat = vat_loss(predict, batch.x_t, logits_t, cfg.radius)
            loss = cfg.kl_weight * loss_kl + cfg.target_weight * (loss_ent + loss_vat)
        lr = self.lr("main")
        self.update("main", loss)
        return {"loss/teacher": loss_kl.detach(), "loss/entropy": loss_ent.detach(),
                "loss/vat_target": loss_vat.detach(), "loss/total": loss.detach(),
                "train/teacher_agreement": (logits_t.argmax(1) == teacher_logits.argmax(1)).float().mean(),
                "schedule/lr": torch.tensor(lr)}

    def extra_state(self) -> dict:
        return {"steps_done": self.steps_done, "teacher": self.teacher.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if state:
            self.steps_done = state["steps_done"]
            self.teacher.load_state_dict(state["teacher"])


METHOD = DirtT
