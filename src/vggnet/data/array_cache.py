"""The decoded-image cache: small-image datasets decoded once, kept as safetensors files.

It is an optimisation, never a reason to stop: a damaged entry is reported in one line, removed
and decoded again; a cache that cannot be written (disk full, read-only ``$VGGNET_HOME``) is
reported and training goes on without it. Entries live in ``cache_dir("folders")``, one
``<key>.safetensors`` each; reading an entry touches its mtime, and after each write the least
recently used entries are evicted to keep the folder under ``$VGGNET_CACHE_MAX_GB`` GiB.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vggnet.atomic import atomic_path
from vggnet.cache import cache_dir
from vggnet.data.arrays import ImageArrays
from vggnet.errors import DataError, one_line

log = logging.getLogger("vggnet")

SUFFIX = ".safetensors"
MAX_GB_ENV = "VGGNET_CACHE_MAX_GB"
DEFAULT_MAX_GB = 20.0
STALE_TMP_S = 600
"""A temporary file (``.<entry>.<random>.tmp``) untouched this long is left from a write that died."""

_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TMP_GLOB = f".*{SUFFIX}.*.tmp"


class _Damaged(Exception):
    """An entry that exists but cannot be used; the message says why."""


@dataclass(frozen=True)
class CacheEntry:
    """One cache file as its header describes it; ``damaged`` says why where it cannot be read."""

    path: Path
    size: int  # bytes
    mtime: float  # last written or read (seconds since the epoch)
    images: int | None = None
    side: int | None = None
    classes: int | None = None
    damaged: str | None = None


def cache_folder() -> Path:
    """Where the entries are (it may not exist yet)."""
    return cache_dir("folders")


def entry_path(key: str) -> Path:
    if not _KEY.fullmatch(key):
        raise ValueError(f"cache key must be letters, digits, '-' or '_', got {key!r}")
    return cache_folder() / f"{key}{SUFFIX}"


def max_bytes() -> int:
    """The size bound from ``$VGGNET_CACHE_MAX_GB`` (GiB, default 20); a bad value is a one-line DataError."""
    raw = os.environ.get(MAX_GB_ENV, "").strip()
    if not raw:
        return int(DEFAULT_MAX_GB * 2**30)
    try:
        gb = float(raw)
    except ValueError:
        gb = math.nan
    if not math.isfinite(gb) or gb < 0:
        raise DataError(f"{MAX_GB_ENV} must be a number of GiB >= 0 (e.g. 20 or 0.5), got {raw!r}")
    return int(gb * 2**30)


def _json(meta: dict[str, str], name: str) -> object:
    if name not in meta:
        raise _Damaged(f"no {name} in its metadata")
    try:
        return json.loads(meta[name])
    except ValueError as err:
        raise _Damaged(f"{name} is not JSON: {err}") from None


def _header(f) -> tuple[list[int], dict[str, str]]:
    """The images' shape and the metadata, from the header alone (no tensor is read)."""
    meta = f.metadata() or {}
    missing = {"images", "labels"} - set(f.keys())
    if missing:
        raise _Damaged(f"no {' or '.join(sorted(missing))} tensor")
    shape = list(f.get_slice("images").get_shape())
    if len(shape) != 4 or shape[1] != 3:
        raise _Damaged(f"images have shape {tuple(shape)}, not (N, 3, H, W)")
    return shape, meta


def _classes(meta: dict[str, str]) -> list[str]:
    classes = _json(meta, "classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise _Damaged("classes is not a list of names")
    return classes


def _digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A checksum of the pixels and labels: a file that still parses can hold flipped bytes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(images.contiguous().numpy().data)
    h.update(labels.to(torch.int64).contiguous().numpy().data)
    return h.hexdigest()


def _read(path: Path) -> ImageArrays:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        shape, meta = _header(f)
        images = f.get_tensor("images")
        labels = f.get_tensor("labels")
    if images.dtype != torch.uint8:
        raise _Damaged(f"images are {images.dtype}, not uint8")
    if labels.dtype != torch.int64 or labels.dim() != 1:
        raise _Damaged(f"labels are {labels.dtype} of shape {tuple(labels.shape)}, not (N,) int64")
    n = shape[0]
    if len(labels) != n:
        raise _Damaged(f"{n} images but {len(labels)} labels")
    classes = _classes(meta)
    skipped = _json(meta, "skipped")
    if not isinstance(skipped, dict) or not all(isinstance(v, str) for v in skipped.values()):
        raise _Damaged("skipped is not a map of file to reason")
    names = _json(meta, "names") if "names" in meta else None
    if names is not None and (not isinstance(names, list) or not all(isinstance(v, str) for v in names)):
        raise _Damaged("names is not a list of file names")
    if names is not None and len(names) != n:
        raise _Damaged(f"{n} images but {len(names)} names")
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        raise _Damaged(f"{int(bad.sum())} labels out of range [0, {len(classes)}), e.g. {int(labels[bad][0])}")
    if meta.get("checksum") != _digest(images, labels):
        raise _Damaged("its pixels or labels do not match their checksum")
    return ImageArrays(images, labels, classes, skipped, names=names)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def read_cached(key: str) -> ImageArrays | None:
    """The entry for ``key``, or None when there is none or it is damaged (then it is removed, with
    one warning, so the caller decodes again and the next run does not meet it)."""
    path = entry_path(key)
    if not path.is_file():
        return None
    try:
        arrays = _read(path)
    except FileNotFoundError:  # evicted by another run since the check above
        return None
    except Exception as err:  # SafetensorError, OSError, _Damaged, DataError: all mean the same here
        log.warning("decoded-image cache entry %s is damaged (%s); decoding again", path, one_line(err))
        _remove(path)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # least recently used goes first when the cache is over its bound
    return arrays


def _strerror(err: Exception) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    found = re.search(r"os error (\d+)", str(err))  # safetensors reports I/O errors in its own type
    return os.strerror(int(found.group(1))) if found else one_line(err)


def write_cached(key: str, arrays: ImageArrays) -> None:
    """Store ``arrays`` under ``key`` atomically, then evict to the size bound. A cache that cannot
    be written costs one warning: no exception, no partial file."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    limit = max_bytes()  # a bad setting is the user's to fix: say so before the work
    path = entry_path(key)
    metadata = {"classes": json.dumps(arrays.classes), "skipped": json.dumps(arrays.skipped),
                "checksum": _digest(arrays.images, arrays.labels)}
    if arrays.names is not None:  # ensure_ascii (the default) keeps surrogate-escaped names as \udcXX
        metadata["names"] = json.dumps(arrays.names)
    tensors = {"images": arrays.images.contiguous(), "labels": arrays.labels.to(torch.int64).contiguous()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
    except (OSError, SafetensorError) as err:
        log.warning("cannot write the decoded-image cache in %s (%s); going on without it",
                    path.parent, _strerror(err))
        return
    evict(limit, keep=path)


def _files(pattern: str) -> list[tuple[Path, os.stat_result]]:
    folder = cache_folder()
    if not folder.is_dir():
        return []
    found = []
    for p in folder.glob(pattern):
        try:
            st = p.lstat()
        except OSError:  # removed meanwhile by another run
            continue
        if p.is_file() and not p.is_symlink():
            found.append((p, st))
    return found


def _stale_tmps() -> list[tuple[Path, os.stat_result]]:
    now = time.time()
    return [(p, st) for p, st in _files(_TMP_GLOB) if now - st.st_mtime > STALE_TMP_S]


def evict(limit: int, keep: Path | None = None) -> list[Path]:
    """Remove least recently used entries (never ``keep``) until the entries total at most ``limit``
    bytes, and temporary files left by writes that died. Returns the entries removed."""
    for p, _ in _stale_tmps():
        _remove(p)
    entries = sorted(_files(f"*{SUFFIX}"), key=lambda e: (e[1].st_mtime, e[0].name))
    total = sum(st.st_size for _, st in entries)
    removed = []
    for p, st in entries:
        if total <= limit:
            break
        if p == keep:
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        total -= st.st_size
        removed.append(p)
    if removed:
        log.info("removed %d least recently used decoded-image cache entries to stay under %.3g GiB",
                 len(removed), limit / 2**30)
    return removed


def cache_entries() -> list[CacheEntry]:
    """Every entry, most recently used first, described from its header (cheap: no image is read)."""
    from safetensors import safe_open

    result = []
    for p, st in _files(f"*{SUFFIX}"):
        try:
            with safe_open(str(p), "pt") as f:
                shape, meta = _header(f)
            classes = _classes(meta)
        except Exception as err:
            result.append(CacheEntry(p, st.st_size, st.st_mtime, damaged=one_line(err)))
            continue
        result.append(CacheEntry(p, st.st_size, st.st_mtime, shape[0], shape[-1], len(classes)))
    return sorted(result, key=lambda e: (-e.mtime, e.path.name))


def clear_cache() -> tuple[int, int]:
    """Remove every entry and every stale temporary file; nothing else under ``$VGGNET_HOME``
    (downloads live beside this folder). Returns (entries removed, bytes freed)."""
    entries, freed = 0, 0
    for p, st in _files(f"*{SUFFIX}"):
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        entries += 1
        freed += st.st_size
    for p, st in _stale_tmps():
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        freed += st.st_size
    return entries, freed
