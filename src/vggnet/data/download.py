"""Resumable, checksummed downloads.

The bytes go to ``<dest>.part``; an interrupted download keeps that file, and the next attempt
asks the server for the rest (an HTTP Range request). Only a file whose checksum matches the
published one is renamed to ``dest``; a mismatch removes the partial file, so a corrupt download
is never used and never resumed from. A failed attempt (a dropped connection, a short read, a
checksum mismatch) is retried a few times with a growing pause before the error reaches the user.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from vggnet.errors import ChecksumError, DownloadError
from vggnet.progress import progress_bar

CHUNK = 1 << 20


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


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
    attempts: int = 3,
    pause: float = 0.5,
) -> Path:
    """Download ``url`` to ``dest`` (resuming a ``.part`` file) and verify its checksum.

    ``sha256`` may be a prefix of the digest (see :func:`digest_matches`). If ``dest`` already
    exists with the right checksum nothing is fetched. Up to ``attempts`` tries, ``pause`` seconds
    apart (doubling); the last failure is raised, saying how many tries were made. Not retried: an
    HTTP error other than a server-side one (5xx), and a second complete file with the same wrong
    checksum (the server has that file; fetching it again cannot help).
    """
    wrong = None
    for attempt in range(1, attempts + 1):
        try:
            return _download_once(url, Path(dest), md5=md5, sha256=sha256, timeout=timeout, progress=progress)
        except DownloadError as err:  # ChecksumError included
            actual = err.actual if isinstance(err, ChecksumError) else None
            if attempt == attempts or err.permanent or (actual is not None and actual == wrong):
                if attempt > 1:
                    raise type(err)(f"{err} (after {attempt} attempts)") from None
                raise
            wrong = actual
            time.sleep(pause * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _download_once(url: str, dest: Path, *, md5: str | None, sha256: str | None, timeout: float,
                   progress: bool) -> Path:
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5)
    if dest.exists() and (expected is None or digest_matches(file_digest(dest, algorithm), expected)):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416:  # 416: nothing left past our offset, the partial file is complete
            failure = DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}")
            failure.permanent = err.code < 500  # a missing file stays missing; a busy server may recover
            raise failure from None
        response = None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot download {url}: {reason}") from None

    if response is not None:
        with response:
            if offset and response.status != 206:  # the server ignored the Range: start over
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            received = offset
            with open(part, "ab" if offset else "wb") as f, progress_bar(
                f"download {dest.name}", total=total, enabled=progress, unit="bytes"
            ) as bar:
                bar.advance(offset)
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        f.write(block)
                        received += len(block)
                        bar.advance(len(block))
                except (OSError, http.client.HTTPException) as err:
                    raise DownloadError(
                        f"download of {url} stopped at {received} bytes ({err}); run again to resume"
                    ) from None
            if total is not None and received < total:
                raise DownloadError(
                    f"download of {url} stopped at {received} of {total} bytes; run again to resume"
                )
    if expected is not None:
        check_digest(part, expected, algorithm, name=dest.name)
    os.replace(part, dest)
    return dest
