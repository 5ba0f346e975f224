"""Gradient reversal, schedules at their endpoints, and the shapes of every network."""

from __future__ import annotations

import math

import pytest
import torch

from uda.methods.dann import grad_reverse
from uda.models import build
from uda.schedules import dann_lr_factor, grl_lambda, inverse_decay_factor, step_lr_factor


def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    g = torch.randn(4, 3)
    y.backward(g)
    assert torch.allclose(x.grad, -0.7 * g)


def test_schedules_at_their_endpoints():
    assert grl_lambda(0.0) == 0.0
    assert grl_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1) and grl_lambda(1.0) > 0.9999
    assert grl_lambda(0.5, gamma=0) == 0.0
    assert dann_lr_factor(0.0) == 1.0
    assert dann_lr_factor(1.0) == pytest.approx(1 / 11**0.75)  # µ0 = 0.01 → 0.00166 at the end
    assert step_lr_factor(0, 100, 0.1) == 1.0 and step_lr_factor(99, 100, 0.1) == 1.0
    assert step_lr_factor(250, 100, 0.1) == pytest.approx(0.01)
    assert inverse_decay_factor(0, 1e-4) == 1.0 and inverse_decay_factor(10000, 1e-4) == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["lenet", "lenet_tllib", "dtn", "dann_mnist", "dann_svhn"])
@pytest.mark.parametrize("channels", [1, 3])
def test_digit_networks(name, channels):
    nets = build(name, 10, channels, 32)
    x = torch.randn(5, channels, 32, 32)
    f = nets.feature_extractor(x)
    assert f.ndim == 2 and nets.classifier(f).shape == (5, 10) and nets.domain_head(f).shape == (5, 1)


def test_tllibs_digit_backbones_have_its_widths():
    """tllib's LeNet: 50×4×4 conv features at 28×28 into FC500; its DTN: 256×4×4 at 32×32 into FC512."""
    lenet = build("lenet_tllib", 10, 1, 28)
    assert lenet.feature_extractor[8].in_features == 50 * 4 * 4 and lenet.classifier.in_features == 500
    dtn = build("dtn", 10, 3, 32)
    assert dtn.feature_extractor[13].in_features == 256 * 4 * 4 and dtn.classifier.in_features == 512


def _recipe_nets(**network):
    from uda.config import TrainConfig
    from uda.methods.base import Method

    train = TrainConfig.model_validate({"network": {"name": "lenet_tllib", **network}})
    return Method.build_nets(None, train, 10, 1, 28)


def test_a_bottleneck_makes_c_linear_and_d_tllibs_discriminator_on_its_width():
    nets = _recipe_nets(bottleneck=256, discriminator="tllib")
    f = nets["F"].train()(torch.randn(4, 1, 28, 28))
    assert f.shape == (4, 256) and (f >= 0).all()  # Linear → BN → ReLU
    assert isinstance(nets["F"][2], torch.nn.BatchNorm1d)
    assert isinstance(nets["C"], torch.nn.Linear) and nets["C"](f).shape == (4, 10)
    widths = [m.out_features for m in nets["D"] if isinstance(m, torch.nn.Linear)]
    assert nets["D"][0].in_features == 256 and widths == [1024, 1024, 1]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in nets["D"]) == 2


def test_tllibs_discriminator_without_a_bottleneck_takes_fs_own_width():
    nets = _recipe_nets(discriminator="tllib")
    assert nets["D"][0].in_features == 500 and nets["D"](nets["F"](torch.randn(3, 1, 28, 28))).shape == (3, 1)


def test_a_bottleneck_with_the_networks_own_discriminator_is_refused():
    from pydantic import ValidationError

    from uda.config import NetworkConfig

    with pytest.raises(ValidationError, match="bottleneck > 0 needs discriminator: tllib"):
        NetworkConfig(bottleneck=256)


def test_dann_svhn_is_padded_to_fit_32x32():
    f = build("dann_svhn", 10, 3, 32).feature_extractor(torch.zeros(1, 3, 32, 32))
    assert f.shape == (1, 128 * 7 * 7)


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_imagenet_backbones_from_scratch(name):
    nets = build(name, 7, 3, 96, pretrained="none")
    f = nets.feature_extractor(torch.randn(2, 3, 96, 96))
    assert nets.classifier(f).shape == (2, 7) and nets.domain_head(f).shape == (2, 1)


def test_alexnet_domain_head_starts_from_the_classifier():
    nets = build("alexnet", 7, 3, 64, pretrained="none", domain_head_from_classifier=True)
    fc6_c, fc6_d = nets.classifier[0][1], nets.domain_head[0][1]
    assert torch.equal(fc6_c.weight, fc6_d.weight) and fc6_c.weight is not fc6_d.weight


def test_pretrained_offline_gives_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("torch.hub.download_url_to_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(RuntimeError, match=r"not available .*checkpoints.*'none' to train from scratch"):
        build("alexnet", 7, 3, 64, pretrained="imagenet")
    with pytest.raises(FileNotFoundError, match="absent.pth not found"):
        build("alexnet", 7, 3, 64, pretrained=str(tmp_path / "absent.pth"))


def test_a_local_weights_file_named_as_torchvisions_is_checked_against_its_hash(tmp_path):
    """A file under torchvision's own name must carry the weights that name's sha256 prefix promises; a
    state_dict under another name (one's own weights) loads as it is."""
    from torchvision.models import alexnet as tv_alexnet

    state = tv_alexnet(num_classes=1000).state_dict()
    fake = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, fake)
    with pytest.raises(RuntimeError, match=r"alexnet-owt-7be5be79.pth: sha256 .* does not match torchvision's"):
        build("alexnet", 7, 3, 64, pretrained=str(fake))
    own = tmp_path / "my_alexnet.pth"
    fake.rename(own)
    nets = build("alexnet", 7, 3, 64, pretrained=str(own))
    assert torch.equal(nets.feature_extractor[0][0].weight, state["features.0.weight"])
