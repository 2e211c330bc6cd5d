import hashlib
import sys
from types import SimpleNamespace

import pytest

from tests.helpers import FileServer
from vggnet.data.download import download, file_digest
from vggnet.errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several read chunks
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    s = FileServer(PAYLOAD)
    yield s
    s.close()


def test_download_verifies_and_renames(server, tmp_path):
    dest = download(server.url, tmp_path / "a.tar.gz", md5=MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.tar.gz.part").exists()
    assert file_digest(dest, "sha256") == hashlib.sha256(PAYLOAD).hexdigest()


def test_present_file_with_right_checksum_is_not_fetched_again(server, tmp_path):
    download(server.url, tmp_path / "a", md5=MD5, progress=False)
    download(server.url, tmp_path / "a", md5=MD5, progress=False)
    assert len(server.requests) == 1


def test_truncated_download_keeps_part_and_resumes_with_range(server, tmp_path):
    server.cut_after = 300_000
    with pytest.raises(DownloadError, match="stopped at 300000 of 1048576 bytes; run again to resume"):
        download(server.url, tmp_path / "a", md5=MD5, progress=False, attempts=1)
    assert (tmp_path / "a.part").stat().st_size == 300_000
    assert not (tmp_path / "a").exists()
    server.cut_after = None
    dest = download(server.url, tmp_path / "a", md5=MD5, progress=False)
    assert server.requests[-1]["Range"] == "bytes=300000-"
    assert dest.read_bytes() == PAYLOAD


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    (tmp_path / "a.part").write_bytes(PAYLOAD[:1000])
    server.ignore_range = True
    assert download(server.url, tmp_path / "a", md5=MD5, progress=False).read_bytes() == PAYLOAD


def test_complete_part_file_is_verified_after_416(server, tmp_path):
    (tmp_path / "a.part").write_bytes(PAYLOAD)
    assert download(server.url, tmp_path / "a", md5=MD5, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1]["Range"] == f"bytes={len(PAYLOAD)}-"


def test_checksum_mismatch_removes_the_file(server, tmp_path):
    with pytest.raises(ChecksumError, match=f"md5 of a is {MD5}, expected 0+; the file was removed"):
        download(server.url, tmp_path / "a", md5="0" * 32, progress=False, pause=0)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_part_is_caught_by_checksum_not_used(server, tmp_path):
    (tmp_path / "a.part").write_bytes(b"x" * 1000)  # wrong bytes: resuming after them gives a bad file
    with pytest.raises(ChecksumError):
        download(server.url, tmp_path / "a", md5=MD5, progress=False, attempts=1)
    assert download(server.url, tmp_path / "a", md5=MD5, progress=False).read_bytes() == PAYLOAD


def test_a_dropped_connection_is_retried_from_where_it_stopped(server, tmp_path):
    server.cut_after, server.cut_times = 300_000, 2
    dest = download(server.url, tmp_path / "a", md5=MD5, progress=False, pause=0)
    assert dest.read_bytes() == PAYLOAD
    assert [r.get("Range") for r in server.requests] == [None, "bytes=300000-", "bytes=600000-"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_corrupt_transfer_is_fetched_again_and_never_kept(server, tmp_path):
    server.corrupt_times = 1
    assert download(server.url, tmp_path / "a", md5=MD5, progress=False, pause=0).read_bytes() == PAYLOAD
    assert len(server.requests) == 2 and "Range" not in server.requests[1]  # from zero, not resumed
    server.corrupt_times, before = 5, len(server.requests)
    with pytest.raises(ChecksumError, match=r"the file was removed, run again \(after 2 attempts\)"):
        download(server.url, tmp_path / "b", md5=MD5, progress=False, pause=0)
    assert len(server.requests) - before == 2  # the same wrong bytes twice: the server has that file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no b, no b.part


def test_retries_pause_longer_each_time(server, tmp_path, monkeypatch):
    pauses = []
    monkeypatch.setattr(sys.modules["vggnet.data.download"], "time", SimpleNamespace(sleep=pauses.append))
    server.status = 503
    with pytest.raises(DownloadError, match=r"HTTP 503 .* \(after 4 attempts\)"):
        download(server.url, tmp_path / "a", md5=MD5, progress=False, attempts=4, pause=0.25)
    assert pauses == [0.25, 0.5, 1.0] and len(server.requests) == 4


def test_http_error_and_unreachable_host_are_one_line(server, tmp_path):
    server.status = 404
    with pytest.raises(DownloadError, match=r"HTTP 404") as err:
        download(server.url, tmp_path / "a", md5=MD5, progress=False)
    assert "\n" not in str(err.value) and len(server.requests) == 1  # a missing file is not asked for again
    server.close()
    with pytest.raises(DownloadError, match=r"cannot download .*after 3 attempts"):
        download(server.url, tmp_path / "b", md5=MD5, progress=False, timeout=2, pause=0)


def test_sha256_prefix_as_in_torchvision_file_names(server, tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(server.url, tmp_path / "w-x.pth", sha256=digest[:8], progress=False).read_bytes() == PAYLOAD
    with pytest.raises(ChecksumError, match="expected 0000000"):
        download(server.url, tmp_path / "w-y.pth", sha256="00000000", progress=False, pause=0)
    with pytest.raises(ChecksumError):  # too short to mean anything: compared whole, so it fails
        download(server.url, tmp_path / "w-z.pth", sha256=digest[:4], progress=False, pause=0)
