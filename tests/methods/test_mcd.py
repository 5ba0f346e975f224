"""MCD: steps A, B, C in the paper's order, F fixed in B and the classifiers fixed in C, by hand."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.mcd import Mcd, McdConfig

TRAIN = TrainConfig.model_validate({"steps": 10, "optimizer": {"lr": 0.1, "momentum": 0.0},
                                    "schedule": {"name": "constant"}})


def nets():
    torch.manual_seed(0)
    return {"F": nn.Sequential(nn.Linear(5, 4), nn.ReLU()), "C1": nn.Linear(4, 3), "C2": nn.Linear(4, 3)}


def batch():
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g), torch.randn(6, 5, generator=g))


def weights(n, k):
    return [p.detach().clone() for p in n[k].parameters()]


def sgd(params, loss):
    with torch.no_grad():
        for p, g in zip(params, torch.autograd.grad(loss, params), strict=True):
            p -= 0.1 * g


def test_one_iteration_equals_steps_a_b_c_by_hand():
    n = nets()
    ref = copy.deepcopy(n)
    b = batch()
    Mcd(n, McdConfig(num_k=3), TRAIN, 10).step(b, 0.0)

    F, C1, C2 = ref["F"], ref["C1"], ref["C2"]
    d = lambda x: (F_.softmax(C1(F(x)), 1) - F_.softmax(C2(F(x)), 1)).abs().mean()  # noqa: E731
    source = lambda: F_.cross_entropy(C1(F(b.x_s)), b.y_s) + F_.cross_entropy(C2(F(b.x_s)), b.y_s)  # noqa: E731
    theta_f, theta_c = list(F.parameters()), list(C1.parameters()) + list(C2.parameters())
    sgd(theta_f + theta_c, source())  # A: everything on source
    sgd(theta_c, source() - d(b.x_t))  # B: the classifiers apart on target, still right on source
    for _ in range(3):  # C: F brings them together, num_k times
        sgd(theta_f, d(b.x_t))
    for k in n:
        for a, r in zip(n[k].parameters(), ref[k].parameters(), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def test_f_is_fixed_in_step_b_and_the_classifiers_in_step_c():
    n = nets()
    m, b = Mcd(n, McdConfig(), TRAIN, 10), batch()
    f0, c0 = weights(n, "F"), weights(n, "C1")
    m.step_b(b)
    assert all(torch.equal(a, c) for a, c in zip(weights(n, "F"), f0, strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(weights(n, "C1"), c0, strict=True))
    c1 = weights(n, "C1")
    m.step_c(b)
    assert all(torch.equal(a, c) for a, c in zip(weights(n, "C1"), c1, strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(weights(n, "F"), f0, strict=True))


def test_prediction_is_the_sum_of_both_classifiers():
    n = nets()
    m = Mcd(n, McdConfig(), TRAIN, 10)
    x = batch().x_t
    torch.testing.assert_close(m.predict(x), n["C1"](n["F"](x)) + n["C2"](n["F"](x)))
    torch.testing.assert_close(m.classifier()(x), m.predict(x))
