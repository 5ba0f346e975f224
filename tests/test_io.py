import io
import tarfile
import zipfile

import pytest

from uda.io import DataError, atomic_dir, atomic_write, extract_archive


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"good"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind


def test_atomic_write_verify_failure_installs_nothing(tmp_path):
    def reject(path):
        assert path.read_bytes() == b"new"
        raise DataError("bad checksum")

    with pytest.raises(DataError):
        with atomic_write(tmp_path / "f", verify=reject) as f:
            f.write(b"new")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = 2
                tar.addfile(info, io.BytesIO(b"ok"))
    return path


@pytest.mark.parametrize("name, kind", [("../evil.png", "file"), ("/abs/evil.png", "file"),
                                        ("a/../../evil", "file"), ("a/link", "link")])
def test_extraction_refuses_escaping_members(tmp_path, name, kind):
    archive = _tar(tmp_path / "x.tar.gz", [("a/ok.txt", "file"), (name, kind)])
    with pytest.raises(DataError) as e:
        extract_archive(archive, tmp_path / "dest")
    assert str(archive) in str(e.value) and repr(name) in str(e.value)
    assert not (tmp_path / "dest").exists() and not (tmp_path / "evil.png").exists()


def test_zip_extraction_refuses_escaping_members(tmp_path):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok/a.txt", "1")
        z.writestr("../evil.txt", "2")
    with pytest.raises(DataError, match="outside the target folder"):
        extract_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_extraction_of_a_good_archive(tmp_path):
    archive = _tar(tmp_path / "x.tar.gz", [("a/ok.txt", "file")])
    extract_archive(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "a" / "ok.txt").read_bytes() == b"ok"
