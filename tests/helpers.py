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
from numpy.lib.stride_tricks import sliding_window_view
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
        self.cut_times: int | None = None  # ... in only this many responses (None: every one)
        self.corrupt_times = 0  # this many responses carry the payload with its first byte changed
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
                if server.corrupt_times > 0 and body:
                    server.corrupt_times -= 1
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None and server.cut_times != 0:
                    body = body[: server.cut_after]
                    self.close_connection = True
                    if server.cut_times is not None:
                        server.cut_times -= 1
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


VGG16_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
VGG19_BLOCKS = [(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)]


def keras_vgg_layers(blocks=VGG16_BLOCKS, dense=(4096, 4096, 1000), pool: int = 7, seed: int = 0) -> list:
    """Random weights in Keras's shapes and names: conv kernels HWIO, Dense kernels (in, out),
    pooling and flatten layers without weights. ``dense=()`` is a ``_notop`` file."""
    rng = np.random.default_rng(seed)
    layers, cin = [], 3
    for b, (cout, n) in enumerate(blocks, start=1):
        for i in range(1, n + 1):
            kernel = rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * np.float32((2 / (9 * cin)) ** 0.5)
            layers.append((f"block{b}_conv{i}", [kernel, rng.standard_normal(cout, dtype=np.float32) * 0.1]))
            cin = cout
        layers.append((f"block{b}_pool", []))
    if dense:
        layers.append(("flatten", []))
        fan_in = cin * pool * pool
        for name, out in zip(("fc1", "fc2", "predictions"), dense, strict=True):
            kernel = rng.standard_normal((fan_in, out), dtype=np.float32) * np.float32((2 / fan_in) ** 0.5)
            layers.append((name, [kernel, rng.standard_normal(out, dtype=np.float32) * 0.1]))
            fan_in = out
    return layers


def write_keras_h5(path: Path, layers: list, flat_names: bool = False) -> Path:
    """A weight file in the layout of Keras's ``save_weights`` (HDF5, legacy format), as the
    published VGG files are: root ``layer_names``, per layer ``weight_names`` naming its datasets
    (``block1_conv1/kernel:0`` in a subgroup; Keras 1 used flat ``block1_conv1_W_1:0``)."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name, _ in layers]
        f.attrs["backend"] = b"tensorflow"
        for name, arrays in layers:
            group = f.create_group(name)
            names = ([f"{name}_W_1:0", f"{name}_b_1:0"] if flat_names else [f"{name}/kernel:0", f"{name}/bias:0"])
            group.attrs["weight_names"] = [n.encode() for n in names[: len(arrays)]]
            for n, a in zip(names, arrays, strict=False):
                group.create_dataset(n, data=a)
    return path


def keras_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras Conv2D(padding='same') on one HWC image, written out: sum over the 3x3xC window."""
    windows = sliding_window_view(np.pad(x, ((1, 1), (1, 1), (0, 0))), (3, 3), axis=(0, 1))  # H, W, C, 3, 3
    return np.tensordot(windows, kernel, axes=([3, 4, 2], [0, 1, 2])) + bias


def keras_forward(layers, image: np.ndarray) -> np.ndarray:
    """VGG as Keras runs it: channels-last convs, 2x2 max-pools, a channels-last flatten."""
    x = image
    for name, arrays in layers:
        if "conv" in name:
            x = np.maximum(keras_conv(x, *arrays), 0)
        elif "pool" in name:
            h, w, c = x.shape
            x = x.reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))
        elif name == "flatten":
            x = x.reshape(-1)
        else:
            x = x @ arrays[0] + arrays[1]
            if name != "predictions":
                x = np.maximum(x, 0)
    return x
