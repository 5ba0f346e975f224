"""SVHN is not mirrored: its code path runs on small .mat files written in the official format."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from uda.config import DataConfig, Recipe
from uda.datasets import dataset_of
from uda.download import fetch_domain
from uda.io import DataError
from uda.preprocess import load_split, preprocess_domain


def write_svhn_mat(path, n, seed):
    """As in train_32x32.mat: X is 32×32×3×N uint8, y is N×1 double with 10 standing for digit 0."""
    rng = np.random.default_rng(seed)
    digits = np.arange(n) % 10
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    x[0, 0, 0, :] = digits  # a marker that ties each image to its label
    y = np.where(digits == 0, 10, digits).astype(np.float64).reshape(n, 1)
    scipy.io.savemat(path, {"X": x, "y": y})
    return x, digits


def test_decode_maps_label_10_to_digit_0_and_keeps_pixels(tmp_path):
    x, digits = write_svhn_mat(tmp_path / "test_32x32.mat", 30, 0)
    d = dataset_of("svhn").decode(tmp_path, "svhn", "test")
    assert d.images.shape == (30, 32, 32, 3) and d.images.dtype == np.uint8
    assert (d.labels == digits).all() and d.labels.dtype == np.int64
    assert (d.images[7] == x[..., 7]).all() and (d.images[:, 0, 0, 0] == digits).all()


def test_svhn_through_preprocess_to_grayscale(tmp_path):
    raw = tmp_path / "raw" / "svhn"
    raw.mkdir(parents=True)
    write_svhn_mat(raw / "train_32x32.mat", 200, 1)
    write_svhn_mat(raw / "test_32x32.mat", 50, 2)
    data = DataConfig(root=str(tmp_path))
    stats = preprocess_domain("svhn", Recipe(image_size=32, channels=1), data)
    assert {s: v["n"] for s, v in stats["splits"].items()} == {"train": 200, "test": 50}
    assert stats["splits"]["train"]["class_counts"] == [20] * 10
    train = load_split(data.processed_dir, "svhn", "train")
    assert train["images"].shape == (200, 1, 32, 32) and train["images"].dtype.is_floating_point is False


def test_mirror_copy_is_checked_against_the_official_md5(tmp_path):
    (tmp_path / "mirror/SVHN").mkdir(parents=True)
    for split in ("train", "test"):
        write_svhn_mat(tmp_path / f"mirror/SVHN/{split}_32x32.mat", 10, 0)
    with pytest.raises(DataError, match=r"md5 checksum mismatch for train_32x32.mat \(expected e26dedcc"):
        fetch_domain("svhn", tmp_path / "raw", tmp_path / "mirror", progress=False)


def test_damaged_mat_file(tmp_path):
    (tmp_path / "test_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DataError, match=r"test_32x32.mat: not a readable MATLAB .mat file"):
        dataset_of("svhn").decode(tmp_path, "svhn", "test")
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": np.zeros((28, 28, 1, 3), np.uint8), "y": np.ones((3, 1))})
    with pytest.raises(DataError, match=r"expected 'X' of shape 32×32×3×N"):
        dataset_of("svhn").decode(tmp_path, "svhn", "test")
