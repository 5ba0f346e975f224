"""MCC: the class-confusion loss as in the paper, one update by hand, and the add-on to DANN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.adversarial import class_confusion
from uda.methods.dann import Dann, DannConfig
from uda.methods.mcc import Mcc, MccConfig


def by_hand(z: torch.Tensor, t: float) -> torch.Tensor:
    """eq. 1-7 of Jin et al. (2020), spelled out element by element."""
    y = torch.softmax(z / t, 1)
    b, k = y.shape
    h = -(y * torch.log(y + 1e-5)).sum(1).detach()
    w = b * (1 + torch.exp(-h)) / (1 + torch.exp(-h)).sum()
    c = torch.zeros(k, k)
    for j in range(k):
        for jj in range(k):
            c[j, jj] = sum(y[i, j] * w[i] * y[i, jj] for i in range(b))
    c = c / c.sum(1, keepdim=True)  # category normalisation: each row sums to 1
    return sum(c[j, jj] for j in range(k) for jj in range(k) if j != jj) / k


def test_the_loss_equals_the_paper_and_its_confusion_rows_are_normalised():
    z = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(class_confusion(z, 2.5), by_hand(z, 2.5))
    k = 5
    assert class_confusion(torch.zeros(8, k), 2.5).item() == pytest.approx((k - 1) / k)  # uniform: all confused
    confident = 50 * F_.one_hot(torch.arange(10) % k, k).float()
    assert class_confusion(confident, 1.0).item() < 1e-6


def nets():
    torch.manual_seed(0)
    return {"F": nn.Sequential(nn.Linear(5, 4), nn.ReLU()), "C": nn.Linear(4, 3), "D": nn.Linear(4, 1)}


def batch():
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(6, 5, generator=g), torch.randint(0, 3, (6,), generator=g), torch.randn(6, 5, generator=g))


def assert_one_sgd_step(n: dict, ref: dict, loss: torch.Tensor, lr: float) -> None:
    """The method's F and C equal ref's after one plain SGD step on `loss` (computed from ref)."""
    params = list(ref["F"].parameters()) + list(ref["C"].parameters())
    with torch.no_grad():
        for p, g in zip(params, torch.autograd.grad(loss, params), strict=True):
            p -= lr * g
    for k in ("F", "C"):
        for a, r in zip(n[k].parameters(), ref[k].parameters(), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def test_one_update_equals_source_loss_plus_mu_times_mcc_by_hand():
    train = TrainConfig.model_validate({"steps": 10, "optimizer": {"lr": 0.1, "momentum": 0.9}})
    cfg = MccConfig(mcc_weight=0.8, temperature=2.0)
    n = nets()
    ref = copy.deepcopy(n)
    b = batch()
    out = Mcc(n, cfg, train, 10).step(b, 0.0)
    predict = lambda x: ref["C"](ref["F"](x))  # noqa: E731
    loss = F_.cross_entropy(predict(b.x_s), b.y_s) + 0.8 * by_hand(predict(b.x_t), 2.0)
    assert_one_sgd_step(n, ref, loss, lr=0.1)
    assert out["loss/mcc"].item() == pytest.approx(by_hand(predict(b.x_t), 2.0).item(), rel=1e-3)


@pytest.mark.parametrize("bn", ["shared", "per_domain"])
def test_with_batch_norm_the_forward_is_one_batch_of_both_domains_or_one_per_domain(bn):
    """The authors' code forwards [x_s; x_t] as one batch, so F's batch norm sees the mixed batch."""
    train = TrainConfig.model_validate({"steps": 10, "optimizer": {"lr": 0.1}})
    torch.manual_seed(0)
    n = {"F": nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU()), "C": nn.Linear(4, 3)}
    ref = copy.deepcopy(n)
    b = batch()
    Mcc(n, MccConfig(bn=bn), train, 10).step(b, 0.0)
    if bn == "shared":
        f = ref["F"](torch.cat([b.x_s, b.x_t]))
        f_s, f_t = f[:6], f[6:]
    else:
        f_s, f_t = ref["F"](b.x_s), ref["F"](b.x_t)
    loss = F_.cross_entropy(ref["C"](f_s), b.y_s) + by_hand(ref["C"](f_t), 2.5)
    assert_one_sgd_step(n, ref, loss, lr=0.1)


def test_as_an_add_on_to_dann_it_adds_its_term():
    train = TrainConfig.model_validate({"steps": 10})
    plain = Dann(nets(), DannConfig(), train, 10).step(batch(), 0.5)
    with_mcc = Dann(nets(), DannConfig(mcc_weight=0.5), train, 10).step(batch(), 0.5)
    assert "loss/mcc" not in plain
    expected = plain["loss/total"].item() + 0.5 * with_mcc["loss/mcc"].item()
    assert with_mcc["loss/total"].item() == pytest.approx(expected, rel=1e-5)
