"""Downloads: mirror first, verified, atomic; official sources with retries; clear errors otherwise."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import threading

import pytest

from uda.datasets import dataset_of
from uda.download import fetch, fetch_domain, resolve_mirror
from uda.io import DataError


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob(".*tmp*"))


def test_resolve_mirror(monkeypatch, tmp_path):
    monkeypatch.delenv("UDA_DATA_MIRROR", raising=False)
    assert resolve_mirror(None) is None
    assert resolve_mirror(str(tmp_path)) == tmp_path.resolve()
    monkeypatch.setenv("UDA_DATA_MIRROR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="UDA_DATA_MIRROR=.*does not exist"):
        resolve_mirror(str(tmp_path))


def test_corrupt_mirror_file_is_refused_and_good_files_survive(mirror, tmp_path):
    fake = tmp_path / "mirror"
    (fake / "USPS").mkdir(parents=True)
    shutil.copy(mirror / "USPS/usps.bz2", fake / "USPS/usps.bz2")
    data = (mirror / "USPS/usps.t.bz2").read_bytes()
    (fake / "USPS/usps.t.bz2").write_bytes(data[:-10] + b"0123456789")  # same size, wrong bytes
    raw = tmp_path / "raw"
    with pytest.raises(DataError) as e:
        fetch_domain("usps", raw, fake, progress=False)
    msg = str(e.value)
    assert "usps.t.bz2" in msg and "checksum mismatch" in msg and "22bb8959" in msg
    assert sorted(p.name for p in (raw / "usps").iterdir()) == ["usps.bz2"]  # nothing half-written
    good = (raw / "usps/usps.bz2").stat()
    (fake / "USPS/usps.t.bz2").write_bytes(data)  # repaired mirror: the good file is kept, not re-copied
    fetched = {f.name: f.origin for f in fetch_domain("usps", raw, fake, progress=False)}
    assert fetched == {"usps.bz2": "cached", "usps.t.bz2": "mirror"}
    assert (raw / "usps/usps.bz2").stat().st_mtime_ns == good.st_mtime_ns
    assert _leftovers(raw) == []


def test_corrupt_local_file_is_replaced_from_the_mirror(mirror, tmp_path):
    raw = tmp_path / "raw"
    fetch_domain("usps", raw, mirror, progress=False)
    (raw / "usps/usps.t.bz2").write_bytes(b"truncated")
    fetched = {f.name: f.origin for f in fetch_domain("usps", raw, mirror, progress=False)}
    assert fetched == {"usps.bz2": "cached", "usps.t.bz2": "mirror"}


def test_missing_mirror_file_and_no_network_says_how_to_fix(tmp_path):
    (tmp_path / "mirror").mkdir()
    rf = dataclasses.replace(dataset_of("usps").raw_files("usps")[0], urls=("http://127.0.0.1:9/usps.bz2",))
    with pytest.raises(DataError) as e:
        fetch(rf, tmp_path / "raw", tmp_path / "mirror", progress=False)
    msg = str(e.value)
    assert f"mirror file {tmp_path / 'mirror' / 'USPS/usps.bz2'} is missing" in msg
    assert "127.0.0.1:9" in msg and "UDA_DATA_MIRROR" in msg
    assert not (tmp_path / "raw" / "usps.bz2").exists()


class _Server:
    """A loopback HTTP server answering from a queue of (status, body) per request."""

    def __init__(self, responses):
        self.responses = list(responses)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = outer.responses.pop(0) if len(outer.responses) > 1 else outer.responses[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/t10k-labels-idx1-ubyte.gz"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def labels_file():
    return next(f for f in dataset_of("mnist").raw_files("mnist") if f.name == "t10k-labels-idx1-ubyte.gz")


def test_official_download_with_retry_after_server_error(mirror, tmp_path, labels_file):
    official = (mirror / labels_file.mirror).read_bytes()  # MANIFEST: byte-identical to the official file
    server = _Server([(503, b"busy"), (200, official)])
    try:
        got = fetch(dataclasses.replace(labels_file, urls=(server.url,)), tmp_path, None, progress=False)
    finally:
        server.close()
    assert got.origin == server.url and got.digest == f"sha256:{labels_file.sha256}"
    assert (tmp_path / labels_file.name).read_bytes() == official


def test_download_that_fails_verification_installs_nothing(tmp_path, labels_file):
    server = _Server([(200, b"not the official bytes")])
    try:
        with pytest.raises(DataError, match="sha256 checksum mismatch for t10k-labels-idx1-ubyte.gz"):
            fetch(dataclasses.replace(labels_file, urls=(server.url,)), tmp_path, None, progress=False)
    finally:
        server.close()
    assert list(tmp_path.iterdir()) == []
