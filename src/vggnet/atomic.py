"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Write to a temporary file in the target's folder, flush it to disk, then rename it over the
target (a rename within one file system is atomic). On failure the temporary file is removed and
the previous target, if any, is untouched.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    if target.parent.exists() and not target.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(target.parent))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())  # mkstemp makes files private; keep the usual permissions
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Replace ``target`` with ``text`` atomically (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")  # a file name's raw bytes survive
    return Path(target)
