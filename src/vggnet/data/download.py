"""Resumable, checksummed, bounded downloads.

The bytes go to ``<dest>.part``; an interrupted download keeps that file, and the next attempt
asks the server for the rest (an HTTP Range request). Only a file whose checksum matches the
published one is renamed to ``dest``; a mismatch removes the partial file, so a corrupt download
is never used and never resumed from. A failed attempt (a dropped connection, a short read, a
checksum mismatch, a deadline passed) is retried a few times with a growing pause before the error
reaches the user.

A hostile or broken server cannot fill the disk or hold the download forever: every download has a
size bound (the file's known ``size``, else ``max_size``, 2 GiB by default) and stops as soon as one
byte more arrives; a Content-Length that disagrees with the known size (or exceeds the bound) is
refused before the body is read; the free space of the target folder is checked before anything is
fetched; and each attempt has a wall-clock deadline (``deadline=`` or ``$VGGNET_DOWNLOAD_TIMEOUT``
seconds, by default the time the remaining bytes take at 100 kB/s, at least 60 s), checked between
reads, on top of the per-read ``timeout``.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from time import monotonic

from vggnet.errors import ChecksumError, DownloadError
from vggnet.progress import progress_bar

CHUNK = 1 << 20
DEFAULT_MAX_SIZE = 2 << 30
"""Bytes: the most a download of unknown size may bring (the largest known file is about 0.55 GiB)."""
FREE_MARGIN = 32 << 20
"""Bytes left free on the target disk beyond the download itself."""
MIN_RATE = 100_000
"""Bytes per second: the default deadline gives the remaining bytes this much time..."""
MIN_DEADLINE = 60.0
"""...and never less than this many seconds."""
DEADLINE_ENV = "VGGNET_DOWNLOAD_TIMEOUT"


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def digest_matches(actual: str, expected: str) -> bool:
    """Whole-digest equality; a shorter ``expected`` (>= 8 hex digits) is a prefix, as torchvision's
    file names carry the first digits of their sha256."""
    expected = expected.lower()
    return actual == expected or (8 <= len(expected) < len(actual) and actual.startswith(expected))


def check_digest(path: Path, expected: str, algorithm: str, name: str | None = None) -> None:
    """Raise :class:`ChecksumError` (after removing ``path``) if its digest is not ``expected``."""
    actual = file_digest(path, algorithm)
    if not digest_matches(actual, expected):
        path.unlink(missing_ok=True)
        err = ChecksumError(
            f"{algorithm} of {name or path.name} is {actual}, expected {expected}; the file was removed, run again"
        )
        err.actual = actual
        raise err


def _permanent(message: str) -> DownloadError:
    """A DownloadError that asking again cannot cure (not retried)."""
    err = DownloadError(message)
    err.permanent = True
    return err


def download_deadline(deadline: float | None = None) -> float | None:
    """Seconds one attempt may take: ``deadline``, else ``$VGGNET_DOWNLOAD_TIMEOUT``, else None
    (then each attempt gets the time its remaining bytes take at ``MIN_RATE``, at least ``MIN_DEADLINE``)."""
    source = f"deadline={deadline!r}"
    if deadline is None:
        raw = os.environ.get(DEADLINE_ENV, "").strip()
        if not raw:
            return None
        source = f"${DEADLINE_ENV}={raw!r}"
        try:
            deadline = float(raw)
        except ValueError:
            deadline = math.nan
    if not deadline > 0:
        raise _permanent(f"{source} is not a number of seconds > 0; set it to e.g. 600, or unset it")
    return float(deadline)


def check_free_space(folder: Path, needed: int, margin: int = FREE_MARGIN) -> None:
    """Refuse (a one-line DownloadError) to start a download of ``needed`` bytes that cannot fit in ``folder``."""
    free = shutil.disk_usage(folder).free
    if needed + margin > free:
        raise _permanent(
            f"not enough disk space in {folder}: the download needs {needed} bytes ({needed / 2**20:.1f} MiB) "
            f"plus {margin // 2**20} MiB spare, {free} bytes ({free / 2**20:.1f} MiB) are free; free some space there"
        )


@dataclass(frozen=True)
class _Bounds:
    size: int | None  # the file's exact size, where known
    limit: int  # the most bytes the file may have: size, else max_size
    deadline: float | None  # seconds per attempt, None: scaled to the bytes left


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    max_size: int | None = None,
    deadline: float | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    attempts: int = 3,
    pause: float = 0.5,
) -> Path:
    """Download ``url`` to ``dest`` (resuming a ``.part`` file) and verify its checksum.

    ``sha256`` may be a prefix of the digest (see :func:`digest_matches`). If ``dest`` already
    exists with the right checksum nothing is fetched. ``size`` is the file's exact size in bytes
    (other answers are refused); without it ``max_size`` (default 2 GiB) bounds what is accepted.
    ``deadline`` (seconds per attempt, see :func:`download_deadline`) cuts a server that drips;
    ``timeout`` bounds each read. Up to ``attempts`` tries, ``pause`` seconds apart (doubling); the
    last failure is raised, saying how many tries were made. Not retried: an HTTP error other than a
    server-side one (5xx), an answer of the wrong size, too little disk space, and a second complete
    file with the same wrong checksum (the server has that file; fetching it again cannot help).
    """
    limit = size if size is not None else (max_size if max_size is not None else DEFAULT_MAX_SIZE)
    bounds = _Bounds(size, limit, download_deadline(deadline))
    wrong = None
    for attempt in range(1, attempts + 1):
        try:
            return _download_once(url, Path(dest), md5=md5, sha256=sha256, bounds=bounds, timeout=timeout,
                                  progress=progress)
        except DownloadError as err:  # ChecksumError included
            actual = err.actual if isinstance(err, ChecksumError) else None
            if attempt == attempts or err.permanent or (actual is not None and actual == wrong):
                if attempt > 1:
                    raise type(err)(f"{err} (after {attempt} attempts)") from None
                raise
            wrong = actual
            time.sleep(pause * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _download_once(url: str, dest: Path, *, md5: str | None, sha256: str | None, bounds: _Bounds, timeout: float,
                   progress: bool) -> Path:
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5)
    if dest.exists() and (expected is None or digest_matches(file_digest(dest, algorithm), expected)):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if offset > bounds.limit:  # longer than the file can be: not a piece of it
        part.unlink()
        offset = 0
    if bounds.size is not None:
        check_free_space(dest.parent, bounds.size - offset)
    started = monotonic()
    response = _open(url, offset, timeout if bounds.deadline is None else min(timeout, bounds.deadline))
    if response is not None:
        with response:
            _receive(response, url, part, offset, bounds, started, progress)
    if expected is not None:
        check_digest(part, expected, algorithm, name=dest.name)
    os.replace(part, dest)
    return dest


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | None:
    """The server's answer for the bytes from ``offset`` on; None if there are none (HTTP 416)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # nothing left past our offset, the partial file is complete
            return None
        failure = DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}")
        failure.permanent = err.code < 500  # a missing file stays missing; a busy server may recover
        raise failure from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {url}: {reason}") from None


def _announced_total(response: http.client.HTTPResponse, url: str, name: str, offset: int,
                     bounds: _Bounds) -> int | None:
    """The file size the answer's Content-Length implies; one that contradicts ``bounds`` is refused."""
    try:
        total = offset + int(response.headers["Content-Length"])
    except (TypeError, ValueError):  # absent or malformed: the read loop still enforces the bound
        return None
    if bounds.size is not None and total != bounds.size:
        raise _permanent(f"{url} announces {total} bytes but {name} has {bounds.size}; wrong URL or a broken server")
    if total > bounds.limit:
        raise _permanent(f"{url} announces {total} bytes, more than the {bounds.limit} allowed for {name}; "
                         "pass a larger max_size if that is right")
    return total


def _receive(response: http.client.HTTPResponse, url: str, part: Path, offset: int, bounds: _Bounds,
             started: float, progress: bool) -> None:
    """Append the answer's body to ``part``, within the size bound and the deadline."""
    name = part.name.removesuffix(".part")
    if offset and response.status != 206:  # the server ignored the Range: start over
        offset = 0
    total = _announced_total(response, url, name, offset, bounds)
    if bounds.size is None and total is not None:
        check_free_space(part.parent, total - offset)
    total = total if total is not None else bounds.size
    budget = bounds.deadline or max(MIN_DEADLINE, ((total or bounds.limit) - offset) / MIN_RATE)
    read = getattr(response, "read1", response.read)  # read1: what has arrived, so the deadline is checked
    received, overflow = offset, False
    with open(part, "ab" if offset else "wb") as f, progress_bar(
        f"download {name}", total=total, enabled=progress, unit="bytes"
    ) as bar:
        bar.advance(offset)
        try:
            while block := read(min(CHUNK, bounds.limit + 1 - received)):  # never more than one byte too many
                if received + len(block) > bounds.limit:
                    overflow = True
                    break
                f.write(block)
                received += len(block)
                bar.advance(len(block))
                if monotonic() - started > budget and (total is None or received < total):
                    of = f" of {total}" if total is not None else ""
                    raise DownloadError(f"download of {url} passed its {budget:g} s deadline at {received}{of} bytes; "
                                        f"run again to resume, or allow more seconds in ${DEADLINE_ENV}")
        except DownloadError:
            raise
        except (OSError, http.client.HTTPException) as err:
            raise DownloadError(f"download of {url} stopped at {received} bytes ({err}); run again to resume") from None
    if overflow:
        part.unlink(missing_ok=True)
        what = f"the {bounds.size} bytes of {name}" if bounds.size is not None else f"the {bounds.limit} bytes allowed"
        raise _permanent(f"{url} sent more than {what}; the partial file was removed (wrong URL or a broken server)")
    if total is not None and received < total:
        raise DownloadError(f"download of {url} stopped at {received} of {total} bytes; run again to resume")
