"""Test data made on the spot: CIFAR archives in the official format, image folders, an HTTP server."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_batches(n_per_batch: int = 20, n_test: int = 20, seed: int = 0, bad_label: bool = False) -> dict[str, bytes]:
    """The pickled files of cifar-10-batches-py, as the official release writes them (protocol 2)."""
    rng = np.random.default_rng(seed)
    files = {}
    for name, n in [*((f"data_batch_{i}", n_per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        labels = [int(v) for v in rng.integers(0, 10, n)]
        if bad_label and name == "data_batch_3":
            labels[0] = 10
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
        files[name] = pickle.dumps(batch, protocol=2)
    meta = {b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_cases_per_batch": n_per_batch, b"num_vis": 3072}
    files["batches.meta"] = pickle.dumps(meta, protocol=2)
    return files


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "", mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_cifar_archive(path: Path, **kwargs) -> Path:
    return write_tar(path, cifar_batches(**kwargs), prefix="cifar-10-batches-py/")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def image_bytes(color: tuple[int, ...], size: int = 32, mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (size, size), color).save(buf, format=fmt)
    return buf.getvalue()


def write_class_folders(root: Path, classes: dict[str, list[tuple[int, ...]]], size: int = 32) -> Path:
    """root/<class>/<i>.jpg, one image per colour given."""
    for cls, colors in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, color in enumerate(colors):
            (root / cls / f"{i:03d}.jpg").write_bytes(image_bytes(color, size))
    return root


def colour_folders(root, per_class=24, size=32, seed=0):
    """Three classes told apart by their dominant colour, with noise: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    for c, name in enumerate(["red", "green", "blue"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = torch.randint(0, 120, (size, size, 3), generator=g, dtype=torch.uint8)
            img[..., c] += 120
            buf = io.BytesIO()
            Image.fromarray(img.numpy()).save(buf, format="PNG")
            (root / name / f"{i}.png").write_bytes(buf.getvalue())
    return root


class FileServer:
    """Serves one payload on 127.0.0.1 with HTTP Range support and switchable faults."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.cut_after: int | None = None  # close the connection after this many body bytes
        self.ignore_range = False
        self.status: int | None = None  # answer every request with this error code
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                if server.status:
                    self.send_error(server.status)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(server.payload)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body = body[: server.cut_after]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
