"""Damaged raw files give an error naming the file and what was expected."""

from __future__ import annotations

import io
import shutil
import tarfile

import pytest

from uda.datasets import dataset_of
from uda.io import DataError


def test_truncated_gz_names_the_file(mirror, tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mirror / "MNIST/raw" / name, tmp_path / name)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: truncated or corrupt \.gz"):
        dataset_of("mnist").decode(tmp_path, "mnist", "test")


def test_missing_raw_file_says_to_download(tmp_path):
    with pytest.raises(DataError, match=r"usps.bz2: missing; run the download stage"):
        dataset_of("usps").decode(tmp_path, "usps", "train")


def test_corrupt_image_names_the_file(mirror, tmp_path):
    shutil.copytree(mirror / "PACS/photo", tmp_path / "photo")
    bad = sorted((tmp_path / "photo/horse").iterdir())[3]
    bad.write_bytes(bad.read_bytes()[:200])  # a JPEG cut short
    with pytest.raises(DataError) as e:
        dataset_of("pacs_photo").decode(tmp_path, "pacs_photo", "all")
    assert str(bad) in str(e.value) and "corrupt or unreadable image" in str(e.value)


def test_pacs_with_missing_images_reports_counts(mirror, tmp_path):
    shutil.copytree(mirror / "PACS/photo", tmp_path / "photo")
    next((tmp_path / "photo/dog").iterdir()).unlink()
    with pytest.raises(DataError, match=r"per-class counts \(188, 202, .*differ from PACS's official \(189, 202"):
        dataset_of("pacs_photo").decode(tmp_path, "pacs_photo", "all")


def _mnist_m_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_mnist_m_corrupt_png_names_the_member(tmp_path):
    _mnist_m_tar(tmp_path / "mnist_m.tar.gz", [("mnist_m/mnist_m_test_labels.txt", b"00000000.png 7\n"),
                                              ("mnist_m/mnist_m_test/00000000.png", b"\x89PNG garbage")])
    with pytest.raises(DataError, match=r"mnist_m.tar.gz:mnist_m/mnist_m_test/00000000.png: corrupt"):
        dataset_of("mnist_m").decode(tmp_path, "mnist_m", "test")


def test_mnist_m_tar_member_escaping_is_refused(tmp_path):
    _mnist_m_tar(tmp_path / "mnist_m.tar.gz", [("mnist_m/mnist_m_test_labels.txt", b""),
                                              ("mnist_m/../../evil.png", b"x")])
    with pytest.raises(DataError, match=r"'mnist_m/../../evil.png' would land outside the target folder"):
        dataset_of("mnist_m").decode(tmp_path, "mnist_m", "test")


def test_mnist_m_label_without_image(tmp_path):
    _mnist_m_tar(tmp_path / "mnist_m.tar.gz", [("mnist_m/mnist_m_test_labels.txt", b"00000005.png 1\n")])
    with pytest.raises(DataError, match=r"labels.txt:1 names mnist_m/mnist_m_test/00000005.png, which the archive"):
        dataset_of("mnist_m").decode(tmp_path, "mnist_m", "test")
