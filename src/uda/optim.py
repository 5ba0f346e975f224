"""Optimisers and learning-rate schedules from config; the schedules are the pure functions of schedules.py."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

from uda.config import OptimizerConfig, ScheduleConfig
from uda.schedules import dann_lr_factor, step_lr_factor


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(opt: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int) -> LambdaLR:
    if cfg.name == "dann":
        return LambdaLR(opt, lambda step: dann_lr_factor(step / total_steps, cfg.alpha, cfg.beta))
    if cfg.name == "step":
        return LambdaLR(opt, lambda step: step_lr_factor(step, cfg.step_size, cfg.gamma))
    return LambdaLR(opt, lambda step: 1.0)
