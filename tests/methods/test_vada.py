"""VADA's update recomputed by hand (Shu et al., ICLR 2018, eq. 8), and VAT's invariants."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from uda.config import TrainConfig
from uda.methods import Batch
from uda.methods.consistency import vat_perturbation
from uda.methods.vada import Vada, VadaConfig

TRAIN = TrainConfig.model_validate({"steps": 10, "ema": 0.0, "schedule": {"name": "constant"},
                                    "optimizer": {"name": "adam", "lr": 0.01, "betas": [0.5, 0.999]}})


def nets() -> dict[str, nn.Module]:
    """In float64: VAT's first gradient is taken at a perturbation of norm 10⁻⁶, where float32 keeps only
    a few digits of KL's gradient, differently for two equal formulas."""
    torch.manual_seed(0)
    nets = {"F": nn.Sequential(nn.Linear(5, 4), nn.ReLU()), "C": nn.Linear(4, 3), "D": nn.Linear(4, 1)}
    return {k: n.double() for k, n in nets.items()}


def batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g),
                 torch.randn(6, 5, generator=g, dtype=torch.float64))


def kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) ‖ softmax(q)), batch mean."""
    return F_.kl_div(F_.log_softmax(q_logits, 1), F_.log_softmax(p_logits, 1), log_target=True, reduction="batchmean")


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad()
    loss.backward()
    opt.step()


def assert_same_weights(nets: dict[str, nn.Module], ref: dict[str, nn.Module], keys) -> None:
    for k in keys:
        for a, r in zip(nets[k].parameters(), ref[k].parameters(), strict=True):
            torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)


def vat_by_hand(h, x, logits, eps):
    """Miyato et al.: r ~ N(0, I) of norm 10⁻⁶, g = ∇_r KL(h(x) ‖ h(x + r)), r_adv = ε·g/‖g‖."""
    r = torch.randn_like(x)
    r = (1e-6 * r / r.norm(dim=1, keepdim=True)).requires_grad_(True)
    (g,) = torch.autograd.grad(kl(logits.detach(), h(x + r)), [r])
    return kl(logits.detach(), h(x + eps * g / g.norm(dim=1, keepdim=True)))


def test_one_update_equals_the_papers_by_hand():
    cfg = VadaConfig(domain_weight=0.5, source_vat=1.0, target_weight=0.3, radius=2.0)
    n, b = nets(), batch()
    ref = copy.deepcopy(n)
    torch.manual_seed(7)  # VAT's random starts
    out = Vada(n, cfg, TRAIN, 10).step(b, 0.0)

    torch.manual_seed(7)
    opt_d = torch.optim.Adam(ref["D"].parameters(), lr=0.01, betas=(0.5, 0.999))
    opt_m = torch.optim.Adam([*ref["F"].parameters(), *ref["C"].parameters()], lr=0.01, betas=(0.5, 0.999))
    bce = F_.binary_cross_entropy_with_logits
    h = lambda x: ref["C"](ref["F"](x))  # noqa: E731
    f_s, f_t = ref["F"](b.x_s), ref["F"](b.x_t)
    d_s, d_t = ref["D"](f_s.detach()), ref["D"](f_t.detach())
    loss_disc = 0.5 * (bce(d_s, torch.ones_like(d_s)) + bce(d_t, torch.zeros_like(d_t)))  # D: source is 1
    descend(opt_d, loss_disc)
    d_s, d_t = ref["D"](f_s), ref["D"](f_t)
    loss_domain = 0.5 * (bce(d_s, torch.zeros_like(d_s)) + bce(d_t, torch.ones_like(d_t)))  # flipped labels
    l_s, l_t = ref["C"](f_s), ref["C"](f_t)
    p_t = F_.softmax(l_t, 1)
    entropy = -(p_t * F_.log_softmax(l_t, 1)).sum(1).mean()
    loss = (F_.cross_entropy(l_s, b.y_s) + 0.5 * loss_domain + 1.0 * vat_by_hand(h, b.x_s, l_s, 2.0)
            + 0.3 * (entropy + vat_by_hand(h, b.x_t, l_t, 2.0)))
    descend(opt_m, loss)
    assert_same_weights(n, ref, ("F", "C", "D"))
    assert out["loss/entropy"].item() == pytest.approx(entropy.item(), rel=1e-5)


def test_the_vat_perturbation_has_norm_epsilon_and_raises_the_kl_more_than_random_ones():
    torch.manual_seed(0)
    h = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    x = torch.randn(32, 8, dtype=torch.float64)
    logits = h(x).detach()
    r = vat_perturbation(h, x, logits, radius=0.5)
    torch.testing.assert_close(r.norm(dim=1), torch.full((32,), 0.5, dtype=torch.float64))
    adversarial = kl(logits, h(x + r)).item()
    randoms = [kl(logits, h(x + 0.5 * (d := torch.randn_like(x)) / d.norm(dim=1, keepdim=True))).item()
               for _ in range(20)]
    assert adversarial > 0 and adversarial > 1.5 * max(randoms)
