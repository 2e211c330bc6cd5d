"""What a ``vggnet prepare`` pass has written into OUT, and the lock that keeps one pass at a time.

A pass records each shard as it lands (``.vggnet-prepare.json``: the plan's fingerprint and
every shard's count, size, SHA-256 and left-out images); the manifest of a finished pass holds
the same records. A rerun with the same plan keeps every shard whose size and SHA-256 still match
and writes the others; a rerun with another plan is refused. Two passes at once would interleave
shards of two plans under one manifest, so each holds an exclusive lock on OUT while it works.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

from vggnet.data.download import file_digest
from vggnet.data.shard_manifest import MAX_MANIFEST, read_manifest, read_own
from vggnet.data.shards import LOCK, MANIFEST, STATE
from vggnet.errors import DataError, VggnetError
from vggnet.terminal import printable_text as printable

RECORD_KEYS = ("file", "images", "bytes", "sha256", "skipped")
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def ours(out: Path) -> bool:
    """OUT holds something a pass wrote (a manifest, a state file or the lock)."""
    return any(os.path.lexists(out / name) for name in (MANIFEST, STATE, LOCK))


@contextlib.contextmanager
def locked(out: Path) -> Iterator[int]:
    """Hold OUT for this pass; another pass at the same time stops in one line. Yields the lock's
    file descriptor, which forked workers must close (see :func:`worker_start`): a lock lives as
    long as any process holds it open."""
    try:
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise VggnetError(f"{printable(str(out / LOCK))} is a symbolic link: remove it") from None
        raise
    try:
        import fcntl  # POSIX; imported here so that reading shards needs no fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise VggnetError(f"another vggnet prepare is writing {printable(str(out))}: wait for it to finish, or "
                              "stop it and run this again (it resumes)") from None
        yield fd
    finally:
        os.close(fd)


def _record(r: object) -> bool:
    return isinstance(r, dict) and all(k in r for k in RECORD_KEYS) and isinstance(r["file"], str) \
        and all(type(r[k]) is int and r[k] >= 0 for k in ("images", "bytes")) and isinstance(r["sha256"], str) \
        and isinstance(r["skipped"], dict)


def _what_differs(recorded: object, options: dict) -> str:
    recorded = recorded if isinstance(recorded, dict) else {}
    changed = [f"--{k.replace('_', '-')} {recorded.get(k)} (now {v})" for k, v in options.items()
               if recorded.get(k) != v]
    if changed:
        return f"it was prepared with {', '.join(changed)}"
    return "the data changed since (images, names or classes)"


def read_state(out: Path, fingerprint: str, options: dict) -> dict:
    """The records of an earlier pass with this plan: one under way (its state file) or a finished
    one (its manifest); none for a new OUT. Another plan's records stop in one line that says what
    differs (``options``: this pass's short_side, quality, shard_size and seed)."""
    if os.path.lexists(out / STATE):
        try:
            state = json.loads(read_own(out / STATE, MAX_MANIFEST))
        except ValueError:
            state = None
        done = state.get("done") if isinstance(state, dict) else None
        if not isinstance(done, dict) or not all(_record(r) and r["file"] == f for f, r in done.items()):
            raise DataError(f"{printable(str(out / STATE))} is damaged: delete {printable(str(out))} and prepare again")
        if state.get("plan") != fingerprint:
            raise VggnetError(f"{printable(str(out))} holds a partly prepared dataset from other data or options "
                              f"({_what_differs(state.get('options'), options)}): run the command that started it, "
                              "give another folder, or delete it")
        return state
    if (out / MANIFEST).is_file():
        manifest = read_manifest(out)
        if manifest.get("plan") != fingerprint:
            raise VggnetError(f"{printable(str(out))} holds a dataset prepared from other data or options "
                              f"({_what_differs(manifest, options)}): give another folder, or delete it first")
        done = {s["file"]: {k: s[k] for k in RECORD_KEYS} for e in manifest["splits"].values() for s in e["shards"]
                if _record(s)}
        return {"plan": fingerprint, "options": options, "done": done}
    return {"plan": fingerprint, "options": options, "done": {}}


def intact(out: Path, record: dict | None) -> bool:
    """A shard on disk is the one recorded: a regular file of its size and SHA-256."""
    if record is None:
        return False
    path = out / record["file"]
    try:
        st = os.lstat(path)  # no link: the reader refuses one too
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == record["bytes"] \
        and file_digest(path, "sha256") == record["sha256"]


def worker_start(lock_fd: int, parent: int) -> None:
    """In each pool worker: let go of the parent's lock, and die with the parent (Linux), so a
    killed pass leaves no process writing shards or holding OUT."""
    with contextlib.suppress(OSError):
        os.close(lock_fd)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
