"""What every method shares: it owns its sub-networks, optimisers and schedulers, and `step` does one
training iteration (however many updates that takes) and returns a dict of detached scalar losses, so one
generic loop (uda.trainer) trains every method without knowing which it is."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from uda.config import OptimizerConfig, ScheduleConfig, TrainConfig
from uda.optim import make_optimizer, make_scheduler


@dataclass
class Batch:
    """One iteration's data, normalised on the device. No target labels: adaptation is unsupervised."""

    x_s: torch.Tensor
    y_s: torch.Tensor
    x_t: torch.Tensor


class Method:
    name: ClassVar[str]
    uses_target: ClassVar[bool] = True  # whether step() reads batch.x_t

    def __init__(self, nets: dict[str, nn.Module], train: TrainConfig):
        self.nets = nets
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.amp = train.amp

    def add_optimizer(self, name: str, nets: list[str], optimizer: OptimizerConfig, schedule: ScheduleConfig,
                      total_steps: int) -> None:
        """One optimiser (and its schedule) over the parameters of the named sub-networks."""
        params = [p for k in nets for p in self.nets[k].parameters()]
        self.optimizers[name] = make_optimizer(params, optimizer)
        self.schedulers[name] = make_scheduler(self.optimizers[name], schedule, total_steps)

    # -- what the loop and the evaluation call ---------------------------------------------------------
    def step(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["F"](x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, as used for evaluation."""
        return self.nets["C"](self.features(x))

    def classifier(self) -> nn.Module:
        """F followed by C as one module (for export)."""
        return nn.Sequential(self.nets["F"], self.nets["C"])

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    def state_dict(self) -> dict:
        return {"nets": {k: n.state_dict() for k, n in self.nets.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()}}

    def load_state_dict(self, state: dict) -> None:
        for group in ("nets", "optimizers", "schedulers"):
            for k, obj in getattr(self, group).items():
                obj.load_state_dict(state[group][k])

    # -- helpers for subclasses -----------------------------------------------------------------------
    def autocast(self):
        device = next(iter(self.nets.values())).parameters().__next__().device
        if self.amp and device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Backward `loss` into optimiser `name`'s parameters, step it and its schedule."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if name in self.schedulers:
            self.schedulers[name].step()

    def lr(self, name: str) -> float:
        return self.optimizers[name].param_groups[0]["lr"]
