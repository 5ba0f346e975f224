"""AlexNet for PACS, as in the DANN-on-PACS AlexNet experiments: torchvision's AlexNet (ImageNet weights
when available), a new class head, and a domain head that may start from the classifier's FC weights."""

from __future__ import annotations

import copy

from torch import nn

from uda.models import Nets
from uda.models.pretrained import load_pretrained


def alexnet(num_classes: int, in_channels: int, image_size: int, pretrained: str | None = "imagenet",
            domain_head_from_classifier: bool = True) -> Nets:
    if in_channels != 3:
        raise ValueError("alexnet needs 3-channel input (set the experiment's recipe.channels to 3)")
    import torchvision  # here: importing it costs every stage process over a second (it pulls in torch._dynamo)

    net = torchvision.models.alexnet(weights=None)
    load_pretrained(net, "alexnet", pretrained)
    f = nn.Sequential(net.features, net.avgpool, nn.Flatten())
    fc = net.classifier  # Dropout, FC6 9216→4096, ReLU, Dropout, FC7 4096→4096, ReLU, FC8
    body = nn.Sequential(*list(fc.children())[:6])
    classifier = nn.Sequential(body, nn.Linear(4096, num_classes))
    domain_body = copy.deepcopy(body)
    if not domain_head_from_classifier:
        for m in domain_body.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
    return Nets(f, classifier, nn.Sequential(domain_body, nn.Linear(4096, 1)))


BUILDERS = {"alexnet": alexnet}
