"""Downloads against hostile servers: an endless body, a lying Content-Length, a drip, a full disk."""

import contextlib
import hashlib
import importlib
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from vggnet.data.download import DEADLINE_ENV, FREE_MARGIN, download
from vggnet.errors import DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SIZE = len(PAYLOAD)
MD5 = hashlib.md5(PAYLOAD).hexdigest()
dl = importlib.import_module("vggnet.data.download")  # the module; vggnet.data.download is the function


class HostileServer:
    """Answers every GET on 127.0.0.1 with ``mode``: 'endless', 'liar', 'drip' or 'honest'."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[dict[str, str]] = []
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: a body without Content-Length ends at close
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                with contextlib.suppress(OSError):  # the client hung up, as it should
                    getattr(server, f"_{server.mode}")(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/a"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _endless(self, h) -> None:  # no Content-Length, bytes until the client leaves (capped for old code)
        h.send_response(200)
        h.end_headers()
        for _ in range(64):
            h.wfile.write(PAYLOAD)

    def _liar(self, h) -> None:  # announces ten times the file, sends the file
        h.send_response(200)
        h.send_header("Content-Length", str(10 * SIZE))
        h.end_headers()
        h.wfile.write(PAYLOAD)

    def _drip(self, h) -> None:  # one byte every 0.2 s, the Content-Length honest
        h.send_response(200)
        h.send_header("Content-Length", str(SIZE))
        h.end_headers()
        for i in range(50):
            if self.stop.wait(0.2):
                return
            h.wfile.write(PAYLOAD[i : i + 1])
            h.wfile.flush()

    def _honest(self, h) -> None:  # the rest of the file from a Range offset
        start = int(h.headers.get("Range", "bytes=0-").removeprefix("bytes=").split("-")[0])
        h.send_response(206 if start else 200)
        h.send_header("Content-Length", str(SIZE - start))
        h.end_headers()
        h.wfile.write(PAYLOAD[start:])

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(mode: str) -> HostileServer:
        servers.append(HostileServer(mode))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def disk_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def test_endless_stream_is_cut_one_byte_past_the_known_size(serve, tmp_path):
    server = serve("endless")
    with pytest.raises(DownloadError, match=r"sent more than the 1048576 bytes of a; the partial file was removed"):
        download(server.url, tmp_path / "a", md5=MD5, size=SIZE, progress=False, pause=0)
    assert disk_bytes(tmp_path) <= SIZE and not (tmp_path / "a").exists()
    assert len(server.requests) == 1  # a server sending the wrong thing is not asked again


def test_endless_stream_of_unknown_size_stops_at_max_size_or_the_default(serve, tmp_path, monkeypatch):
    server = serve("endless")
    with pytest.raises(DownloadError, match=r"sent more than the 300000 bytes allowed") as err:
        download(server.url, tmp_path / "a", max_size=300_000, progress=False)
    assert "\n" not in str(err.value) and disk_bytes(tmp_path) <= 300_000
    monkeypatch.setattr(dl, "DEFAULT_MAX_SIZE", 200_000)  # no size, no max_size: the default bound holds
    with pytest.raises(DownloadError, match=r"sent more than the 200000 bytes allowed"):
        download(server.url, tmp_path / "b", progress=False)
    assert disk_bytes(tmp_path) == 0


def test_a_content_length_that_disagrees_with_the_known_size_is_refused(serve, tmp_path):
    server = serve("liar")
    with pytest.raises(DownloadError, match=r"announces 10485760 bytes but a has 1048576; wrong URL"):
        download(server.url, tmp_path / "a", md5=MD5, size=SIZE, progress=False, pause=0)
    assert list(tmp_path.iterdir()) == [] and len(server.requests) == 1  # refused before the body, not retried
    with pytest.raises(DownloadError, match=r"announces 10485760 bytes, more than the 2000000 allowed for b"):
        download(server.url, tmp_path / "b", max_size=2_000_000, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_a_drip_is_cut_at_the_deadline_and_the_part_kept(serve, tmp_path, monkeypatch, via):
    server = serve("drip")
    if via == "environment":
        monkeypatch.setenv(DEADLINE_ENV, "1")
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"passed its 1 s deadline at \d+ of 1048576 bytes; run again to resume"):
        download(server.url, tmp_path / "a", md5=MD5, size=SIZE, progress=False, attempts=1,
                 deadline=1.0 if via == "argument" else None)
    assert time.monotonic() - start < 3
    assert 0 < (tmp_path / "a.part").stat().st_size < 20  # kept for a resume
    assert not (tmp_path / "a").exists()


def test_the_default_deadline_scales_with_the_size(serve, tmp_path, monkeypatch):
    server = serve("drip")
    monkeypatch.delenv(DEADLINE_ENV, raising=False)
    monkeypatch.setattr(dl, "MIN_DEADLINE", 0.6)
    monkeypatch.setattr(dl, "MIN_RATE", SIZE / 0.3)  # the whole file in 0.3 s: the 0.6 s floor applies
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"passed its 0.6 s deadline"):
        download(server.url, tmp_path / "a", size=SIZE, progress=False, attempts=1)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan"])
def test_a_bad_deadline_setting_is_one_line_and_fetches_nothing(serve, tmp_path, monkeypatch, value):
    server = serve("honest")
    monkeypatch.setenv(DEADLINE_ENV, value)
    with pytest.raises(DownloadError, match=rf"\${DEADLINE_ENV}='{value}' is not a number of seconds > 0"):
        download(server.url, tmp_path / "a", size=SIZE, progress=False)
    assert server.requests == []


def test_too_little_disk_space_is_refused_before_any_request(serve, tmp_path, monkeypatch):
    server = serve("honest")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=SIZE))
    with pytest.raises(DownloadError, match=rf"not enough disk space in {tmp_path}: the download needs 1048576 bytes"):
        download(server.url, tmp_path / "a", md5=MD5, size=SIZE, progress=False)
    assert server.requests == [] and list(tmp_path.iterdir()) == []


def test_the_partial_file_counts_towards_the_space_needed(serve, tmp_path, monkeypatch):
    server = serve("honest")
    (tmp_path / "a.part").write_bytes(PAYLOAD[:-1000])
    free = 1000 + FREE_MARGIN  # exactly the 1000 bytes left plus the margin
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=free))
    assert download(server.url, tmp_path / "a", md5=MD5, size=SIZE, progress=False).read_bytes() == PAYLOAD
    assert server.requests[0]["Range"] == f"bytes={SIZE - 1000}-"


def test_unknown_size_checks_the_space_the_server_announces(serve, tmp_path, monkeypatch):
    server = serve("honest")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=SIZE))
    with pytest.raises(DownloadError, match=r"not enough disk space .* needs 1048576 bytes"):
        download(server.url, tmp_path / "a", progress=False)
    assert not (tmp_path / "a.part").exists() and len(server.requests) == 1


def test_a_partial_file_longer_than_the_file_is_discarded_not_resumed(serve, tmp_path):
    server = serve("honest")
    (tmp_path / "a.part").write_bytes(PAYLOAD + b"junk")
    assert download(server.url, tmp_path / "a", md5=MD5, size=SIZE, progress=False).read_bytes() == PAYLOAD
    assert "Range" not in server.requests[0]  # fetched from zero
