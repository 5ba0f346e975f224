"""Every mirrored dataset, fetched and verified through the download code, parses to MANIFEST.md's figures."""

from __future__ import annotations

import re

import numpy as np
import pytest

from uda.datasets import DOMAINS, dataset_of
from uda.download import fetch_domain

MIRRORED = ("mnist", "usps", "mnist_m", "pacs_photo", "pacs_art_painting")


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def manifest_histograms(manifest: str) -> dict[tuple[str, str], list[int]]:
    """The label histograms MANIFEST.md documents, keyed by (domain, split)."""
    sections = dict(re.findall(r"^## (\S+)[^\n]*\n(.*?)(?=^## |\Z)", manifest, re.S | re.M))
    out = {}
    for domain, name in (("mnist", "MNIST"), ("usps", "USPS")):
        for split in ("train", "test"):
            out[(domain, split)] = _ints(re.search(rf"{split} `\[([\d, ]+)\]`", sections[name]).group(1))
    for split, word in (("test", "Test"), ("train", "Train")):
        m = re.search(rf"- {word}:.*?Label histogram `\[([\d, ]+)\]`", sections["MNIST-M"], re.S)
        out[("mnist_m", split)] = _ints(m.group(1))
    for style, counts in re.findall(r"^- (\w+): (dog \d+.*?) \(", sections["PACS"], re.M):
        out[(f"pacs_{style}", "all")] = _ints(counts)
    return out


@pytest.fixture(scope="session")
def raw_root(mirror, tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    for domain in MIRRORED:
        fetched = fetch_domain(domain, root, mirror, progress=False)
        assert all(f.origin == "mirror" for f in fetched)
        assert all(f.origin == "cached" for f in fetch_domain(domain, root, mirror, progress=False))
    return root


@pytest.fixture(scope="session")
def expected(mirror):
    return manifest_histograms((mirror / "MANIFEST.md").read_text())


@pytest.fixture(scope="session")
def decoded(raw_root):
    cache = {}

    def get(domain, split):
        if (domain, split) not in cache:
            ds = dataset_of(domain)
            cache[(domain, split)] = ds.decode(ds.raw_dir(raw_root), domain, split)
        return cache[(domain, split)]

    return get


@pytest.mark.parametrize("domain, split", [(d, s) for d in MIRRORED for s in DOMAINS[d].splits])
def test_counts_and_class_histograms_match_manifest(domain, split, decoded, expected):
    ds = dataset_of(domain)
    d = decoded(domain, split)
    hist = np.bincount(d.labels, minlength=len(ds.classes)).tolist()
    assert hist == expected[(domain, split)]
    assert len(d.images) == sum(expected[(domain, split)])
    first = d.images[0]
    assert first.dtype == np.uint8 and first.shape[-1] == ds.channels
    if domain != "mnist_m":  # the mirror holds MNIST-M's first 30,000 train images of 59,001
        assert len(d.labels) == ds.official_counts[domain][split]


def test_image_geometry_and_content(decoded):
    assert decoded("mnist", "train").images.shape == (60000, 28, 28, 1)
    assert decoded("usps", "test").images.shape == (2007, 16, 16, 1)
    assert decoded("mnist_m", "test").images.shape == (9001, 32, 32, 3)
    assert {img.shape for img in decoded("pacs_photo", "all").images} == {(227, 227, 3)}
    for domain, split in (("mnist", "test"), ("usps", "train"), ("mnist_m", "train")):
        x = decoded(domain, split).images
        assert x.min() == 0 and x.max() == 255 and 0.05 < x.mean() / 255 < 0.6  # real pixels, not blank


def test_mnist_m_labels_are_mnist_labels(decoded):
    """MANIFEST.md: MNIST-M is built from MNIST, so its labels are MNIST's, in order."""
    for split in ("train", "test"):
        m = decoded("mnist_m", split).labels
        assert (m == decoded("mnist", split).labels[: len(m)]).all()
