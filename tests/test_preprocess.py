"""Preprocess on real mirrored data: recipe, stats, validation split, determinism, failure safety."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from uda.config import DataConfig, Recipe
from uda.download import fetch_domain
from uda.io import DataError
from uda.preprocess import load_split, preprocess_domain, stratified_split, to_recipe


@pytest.fixture
def data(mirror, tmp_path):
    cfg = DataConfig(root=str(tmp_path), val_fraction=0.1, split_seed=3)
    for domain in ("usps", "pacs_photo"):
        fetch_domain(domain, cfg.raw_dir, mirror, progress=False)
    return cfg


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_recipe_channels_resize_and_crop():
    gray = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    assert to_recipe(gray, Recipe(image_size=32, channels=3)).shape == (5, 3, 32, 32)
    rgb = torch.randint(0, 256, (2, 3, 227, 227), dtype=torch.uint8)
    out = to_recipe(rgb, Recipe(image_size=224, resize=256, channels=3))
    assert out.shape == (2, 3, 224, 224) and out.dtype == torch.uint8
    luma = to_recipe(rgb, Recipe(image_size=227, channels=1))
    pil = np.asarray(Image.fromarray(rgb[0].permute(1, 2, 0).numpy()).convert("L")).astype(int)
    assert np.abs(luma[0, 0].numpy().astype(int) - pil).max() <= 1  # PIL rounds in fixed point


def test_usps_full_at_32_with_stats_and_split(data):
    stats = preprocess_domain("usps", Recipe(image_size=32, channels=1), data)
    out = data.processed_dir / "usps"
    assert sorted(p.name for p in out.iterdir()) == ["samples.png", "stats.json", "test.pt", "train.pt",
                                                       "val_split.json"]
    assert json.loads((out / "stats.json").read_text()) == stats
    for split, n in (("train", 7291), ("test", 2007)):
        t = load_split(data.processed_dir, "usps", split)
        assert t["images"].shape == (n, 1, 32, 32) and t["images"].dtype == torch.uint8
        assert t["labels"].dtype == torch.int64 and stats["splits"][split]["n"] == n
        x = t["images"].double() / 255
        assert stats["splits"][split]["mean"] == pytest.approx([x.mean().item()], abs=1e-5)
        assert stats["splits"][split]["std"] == pytest.approx([x.std(unbiased=False).item()], abs=1e-5)
        assert stats["splits"][split]["class_counts"] == torch.bincount(t["labels"], minlength=10).tolist()
    split = json.loads((out / "val_split.json").read_text())
    train, val = set(split["train"]), set(split["val"])
    assert not train & val and train | val == set(range(7291))
    labels = load_split(data.processed_dir, "usps", "train")["labels"].numpy()
    per_class = np.bincount(labels[split["val"]], minlength=10) / np.bincount(labels, minlength=10)
    assert np.allclose(per_class, 0.1, atol=0.002)  # stratified: each class gives a tenth


def test_outputs_are_byte_identical_across_runs(data):
    recipe = Recipe(image_size=32, channels=3)
    preprocess_domain("usps", recipe, data)
    first = _digests(data.processed_dir / "usps")
    preprocess_domain("usps", recipe, data)
    assert _digests(data.processed_dir / "usps") == first
    other = DataConfig(root=data.root, split_seed=4)
    preprocess_domain("usps", recipe, other)
    assert _digests(data.processed_dir / "usps")["val_split.json"] != first["val_split.json"]


def test_pacs_resize_256_crop_224_with_a_seeded_subset(data):
    small = DataConfig(root=data.root, max_per_split=40, split_seed=1)
    stats = preprocess_domain("pacs_photo", Recipe(image_size=224, resize=256, channels=3), small)
    assert stats["splits"]["all"]["n"] == 40 and stats["splits"]["all"]["shape"] == [3, 224, 224]
    assert sum(c > 0 for c in stats["splits"]["all"]["class_counts"]) >= 5  # a random subset, not 40 dogs
    x = load_split(small.processed_dir, "pacs_photo", "all")["images"]
    assert x.float().std() > 20  # real photos, not a blank crop


def test_failed_run_leaves_the_earlier_output_intact(data):
    preprocess_domain("usps", Recipe(image_size=32, channels=1), data)
    before = _digests(data.processed_dir / "usps")
    raw = data.raw_dir / "usps" / "usps.t.bz2"
    raw.write_bytes(raw.read_bytes()[:5000])
    with pytest.raises(DataError, match="usps.t.bz2: truncated or corrupt"):
        preprocess_domain("usps", Recipe(image_size=28, channels=1), data)
    assert _digests(data.processed_dir / "usps") == before
    assert sorted(p.name for p in data.processed_dir.iterdir()) == ["usps"]  # no temporary folder left


def test_stratified_split_is_seeded():
    labels = np.repeat(np.arange(3), [10, 20, 1])
    a = stratified_split(labels, 0.2, 0)
    assert a == stratified_split(labels, 0.2, 0) and a != stratified_split(labels, 0.2, 1)
    train, val = a
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 4, 0]  # a singleton class stays in train
    assert sorted(train + val) == list(range(31))
