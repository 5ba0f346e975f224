"""ADDA: pre-training on source, then the target encoder (starting as the source one) against D with the
inverted label; the source encoder and C never move while adapting. One adaptation step by hand, for D
seeing the logits (the authors') and the features."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.adda import Adda, AddaConfig

TRAIN = TrainConfig.model_validate({"steps": 4, "optimizer": {"lr": 0.1, "momentum": 0.0},
                                    "schedule": {"name": "constant"}})


def nets(seen=3):
    """C has batch norm, so its statistics are part of what must stay fixed while adapting."""
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(5, 4), nn.ReLU())
    return {"F": f, "C": nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), "F_s": copy.deepcopy(f),
            "D": nn.Sequential(nn.Linear(seen, 6), nn.ReLU(), nn.Linear(6, 1))}


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g), torch.randn(6, 5, generator=g))


def state(n, k):
    return {p: t.clone() for p, t in n[k].state_dict().items()}


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_phases_initialisation_and_what_stays_fixed():
    n = nets()
    m = Adda(n, AddaConfig(source_fraction=0.5), TRAIN, 4)
    d0 = state(n, "D")
    m.step(batch(1), 0.0)
    m.step(batch(2), 0.25)  # pre-training: F and C move, D does not
    assert same(state(n, "D"), d0) and m.steps_done == 2
    c, f = state(n, "C"), state(n, "F")
    m.step(batch(3), 0.5)  # adaptation starts: F_s is F as it was, and then only F and D move
    assert same(state(n, "F_s"), f) and same(state(n, "C"), c)
    assert not same(state(n, "F"), f) and not same(state(n, "D"), d0)
    m.step(batch(4), 0.75)
    assert same(state(n, "F_s"), f) and same(state(n, "C"), c)


@pytest.mark.parametrize("seen", ["logits", "features"])
def test_one_adaptation_step_equals_the_paper_by_hand(seen):
    n = nets(3 if seen == "logits" else 4)
    m = Adda(n, AddaConfig(source_fraction=0.25, input=seen), TRAIN, 4)
    m.step(batch(1), 0.0)  # the one pre-training step
    ref = copy.deepcopy(n)
    b = batch(2)
    m.step(b, 0.25)

    F, F_s, C, D = ref["F"], ref["F_s"], ref["C"], ref["D"]
    F_s.load_state_dict(F.state_dict())  # M_t = M_s
    F_s.eval()
    C.eval()  # fixed: its running statistics are used, never updated
    for p in C.parameters():
        p.requires_grad_(False)

    def M_s(x):
        return C(F_s(x)) if seen == "logits" else F_s(x)

    def M_t(x):
        return C(F(x)) if seen == "logits" else F(x)

    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_m = torch.optim.Adam(F.parameters(), lr=2e-4, betas=(0.5, 0.999))
    with torch.no_grad():
        m_s = M_s(b.x_s)
    d = D(torch.cat([m_s, M_t(b.x_t).detach()])).squeeze(1)
    loss_d = F_.binary_cross_entropy_with_logits(d, torch.tensor([0.0] * 6 + [1.0] * 6))  # source 0, target 1
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_m = F_.binary_cross_entropy_with_logits(D(M_t(b.x_t)).squeeze(1), torch.zeros(6))  # the inverted label
    opt_m.zero_grad()
    loss_m.backward()
    opt_m.step()
    for k in n:
        for (p, a), r in zip(n[k].state_dict().items(), ref[k].state_dict().values(), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6, msg=f"{k}.{p}")
