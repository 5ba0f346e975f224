"""On-device augmentation (uda.augment) and the weight average (uda.ema)."""

from __future__ import annotations

import torch
from torch import nn

from uda.augment import Augment
from uda.config import AugmentConfig
from uda.ema import WeightEMA

MEAN, STD = torch.tensor(0.2).view(1, 1, 1, 1), torch.tensor(0.3).view(1, 1, 1, 1)


def images(n=8, size=16):
    return (torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0)) - MEAN) / STD


def test_off_by_default_and_then_the_batch_itself():
    x = images()
    assert Augment(AugmentConfig(), 0)(x, MEAN, STD) is x


def test_same_seed_same_views_and_a_restored_state_continues_exactly():
    cfg = AugmentConfig(translate=2, affine_std=0.1, noise_std=0.1, intensity_flip=True)
    x = images()
    a, b = Augment(cfg, 3), Augment(cfg, 3)
    assert torch.equal(a(x, MEAN, STD), b(x, MEAN, STD))
    assert not torch.equal(a(x, MEAN, STD), Augment(cfg, 4)(x, MEAN, STD))
    state = a.state_dict()  # as a checkpoint saves it
    after = a(x, MEAN, STD)
    resumed = Augment(cfg, 3)
    resumed.load_state_dict(state)
    assert torch.equal(resumed(x, MEAN, STD), after)


def test_noise_is_in_pixel_units_and_translation_moves_a_dot_at_most_t_pixels():
    x = images(64)
    noisy = Augment(AugmentConfig(noise_std=0.1), 0)(x, MEAN, STD)
    assert abs(((noisy - x) * STD).std().item() - 0.1) < 0.005  # σ in pixels, whatever the normalisation
    dot = torch.zeros(64, 1, 16, 16)
    dot[:, :, 8, 8] = 1.0
    moved = Augment(AugmentConfig(translate=2), 0)(dot)
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    mass = moved.sum((1, 2, 3))
    cy, cx = (moved[:, 0] * ys).sum((1, 2)) / mass, (moved[:, 0] * xs).sum((1, 2)) / mass
    assert torch.allclose(mass, torch.ones(64), atol=1e-4)
    shift = torch.stack([cy - 8, cx - 8])
    assert shift.abs().max() <= 2.0 + 1e-4 and shift.abs().max() > 1.0  # within ±t, and it does move


def test_intensity_flip_gives_the_image_or_its_negative():
    x = images(32)
    out = Augment(AugmentConfig(intensity_flip=True), 0)(x, MEAN, STD)
    p, q = x * STD + MEAN, out * STD + MEAN
    same = torch.isclose(p, q, atol=1e-5).flatten(1).all(1)
    flipped = torch.isclose(1 - p, q, atol=1e-5).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()


def test_the_average_follows_the_formula_and_gets_no_gradient():
    torch.manual_seed(0)
    live = {"C": nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))}
    avg = WeightEMA(live, 0.9)
    start = [p.clone() for p in avg.nets["C"].parameters()]
    with torch.no_grad():
        for p in live["C"].parameters():
            p.add_(1.0)
    live["C"](torch.randn(4, 3))  # moves the live batch-norm statistics
    avg.update(live)
    for a, s, p in zip(avg.nets["C"].parameters(), start, live["C"].parameters(), strict=True):
        torch.testing.assert_close(a, 0.9 * s + 0.1 * p)
        assert not a.requires_grad
    torch.testing.assert_close(avg.nets["C"][1].running_mean, live["C"][1].running_mean)  # copied, not averaged
    own = WeightEMA(live, 0.9, own_buffers=True)
    live["C"](torch.randn(4, 3) + 5)
    own.update(live)
    assert not torch.equal(own.nets["C"][1].running_mean, live["C"][1].running_mean)
