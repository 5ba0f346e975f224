"""An exponential moving average of weights: θ̄ ← α·θ̄ + (1 − α)·θ after every step.

Used for evaluation by VADA and DIRT-T (Shu et al., ICLR 2018: the authors' code evaluates an EMA of the
classifier's weights, α = 0.998) and as the mean teacher of self-ensembling (French et al., ICLR 2018,
after Tarvainen & Valpola 2017: α = 0.99). Any method may use it through `train.ema`.

Batch-norm statistics are buffers, not weights: for an average that is only ever evaluated they are copied
from the live nets (as TensorFlow's ExponentialMovingAverage of trainable variables leaves them); a mean
teacher that runs forwards in training mode keeps its own (as the self-ensembling code does).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    def __init__(self, nets: dict[str, nn.Module], decay: float, own_buffers: bool = False):
        self.decay, self.own_buffers = decay, own_buffers
        self.nets = {k: copy.deepcopy(n) for k, n in nets.items()}  # starts equal to the live nets
        for net in self.nets.values():
            net.requires_grad_(False)  # the average (a teacher) never receives gradients

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module]) -> None:
        for k, avg in self.nets.items():
            for a, p in zip(avg.parameters(), nets[k].parameters(), strict=True):
                a.mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
            if not self.own_buffers:
                for a, b in zip(avg.buffers(), nets[k].buffers(), strict=True):
                    a.copy_(b)

    def state_dict(self) -> dict:
        return {k: n.state_dict() for k, n in self.nets.items()}

    def load_state_dict(self, state: dict) -> None:
        for k, n in self.nets.items():
            n.load_state_dict(state[k])
