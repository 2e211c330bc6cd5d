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
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vggnet.errors import CheckpointError, VggnetError, one_line
from vggnet.runs.checkpoint import LATEST, epoch_dirs, latest_dir

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
    _made: list[Path] = field(default_factory=list, repr=False)  # folders the claim created, deepest first
    _lock_made: bool = field(default=False, repr=False)

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
        """Whether a checkpoint was written: LATEST, or an epoch folder renamed into place just
        before a kill stopped LATEST from naming it."""
        return (self.checkpoints / LATEST).exists() or bool(epoch_dirs(self.checkpoints))

    def claim(self, resume: bool = False, identity: dict | None = None) -> RunDir:
        """Make the folder this run's (see the module's docstring) and lock it; returns self.
        ``identity``: what the work is (a study's name, budget, data, seed); a folder that holds
        other work is refused."""
        option = "--resume" if resume else "--out"
        self._check_place(option)
        found = owner(self.path)
        if found is None:
            raise RunDirError(f"{self.path} is not empty and holds no vggnet {self.kind} output: vggnet will not write "
                              f"among your files; choose a new or empty {option}" if not resume else
                              f"{self.path} holds no vggnet training run to resume")
        if found not in ("", self.kind):
            raise RunDirError(f"{self.path} holds {WORDS[found]}, not {WORDS[self.kind]}: choose another {option}")
        self._made = [p for p in (self.path, *self.path.parents) if not p.exists() and not p.is_symlink()]
        self._lock_made = not (self.path / LOCK).exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock(identity)
        if self.kind == "train" and not resume and self.has_checkpoint():
            self.release()
            raise RunDirError(f"{self.path} already holds a run; pass --resume to continue it or choose another --out")
        return self

    def _check_place(self, option: str) -> None:
        """Refuse a path that is not a folder, and a folder inside another vggnet folder (whose
        pruning could remove it); a training run directly in a study is one of its arms."""
        if self.path.is_symlink() and not self.path.exists():
            raise RunDirError(f"{self.path} is a broken symbolic link: choose another {option}")
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path} is a file, not a folder: choose another {option}")
        for parent in self.path.resolve().parents:
            kind = _marked(parent)
            arm = kind == "study" and self.kind == "train" and parent == self.path.resolve().parent
            if kind is not None and not arm:
                raise RunDirError(f"{self.path} is inside {WORDS[kind]} ({parent}), whose own files it could replace "
                                  f"or be removed with: choose a {option} outside it")

    def _take_lock(self, identity: dict | None) -> None:
        path = self.path / LOCK
        flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)  # a planted link: refused
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as err:
            raise RunDirError(f"cannot lock {path}: {err.strerror}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:  # a FIFO, or a hard link to someone's file
            os.close(fd)
            raise RunDirError(f"{path} is not vggnet's lock file (not a regular file, or linked elsewhere): remove it "
                              "or choose another folder")
        handle = os.fdopen(fd, "r+", encoding="utf-8", errors="replace")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _holder(handle.read(4096))
                handle.close()
                raise RunDirError(f"{self.path} is in use by another vggnet process ({holder}): wait for it to end, "
                                  "or choose another folder") from None
        before = _parse(handle.read(4096))  # under the lock: what the last holder recorded
        problem = _mismatch(before, self.kind, identity)
        if problem:
            handle.close()
            raise RunDirError(f"{self.path} holds {problem}: choose another folder")
        handle.seek(0)
        handle.truncate()
        record = {"kind": self.kind, "pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        if identity is not None or before.get("identity") is not None:
            record["identity"] = identity if identity is not None else before["identity"]
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        self._lock = handle

    def release(self) -> None:
        """Let other processes in. The lock file and what it records stay, unless this claim made
        it and nothing else was written: then it goes, with every folder the claim made (work that
        stopped on bad input leaves no trace)."""
        if self._lock is None:
            return
        try:
            if self._lock_made and {p.name for p in self.path.iterdir()} == {LOCK}:
                (self.path / LOCK).unlink()
                for made in self._made:  # deepest first; a folder someone else wrote into stays
                    made.rmdir()
        except OSError:  # another process got in between: its files stay, and so does the folder
            pass
        finally:
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


def _parse(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _mismatch(before: dict, kind: str, identity: dict | None) -> str | None:
    """What the folder holds, in words, when it is not this work (None when it is, or is new)."""
    if before.get("kind") not in (None, kind) and before.get("kind") in KINDS:
        return WORDS[before["kind"]]
    then = before.get("identity")
    if identity is not None and then is not None and then != identity:
        differ = [k for k in identity if then.get(k) != identity[k]]
        there = ", ".join(f"{k} {then.get(k)!s:.60}" for k in differ)
        return f"other work ({there}; this is {', '.join(f'{k} {identity[k]!s:.60}' for k in differ)})"
    return None


def _marked(folder: Path) -> str | None:
    """The kind of vggnet folder ``folder`` is, by its marks alone (cheap: no listing)."""
    lock = folder / LOCK
    if lock.is_file() and not lock.is_symlink():
        try:
            with open(lock, "rb") as f:
                kind = _parse(f.read(4096).decode("utf-8", "replace")).get("kind")
        except OSError:
            kind = None
        if kind in KINDS:
            return kind
    run = _json(folder / "run.json") if (folder / "run.json").is_file() else None
    return "train" if run is not None and {"model", "recipe"} <= run.keys() else None


def _holder(text: str) -> str:
    """Who holds a lock, in words, from what the holder wrote into the lock file."""
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, since {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"
