"""The folder-index cache: a dataset folder is listed once, then re-checked by its folders alone.

Listing ImageNet (1.28M files, 1,000 folders) and applying the layout rule takes seconds; checking
that nothing changed takes a stat of each folder. Adding, removing or renaming a file changes its
folder's mtime and ctime (so does a link or FIFO put in a file's place); a file whose *content*
decides the index (a ground-truth file, an image with no extension) is checked by its own size,
mtime and inode. Anything different, and the folder is listed again.

Like the decoded-image cache it is an optimisation, never a reason to stop: a damaged entry is
listed again with one warning, and one that cannot be written costs one warning. An index is not
written while any of its folders changed in the last few seconds: a file system with coarse
timestamps could otherwise hide a change made in the same tick as the listing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from vggnet import __version__
from vggnet.atomic import atomic_path
from vggnet.cache import cache_dir
from vggnet.data.decode import IMAGE_EXTENSIONS
from vggnet.data.folder_index import FolderIndex, FolderScan
from vggnet.data.name_table import NameTable
from vggnet.data.sources import DirectorySource
from vggnet.errors import one_line

log = logging.getLogger("vggnet")

SCAN_VERSION = 1
"""Bumped when the layout rule changes what an index holds: older entries are then listed again."""
RACY_S = 3.0
"""An index whose folders changed this recently is not written (coarse file system timestamps)."""
SUFFIX = ".safetensors"
MAX_METADATA = 64 << 20
"""An index whose lists of ignored files and folders exceed this is not kept."""

Stamp = list[int | str]  # [name, dev, inode, mtime_ns, ctime_ns] or [name, size, inode, mtime_ns, ctime_ns]


def index_folder() -> Path:
    return cache_dir("indexes")


def _key(root: Path) -> str:
    text = f"{root.resolve()}|{SCAN_VERSION}|{__version__}|{sorted(IMAGE_EXTENSIONS)}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def stamp(root: Path, name: str, folder: bool) -> Stamp:
    """What must not change: a folder's device and inode, a file's size and inode, and both's times."""
    st = os.stat(root / name)
    return [name, st.st_dev if folder else st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def _unchanged(root: Path, stamps: list[Stamp], folder: bool) -> bool:
    try:
        return all(stamp(root, str(s[0]), folder) == s for s in stamps)
    except (OSError, TypeError, IndexError):
        return False


def read_index(source: DirectorySource) -> FolderScan | None:
    """The cached index of ``source`` when none of its folders (or content files) changed."""
    from safetensors import safe_open

    path = index_folder() / f"{_key(source.path)}{SUFFIX}"
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "np") as f:
            meta = f.metadata() or {}
            if meta.get("root") != str(source.path.resolve()):
                return None
            folders, files = json.loads(meta["folders"]), json.loads(meta["files"])
            if not (_unchanged(source.path, folders, True) and _unchanged(source.path, files, False)):
                return None
            classes = json.loads(meta["classes"])
            splits = {}
            for split in json.loads(meta["splits"]):
                table = NameTable(f.get_tensor(f"{split}.blob"), f.get_tensor(f"{split}.offsets"))
                labels = f.get_tensor(f"{split}.labels")
                if labels.dtype != np.int64 or len(labels) != len(table) or \
                        (len(labels) and (labels.min() < 0 or labels.max() >= len(classes))):
                    raise ValueError(f"split {split!r}: labels do not fit its names and classes")
                splits[split] = FolderIndex(source, table, np.arange(len(table)), labels, classes)
            ignored = json.loads(meta["ignored"])
    except Exception as err:  # SafetensorError, OSError, KeyError, ValueError: all mean the same here
        log.warning("folder index cache entry %s is damaged (%s); listing the folder again", path, one_line(err))
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return FolderScan(source, splits, ignored)


def write_index(scan: FolderScan, folder_stamps: list[Stamp], content_files: list[str], started: float) -> None:
    """Keep ``scan`` (of a directory) for the next run, unless one of its folders just changed.
    ``folder_stamps`` were taken just before each folder was listed, so a change made while it was
    listed, even one whose modification time was then set back (``tar -x``, ``rsync -a``), changes
    its change time and shows at the next check."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    root = scan.source.path
    try:
        file_stamps = [stamp(root, name, False) for name in content_files]
    except OSError:  # changed while being listed: list it again next time
        return
    recent = (started - RACY_S) * 1e9
    # a content file is stamped after it was read: a recent change time (which cannot be set back)
    # may be a change made since, so it is not trusted; folders were stamped before their listing
    if any(s[3] >= recent for s in folder_stamps) or any(max(s[3], s[4]) >= recent for s in file_stamps):
        log.debug("not caching the index of %s: a folder changed in the last %g s", root, RACY_S)
        return
    first = next(iter(scan.splits.values()))
    tensors = {}
    for name, split in scan.splits.items():
        tensors |= {f"{name}.blob": split.table.blob, f"{name}.offsets": split.table.offsets,
                    f"{name}.labels": np.ascontiguousarray(split.label_array, dtype=np.int64)}
    metadata = {"root": str(root.resolve()), "splits": json.dumps(list(scan.splits)),
                "classes": json.dumps(first.classes), "ignored": json.dumps(scan.ignored),
                "folders": json.dumps(folder_stamps), "files": json.dumps(file_stamps)}
    if sum(map(len, metadata.values())) > MAX_METADATA:  # safetensors' header bound: 100 MB
        return
    path = index_folder() / f"{_key(root)}{SUFFIX}"
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
    except (OSError, SafetensorError) as err:
        log.warning("cannot write the folder index cache in %s (%s); going on without it", path.parent, one_line(err))


def clear_indexes() -> tuple[int, int]:
    """Remove every cached index. Returns (entries removed, bytes freed)."""
    removed, freed = 0, 0
    folder = index_folder()
    for p in folder.glob(f"*{SUFFIX}") if folder.is_dir() else []:
        with contextlib.suppress(OSError):
            size = p.lstat().st_size
            p.unlink()
            removed, freed = removed + 1, freed + size
    return removed, freed
