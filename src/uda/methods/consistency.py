"""Pieces the consistency methods share (VADA, DIRT-T): conditional entropy, the soft cross-entropy to a
teacher, and virtual adversarial training. No `METHOD` here: not a method itself."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F_


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()  # bf16 under autocast is too coarse


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """mean_i −Σ_k softmax(target)_ik · log softmax(logits)_ik (the code's softmax_xent_two); gradients
    flow into both arguments unless the caller detaches one."""
    p = F_.softmax(_at_least_float32(target_logits), 1)
    return -(p * F_.log_softmax(_at_least_float32(logits), 1)).sum(1).mean()


def conditional_entropy(logits: torch.Tensor) -> torch.Tensor:
    """L_c = −E_x Σ_k h_k(x) log h_k(x) (Shu et al., ICLR 2018, eq. 6), with the gradient through both h."""
    return soft_cross_entropy(logits, logits)


def _unit(d: torch.Tensor) -> torch.Tensor:
    """Each sample's perturbation scaled to unit L2 norm over all its pixels."""
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (d.dim() - 1))


def vat_perturbation(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, logits: torch.Tensor,
                     radius: float, xi: float = 1e-6) -> torch.Tensor:
    """r_adv = ε·g/‖g‖ with g = ∇_r KL(h(x) ‖ h(x + r)) at a random r of norm ξ (Miyato et al., TPAMI 2018,
    one power iteration; the DIRT-T code's perturb_image): the direction in which the prediction changes
    fastest, scaled to the ball's radius ε."""
    r = (xi * _unit(torch.randn_like(x))).requires_grad_(True)
    loss = soft_cross_entropy(predict(x.detach() + r), logits.detach())
    (g,) = torch.autograd.grad(loss, [r])
    return (radius * _unit(g)).detach()


def vat_loss(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, logits: torch.Tensor,
             radius: float) -> torch.Tensor:
    """L_v = E_x max_{‖r‖≤ε} KL(h(x) ‖ h(x + r)) (eq. 7), h(x) held fixed: CE(softmax(h(x)), h(x + r_adv))."""
    r_adv = vat_perturbation(predict, x, logits, radius)
    return soft_cross_entropy(predict(x.detach() + r_adv), logits.detach())
