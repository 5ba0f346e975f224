"""ImageNet weights for torchvision backbones: the weights API (its cache works offline) or a local file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_pretrained(model: nn.Module, arch: str, pretrained: str | None) -> None:
    """`pretrained`: None/'none' (from scratch), 'imagenet' (torchvision's weights), or a path to a state_dict."""
    if pretrained in (None, "none"):
        return
    if pretrained == "imagenet":
        import torchvision

        weights = torchvision.models.get_model_weights(arch).DEFAULT
        try:
            state = weights.get_state_dict(progress=False, check_hash=True)
        except Exception as e:  # URLError offline, or a damaged cache
            raise RuntimeError(
                f"ImageNet weights for {arch} are not available ({e}). Offline, put {weights.url.rsplit('/', 1)[-1]}"
                f" in {torch.hub.get_dir()}/checkpoints, or set the network's `pretrained` to a local state_dict "
                "file, or to 'none' to train from scratch"
            ) from e
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights file {path} not found (expected a torchvision state_dict)")
        check_torchvision_file(path, arch)
        state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith(("fc.", "classifier.6."))]:
        raise RuntimeError(f"{pretrained}: does not fit {arch} (missing {missing[:5]}, unexpected {unexpected[:5]})")


def check_torchvision_file(path: Path, arch: str) -> None:
    """A local copy of torchvision's own weights file (same name, e.g. alexnet-owt-7be5be79.pth) must match
    the sha256 prefix its name carries, as torch.hub checks a download; any other file is taken as it is."""
    import re

    import torchvision

    from uda.io import file_digest

    published = torchvision.models.get_model_weights(arch).DEFAULT.url.rsplit("/", 1)[-1]
    match = re.search(r"-([a-f0-9]{8,})\.", published)
    if path.name != published or not match:
        return
    digest = file_digest(path, "sha256")
    if not digest.startswith(match.group(1)):
        raise RuntimeError(f"{path}: sha256 {digest[:16]}… does not match torchvision's published "
                           f"{match.group(1)} for {published}; the file is damaged or not torchvision's")
