"""Bounded reads of files vggnet did not write: images, archives, CIFAR batches, weight files.

One rule for all of them: only a regular file is read (a FIFO would block the reader, a device
such as /dev/zero never ends), and never more bytes than a bound fixed before reading, the
format's own or ``$VGGNET_MAX_FILE_MB``, even if the file grows while it is read.
"""

from __future__ import annotations

import os
import stat

from vggnet.errors import DataError

MAX_FILE_ENV = "VGGNET_MAX_FILE_MB"
MAX_FILE_MB = 1024
"""The default bound on a file read as data: no image people train on is larger, so a bigger one
is refused before it is read (weight files and CIFAR batches apply their format's own bound too)."""
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


class UnreadableFile(ValueError):
    """A file skipped or refused as data: refused before reading (:class:`FileRefused`) or, once
    read, not what it claims to be (``vggnet.data.decode.BadImage``). Readers that skip bad files
    catch this."""


class FileRefused(UnreadableFile):
    """A file vggnet does not read as data: not a regular file, or larger than the bound."""


def max_file_bytes() -> int:
    """The bound on one file read as data, from ``$VGGNET_MAX_FILE_MB`` (default 1024 MiB): one
    setting for images in folders and archives, images given directly and weight files."""
    raw = os.environ.get(MAX_FILE_ENV, "").strip()
    try:
        mb = float(raw) if raw else MAX_FILE_MB
        if not 0 < mb < 2**43:  # NaN and inf fail too
            raise ValueError
    except ValueError:
        raise DataError(f"{MAX_FILE_ENV} must be a number of MiB > 0 (e.g. 1024), got {raw!r}") from None
    return int(mb * 2**20)


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n:,} bytes"


def over_bound(size: int, bound: int) -> FileRefused:
    """The refusal of a file of ``size`` bytes over ``bound``, naming the setting that raises it."""
    return FileRefused(f"{_mib(size)}, over the {_mib(bound)} that vggnet reads (set {MAX_FILE_ENV} to raise it)")


def check_file(st: os.stat_result, bound: int) -> None:
    """Refuse (:class:`FileRefused`) what is not a regular file, or is larger than ``bound`` bytes:
    a FIFO would block the reader, a device such as /dev/zero never ends."""
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'a special file')})")
    if st.st_size > bound:
        raise over_bound(st.st_size, bound)


def stat_regular(path: str | os.PathLike[str], bound: int | None = None) -> None:
    """``os.stat`` (which never blocks, unlike opening a FIFO) checked by :func:`check_file`."""
    check_file(os.stat(path), max_file_bytes() if bound is None else bound)


def read_regular(path: str | os.PathLike[str], bound: int | None = None, head: int | None = None) -> bytes:
    """A regular file's bytes, never more than ``bound`` (default :func:`max_file_bytes`) even if it
    grows while read; ``head``: only its first bytes, whatever its size. Opened non-blocking, so a
    FIFO swapped in after a listing is refused rather than waited on."""
    bound = max_file_bytes() if bound is None else bound
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        check_file(st, bound if head is None else 2**63)
        if head is not None:
            return f.read(head)
        data = f.read(st.st_size + 1)  # the size it says, and one byte to see that was all
        if len(data) > st.st_size:  # growing, or reporting no size (/proc): on in chunks, to the bound
            parts, got = [data], len(data)
            while got <= bound and (chunk := f.read(min(1 << 20, bound + 1 - got))):
                parts.append(chunk)
                got += len(chunk)
            data = b"".join(parts)
    if len(data) > bound:
        raise FileRefused(f"over the {_mib(bound)} that vggnet reads (it grew while read)")
    return data


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
