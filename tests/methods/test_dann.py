"""DANN's update recomputed by hand: the gradient reversal, the loss weights, SGD with momentum and µ_p."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.dann import Dann, DannConfig, grad_reverse

TOTAL = 10


def tiny_nets() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"F": nn.Sequential(nn.Linear(6, 5), nn.ReLU()), "C": nn.Linear(5, 3), "D": nn.Linear(5, 1)}


def batches() -> list[Batch]:
    g = torch.Generator().manual_seed(1)
    return [Batch(torch.randn(4, 6, generator=g), torch.randint(0, 3, (4,), generator=g),
                  torch.randn(4, 6, generator=g)) for _ in range(2)]


def grads_of(loss: torch.Tensor, params: list[torch.Tensor]) -> dict[torch.Tensor, torch.Tensor]:
    return dict(zip(params, torch.autograd.grad(loss, params, retain_graph=True), strict=True))


def by_hand(nets: dict[str, nn.Module], cfg: DannConfig, train: TrainConfig, steps: list[tuple[Batch, float]]):
    """Ganin et al. (JMLR 2016), eq. 13-15: θ_f ← θ_f − µ(∂L_y/∂θ_f − λ·w·∂L_d/∂θ_f), θ_y ← θ_y − µ·∂L_y/∂θ_y,
    θ_d ← θ_d − µ·w·∂L_d/∂θ_d; µ_p = µ_0/(1 + α·p)^β by step; SGD momentum (v ← m·v + g, θ ← θ − µ·v), with
    weight decay and Nesterov's step when the optimiser asks for them (tllib's recipe)."""
    params = {k: list(n.parameters()) for k, n in nets.items()}
    velocity = {id(p): torch.zeros_like(p) for ps in params.values() for p in ps}
    opt, sched = train.optimizer, train.schedule
    for i, (b, progress) in enumerate(steps):
        lam = 2 / (1 + math.exp(-cfg.gamma * progress)) - 1
        f_s, f_t = nets["F"](b.x_s), nets["F"](b.x_t)
        loss_y = F_.cross_entropy(nets["C"](f_s), b.y_s)
        d = nets["D"](torch.cat([f_s, f_t])).squeeze(1)
        loss_d = F_.binary_cross_entropy_with_logits(d, torch.cat([torch.zeros(4), torch.ones(4)]))
        g_y = grads_of(loss_y, params["F"] + params["C"])
        g_d = grads_of(loss_d, params["F"] + params["D"])
        lr = opt.lr / (1 + sched.alpha * i / TOTAL) ** sched.beta
        grad = {}
        for p in params["F"]:
            grad[id(p)] = g_y[p] - lam * cfg.domain_weight * g_d[p]
        for p in params["C"]:
            grad[id(p)] = g_y[p]
        for p in params["D"]:
            grad[id(p)] = cfg.domain_weight * g_d[p]
        with torch.no_grad():
            for ps in params.values():
                for p in ps:
                    g = grad[id(p)] + opt.weight_decay * p  # L2 weight decay, inside the momentum
                    velocity[id(p)] = opt.momentum * velocity[id(p)] + g
                    # Nesterov (Sutskever et al., 2013, as torch's SGD): step along g + m·v instead of v
                    p -= lr * (g + opt.momentum * velocity[id(p)] if opt.nesterov else velocity[id(p)])


@pytest.mark.parametrize("domain_weight, optimizer", [
    (1.0, {}), (0.3, {}), (1.0, {"weight_decay": 1e-3, "nesterov": True})])  # the last: tllib's SGD
def test_two_updates_equal_the_paper_recomputed_by_hand(domain_weight, optimizer):
    cfg = DannConfig(domain_weight=domain_weight)
    train = TrainConfig.model_validate({"steps": TOTAL, "optimizer": {"lr": 0.1, "momentum": 0.9, **optimizer}})
    nets = tiny_nets()
    expected = copy.deepcopy(nets)
    method = Dann(nets, cfg, train, TOTAL)
    steps = list(zip(batches(), (0.3, 0.5), strict=True))
    for b, progress in steps:
        losses = method.step(b, progress)
    by_hand(expected, cfg, train, steps)
    for k in nets:
        for p, q in zip(nets[k].parameters(), expected[k].parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert losses["schedule/lambda"].item() == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert losses["schedule/lr"].item() == pytest.approx(0.1 / (1 + 10 * 0.1) ** 0.75)


def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward():
    x = torch.randn(3, 2, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, -0.7))
