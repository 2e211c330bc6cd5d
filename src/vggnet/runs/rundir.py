"""A run directory that its run owns: claimed before any data is read, locked while in use.

vggnet writes a training run, an evaluation or a study into a folder of its own. ``RunDir.claim``
decides whether it may: a new or empty folder, or one that vggnet wrote for the same kind of work,
is taken; a folder of anything else (the user's files, a training run when evaluating) is refused
in one line, so nothing the user had is overwritten. While the work runs, an exclusive lock on
``.vggnet.lock`` keeps a second process out (it is told who holds it); the lock dies with its
process, so a run killed with ``kill -9`` can be resumed at once. The lock file stays afterwards
and records what the folder holds.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vggnet.errors import CheckpointError, VggnetError, one_line
from vggnet.runs.checkpoint import LATEST, latest_dir

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: no advisory locks; ownership is still checked)
    fcntl = None  # type: ignore[assignment]

LOCK = ".vggnet.lock"
KINDS = ("train", "evaluate", "study")
RUN_FIELDS = {"model": str, "data": str, "seed": int, "deterministic": bool, "recipe": dict}
TYPE_WORDS = {str: "a string", int: "a whole number", bool: "true or false", dict: "an object"}
WORDS = {"train": "a training run", "evaluate": "an evaluation", "study": "a study"}


class RunDirError(VggnetError):
    """A run directory that is not this run's to write, or is in use by another process."""


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def owner(path: Path) -> str | None:
    """What vggnet wrote in ``path``: 'train', 'evaluate' or 'study'; '' for a missing or empty
    folder; None for a folder of anything else. Folders from before the lock file are told by
    their files (run.json with a model and recipe; an evaluation's metrics.json; results.json)."""
    if not path.exists():
        return ""
    if not path.is_dir():
        return None
    lock = _json(path / LOCK) if (path / LOCK).is_file() else None
    if lock is not None and lock.get("kind") in KINDS:
        return lock["kind"]
    entries = {p.name for p in path.iterdir()} - {LOCK}
    if not entries:
        return ""
    run = _json(path / "run.json")
    if run is not None and {"model", "recipe"} <= run.keys():
        return "train"
    metrics = _json(path / "metrics.json")
    if metrics is not None and "protocol" in metrics and "images_are" in metrics:
        return "evaluate"
    results = _json(path / "results.json")
    if results is not None and {"study", "arms"} <= results.keys():
        return "study"
    return None


@dataclass
class RunDir:
    """The folder of one run: its paths, its lock, its checkpoints and its run.json."""

    path: Path
    kind: str = "train"
    _lock: IO[str] | None = field(default=None, repr=False)
    _created: str = field(default="", repr=False)  # what the claim made: "folder", "lock" or nothing

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    def latest(self) -> Path | None:
        """The epoch folder LATEST names, or None before the first checkpoint."""
        return latest_dir(self.checkpoints)

    def has_checkpoint(self) -> bool:
        return (self.checkpoints / LATEST).exists()

    def claim(self, resume: bool = False) -> RunDir:
        """Make the folder this run's (see the module's docstring) and lock it; returns self."""
        found = owner(self.path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path} is a file, not a folder: choose another --out")
        if found is None:
            raise RunDirError(f"{self.path} is not empty and holds no vggnet {self.kind} output: vggnet will not write "
                              "among your files; choose a new or empty --out")
        if found not in ("", self.kind):
            raise RunDirError(f"{self.path} holds {WORDS[found]}, not {WORDS[self.kind]}: choose another --out")
        self._created = "folder" if not self.path.exists() else "" if (self.path / LOCK).exists() else "lock"
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        if self.kind == "train" and not resume and self.has_checkpoint():
            self.release()
            raise RunDirError(f"{self.path} already holds a run; pass --resume to continue it or choose another --out")
        return self

    def _take_lock(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # a planted link is never written through
        try:
            fd = os.open(self.path / LOCK, flags, 0o666)
        except OSError as err:
            raise RunDirError(f"cannot lock {self.path / LOCK}: {err.strerror} (a link, or a folder you cannot "
                              "write)") from None
        handle = os.fdopen(fd, "r+", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = _holder(handle.read())
                handle.close()
                raise RunDirError(f"{self.path} is in use by another vggnet process ({holder}): wait for it to end, "
                                  "or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"kind": self.kind, "pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        handle.flush()
        self._lock = handle

    def release(self) -> None:
        """Let other processes in. The lock file and what it records stay, unless the folder was
        made by this claim and nothing else was written (work that stopped on bad input leaves
        no trace)."""
        if self._lock is None:
            return
        if self._created and {p.name for p in self.path.iterdir()} == {LOCK}:
            (self.path / LOCK).unlink()
            if self._created == "folder":
                self.path.rmdir()
        self._lock.close()  # closing drops the flock
        self._lock = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def read_run(self) -> dict:
        """run.json, checked field by field (a hand-edited file is an error that names the field)."""
        try:
            run = json.loads(self.run_json.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"cannot resume from {self.path}: no readable run.json ({one_line(err)})") from None
        if not isinstance(run, dict):
            raise CheckpointError(f"{self.run_json} is damaged (not a JSON object)")
        for key, kind in RUN_FIELDS.items():
            if not isinstance(run.get(key), kind) or (kind is int and isinstance(run.get(key), bool)):
                raise CheckpointError(f"{self.run_json} is damaged: {key!r} must be {TYPE_WORDS[kind]}, got "
                                      f"{run.get(key)!r:.40}; restore the file or start a new run")
        if not isinstance(run.get("data_path", ""), str) or not isinstance(run.get("strict", False), bool):
            raise CheckpointError(f"{self.run_json} is damaged: 'data_path' must be a path and 'strict' a bool")
        return run


def _holder(text: str) -> str:
    """Who holds a lock, in words, from what the holder wrote into the lock file."""
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, since {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"
