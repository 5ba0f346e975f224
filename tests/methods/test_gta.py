"""Generate to Adapt: network shapes, one iteration updates all four networks, the guards fire."""

from __future__ import annotations

import pytest
import torch
import yaml

from tests.conftest import ROOT
from uda.methods import METHODS, Batch
from uda.methods.base import TrainingDiverged
from uda.methods.gta import GtaConfig
from uda.runs import parse


def make(channels: int, **gta):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["methods"]["gta"] = gta
    spec = parse(raw).run("gta")
    cls, cfg = METHODS["gta"], spec.config
    torch.manual_seed(0)
    nets = cls.build_nets(cfg, spec.train, 10, channels, 32)
    return cls(nets, cfg, spec.train, total_steps=100)


def batch(channels: int, n: int = 8) -> Batch:
    g = torch.Generator().manual_seed(1)
    mean, std = torch.full((1, channels, 1, 1), 0.4), torch.full((1, channels, 1, 1), 0.3)
    return Batch(torch.randn(n, channels, 32, 32, generator=g), torch.arange(n) % 10,
                 torch.randn(n, channels, 32, 32, generator=g), mean, std)


@pytest.mark.parametrize("channels", [1, 3])
def test_network_shapes(channels):
    m = make(channels)
    b = batch(channels)
    f = m.nets["F"](b.x_s)
    assert f.shape == (8, 128) and m.nets["C"](f).shape == (8, 10)
    onehot = torch.nn.functional.one_hot(b.y_s, 11).float()
    g = m.nets["G"](onehot, f, torch.randn(8, GtaConfig().nz))
    assert g.shape == (8, channels, 32, 32) and g.min() >= -1 and g.max() <= 1
    real_fake, classes = m.nets["D"](g)
    assert real_fake.shape == (8,) and classes.shape == (8, 10)


@pytest.mark.parametrize("channels", [1, 3])
def test_variant_network_shapes(channels):
    m = make(channels, embedder="dig2", discriminators=2)
    b = batch(channels)
    f = m.nets["F"](b.x_s)
    assert f.shape == (8, 512) and m.nets["C"](f).shape == (8, 10)
    g = m.nets["G"](torch.nn.functional.one_hot(b.y_s, 11).float(), f, torch.randn(8, GtaConfig().nz))
    assert g.shape == (8, channels, 32, 32)
    assert m.nets["D"](g)[0] is None and m.nets["D"](g)[1].shape == (8, 11)  # 10 classes + "fake"
    assert m.nets["D_t"](g)[0].shape == (8,) and m.nets["D_t"](g)[1] is None


def test_not_fake_is_minus_log_one_minus_p_fake():
    from uda.methods.gta import not_fake

    logits = torch.randn(5, 11)
    p_fake = logits.softmax(1)[:, -1]
    assert torch.allclose(not_fake(logits), -(1 - p_fake).log().mean(), atol=1e-6)


VARIANTS = [{}, {"embedder": "dig2"}, {"discriminators": 2}, {"embedder": "dig2", "discriminators": 2}]


@pytest.mark.parametrize("gta", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) or "paper")
def test_one_iteration_updates_every_network_with_finite_losses(gta):
    m = make(3, **gta)
    assert set(m.nets) == ({"F", "C", "G", "D", "D_t"} if gta.get("discriminators") == 2 else {"F", "C", "G", "D"})
    before = {k: [p.clone() for p in n.parameters()] for k, n in m.nets.items()}
    losses = m.step(batch(3), 0.0)
    assert {"loss/D", "loss/G", "loss/C", "loss/class", "loss/total"} <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
    for k, net in m.nets.items():
        changed = [not torch.equal(a, b) for a, b in zip(before[k], net.parameters(), strict=True)]
        assert all(changed), f"{k}: {changed.count(False)} parameter tensors did not change"


def test_generated_images_for_logging():
    m = make(1)
    images = m.images(batch(1))
    assert set(images) == {"generated_source", "generated_target"}
    assert all(x.dtype == torch.uint8 and x.shape == (8, 1, 32, 32) for x in images.values())


def test_collapse_guard_fires_and_is_checkpointed():
    m = make(1, collapse_steps=3, collapse_d_loss=1e6, collapse_g_loss=1e-6)  # every step "looks collapsed"
    b = batch(1)
    m.step(b, 0.0)
    m.step(b, 0.01)
    assert m.state_dict()["extra"] == {"collapse_run": 2}
    with pytest.raises(TrainingDiverged, match="GAN collapse: D's loss stayed below .* for 3 iterations"):
        m.step(b, 0.02)


def test_needs_32x32_digits():
    with pytest.raises(ValueError, match="need 32×32 input"):
        METHODS["gta"].build_nets(GtaConfig(), None, 10, 3, 28)
