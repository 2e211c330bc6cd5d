"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Write to a temporary file in the target's folder, flush it to disk, then rename it over the
target (a rename within one file system is atomic). On failure the temporary file is removed and
the previous target, if any, is untouched. A target that is not a regular file (a device such as
/dev/null, a FIFO, a folder, a symbolic link) is never replaced: a rename would swap the system's
node or the user's link for a plain file.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vggnet.errors import VggnetError


def default_mode() -> int:
    """The mode a new file gets from the umask (0o644 under the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def refuse_non_regular(target: Path) -> None:
    """Stop unless ``target`` is absent or a regular file (checked without following links)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise VggnetError(f"{target} is {what}: vggnet only replaces regular files; choose another output path")


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target`` atomically."""
    target = Path(target)
    if target.parent.exists() and not target.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(target.parent))
    refuse_non_regular(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:  # a read-only folder: name the file the user asked for, not a temporary one
        raise OSError(err.errno, err.strerror, str(target)) from err
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())  # mkstemp makes files private; keep the usual permissions
        os.replace(tmp, target)
    except OSError as err:
        if err.filename in (None, tmp) and err.errno is not None:  # name the file the user asked for
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_failure(err: BaseException) -> str | None:
    """Why a write failed, in words, when a library lost the OS's reason; None when ``err`` is not
    a failed write. safetensors says "os error 28"; torch.save's zip writer only sees fewer bytes
    written than it asked for ("unexpected pos"), whatever the cause."""
    if isinstance(err, OSError) and err.errno is not None:
        return os.strerror(err.errno)
    text = str(err).lower()
    if type(err).__name__ == "SafetensorError" and ("os error 28" in text or "no space left" in text):
        return os.strerror(errno.ENOSPC)
    if type(err).__name__ == "SafetensorError" and "os error 27" in text:
        return os.strerror(errno.EFBIG)
    if type(err) is RuntimeError and "inline_container" in text and "unexpected pos" in text:
        return "the file was cut short (is the disk full?)"
    return None


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Replace ``target`` with ``text`` atomically (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")  # a file name's raw bytes survive
    return Path(target)
