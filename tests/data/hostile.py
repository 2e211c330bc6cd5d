"""Hostile files made cheaply: FIFOs that would block a reader, tar headers that declare gigabytes
they do not hold. Shared by tests/data/test_bounds.py and tests/weights/test_hostile_weights.py."""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

GIB = 1 << 30


def finishes(fn: Callable[[], object], fifo: Path | None = None, seconds: float = 10) -> object:
    """``fn()``'s result (or its exception, raised here), failing the test if it is still running
    after ``seconds``: a reader blocked on ``fifo`` is then released by opening it for writing."""
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as err:  # re-raised in the test's thread
            out["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer that closes: the reader sees EOF
        thread.join(5)
        pytest.fail(f"still running after {seconds} s (blocked on a FIFO or reading without end)")
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out.get("value")


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _checksum(header: bytearray) -> bytearray:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return header


def declared_header(name: str, size: int) -> bytes:
    """A GNU tar header for a regular member of ``size`` bytes (base-256 above 8 GiB)."""
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def sparse_tar(path: Path, name: str, real_size: int = 8 * GIB, before: dict[str, bytes] | None = None) -> Path:
    """A valid GNU sparse tar (old format, type 'S') whose member expands to ``real_size`` bytes from
    one stored block: about 3 KB on disk, 8 GiB once read. ``before``: plain members written first."""
    with open(path, "wb") as f:
        for other, data in (before or {}).items():
            f.write(declared_header(other, len(data)) + data + bytes(-len(data) % 512))
        header = bytearray(declared_header(name, 512))
        header[156:157] = b"S"
        header[386:398] = b"%011o\0" % (real_size - 512)  # one sparse entry: 512 data bytes at the end
        header[398:410] = b"%011o\0" % 512
        header[482] = 0  # no extension headers
        header[483:495] = b"\x80" + real_size.to_bytes(11, "big")  # the real size, base-256
        f.write(bytes(_checksum(header)) + b"x" * 512 + bytes(1024))
    return path
