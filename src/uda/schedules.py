"""Schedules as pure functions of training progress p ∈ [0, 1] (Ganin et al., JMLR 2016, §5.2.2)."""

from __future__ import annotations

import math


def grl_lambda(p: float, gamma: float = 10.0) -> float:
    """λ_p = 2 / (1 + exp(−γ·p)) − 1: 0 at the start (the domain signal is noise then), → 1 at the end."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def dann_lr_factor(p: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """µ_p / µ_0 = 1 / (1 + α·p)^β."""
    return 1.0 / (1.0 + alpha * p) ** beta


def step_lr_factor(step: int, step_size: int, gamma: float) -> float:
    """StepLR: multiply by γ every `step_size` steps."""
    return gamma ** (step // step_size)


def inverse_decay_factor(step: int, rate: float) -> float:
    """lr_0 / (1 + rate·step): Generate to Adapt's decay for D, F and C."""
    return 1.0 / (1.0 + rate * step)
