"""CDAN(+E): the multilinear maps' shapes and expectations, and one update recomputed by hand."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.cdan import Cdan, CdanConfig, MultilinearMap


def test_the_multilinear_map_is_the_flattened_outer_product():
    f, g = torch.randn(4, 6), torch.softmax(torch.randn(4, 3), 1)
    h = MultilinearMap(6, 3, None, 0)(f, g)
    assert h.shape == (4, 18)
    assert torch.allclose(h.view(4, 3, 6), g[:, :, None] * f[:, None, :])


def test_the_randomized_map_preserves_inner_products_in_expectation():
    d = 50_000
    t = MultilinearMap(6, 3, d, 0)
    f, g = torch.randn(8, 6), torch.softmax(torch.randn(8, 3), 1)
    h = t(f, g)
    assert h.shape == (8, d)
    exact = (f @ f.t()) * (g @ g.t())  # <f⊗g, f'⊗g'> = <f, f'>·<g, g'>
    estimate = h @ h.t()
    assert torch.allclose(estimate, exact, atol=0.1 * exact.abs().max().item())
    assert torch.equal(MultilinearMap(6, 3, d, 0).R_f, t.R_f)  # fixed by the seed: resumes and reloads agree


def tiny(randomized: int | None):
    torch.manual_seed(0)
    nets = {"F": nn.Sequential(nn.Linear(5, 4), nn.ReLU()), "C": nn.Linear(4, 3)}
    nets["T"] = MultilinearMap(4, 3, randomized, 0)
    nets["D"] = nn.Sequential(nn.Linear(nets["T"].out_features, 6), nn.ReLU(), nn.Linear(6, 1))
    return nets


@pytest.mark.parametrize("entropy", [False, True], ids=["CDAN", "CDAN+E"])
@pytest.mark.parametrize("randomized", [None, 16], ids=["multilinear", "randomized"])
def test_one_update_equals_the_paper_recomputed_by_hand(entropy, randomized):
    cfg = CdanConfig(entropy=entropy, domain_weight=0.7)
    train = TrainConfig.model_validate({"steps": 10, "optimizer": {"lr": 0.1, "momentum": 0.9}})
    nets = tiny(randomized)
    ref = copy.deepcopy(nets)
    g = torch.Generator().manual_seed(1)
    b = Batch(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g), torch.randn(6, 5, generator=g))
    progress = 0.4
    Cdan(nets, cfg, train, 10).step(b, progress)

    # eq. 6 by hand: L_y − λ·w·L_d for F (through T), +w·L_d for D; plain SGD (first step: θ −= µ·∇)
    lam = 2 / (1 + math.exp(-cfg.gamma * progress)) - 1
    f_s, f_t = ref["F"](b.x_s), ref["F"](b.x_t)
    z_s, z_t = ref["C"](f_s), ref["C"](f_t)
    loss_y = F_.cross_entropy(z_s, b.y_s)
    p = torch.softmax(torch.cat([z_s, z_t]), 1).detach()
    h = ref["T"](torch.cat([f_s, f_t]), p)
    losses = F_.binary_cross_entropy_with_logits(ref["D"](h).squeeze(1), torch.tensor([0.0] * 6 + [1.0] * 6),
                                                 reduction="none")
    if entropy:
        h_p = -(p * torch.log(p + 1e-5)).sum(1)  # H(g)
        w = 1 + torch.exp(-h_p)
        w = torch.cat([w[:6] / w[:6].sum(), w[6:] / w[6:].sum()])
        loss_d = (w * losses).sum() / w.sum()
    else:
        loss_d = losses.mean()
    theta_f = list(ref["F"].parameters()) + list(ref["C"].parameters())
    grads_y = torch.autograd.grad(loss_y, theta_f, retain_graph=True)
    grads_d_f = torch.autograd.grad(loss_d, list(ref["F"].parameters()), retain_graph=True)
    grads_d_d = torch.autograd.grad(loss_d, list(ref["D"].parameters()))
    n_f = len(list(ref["F"].parameters()))
    with torch.no_grad():
        for i, q in enumerate(theta_f):
            q -= 0.1 * (grads_y[i] - (lam * cfg.domain_weight * grads_d_f[i] if i < n_f else 0))
        for q, gd in zip(ref["D"].parameters(), grads_d_d, strict=True):
            q -= 0.1 * cfg.domain_weight * gd
    for k in ("F", "C", "D"):
        for a, r in zip(nets[k].parameters(), ref[k].parameters(), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def test_the_paper_rule_picks_the_randomized_map_for_wide_features():
    train = TrainConfig.model_validate({"steps": 10})
    nets = Cdan.build_nets(CdanConfig(), train, 10, 3, 32)  # LeNet: 1,200 features × 10 classes > 4096
    assert nets["T"].R_f is not None and nets["T"].out_features == 1024
    nets = Cdan.build_nets(CdanConfig(randomized="never"), train, 10, 3, 32)
    assert nets["T"].R_f is None and nets["T"].out_features == 12_000
