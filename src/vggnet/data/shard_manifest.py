"""Reading a prepared folder's manifest and indexes as untrusted input: every field checked for
type and range, files read only where ``vggnet prepare`` puts them (no link followed), reads
bounded by what the manifest says the folder holds."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import numpy as np

from vggnet.data.name_table import NameTable
from vggnet.data.shards import FORMAT, MANIFEST, SPLITS, STATE, VERSION, Shard, ShardSplit, being_written, shard_name
from vggnet.errors import DataError
from vggnet.terminal import printable_text as printable

MAX_MANIFEST = 64 << 20  # its shard list and the names of images left out
INDEX_BYTES_PER_IMAGE = 512  # a name, a label and a key as JSON: ImageNet's take about 60
AGAIN = "run vggnet prepare again"


def read_own(path: Path, limit: int) -> bytes:
    """A file vggnet prepare wrote in the folder: a regular file, not a link, at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError(f"{printable(str(path))} is a symbolic link: vggnet reads only the files prepare "
                            "wrote there") from None
        raise DataError(f"cannot read {printable(str(path))}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{printable(str(path))} is not a regular file")
        if st.st_size > limit:
            raise DataError(f"{printable(str(path))} is {st.st_size:,} bytes, more than the {limit:,} its folder "
                            f"allows; {AGAIN}")
        return f.read(limit)


def _json(path: Path, limit: int) -> object:
    try:
        return json.loads(read_own(path, limit))
    except ValueError as err:
        raise DataError(f"{printable(str(path))} is not valid JSON ({err}); {AGAIN}") from None


def _count(value: object) -> bool:
    return type(value) is int and value >= 0  # not a bool, a float or a string


def _int_list(values: object, below: int | None = None) -> np.ndarray | None:
    """A list of non-negative ints (each ``< below``) as int64, or None."""
    if not isinstance(values, list) or not all(_count(v) and v < 2**62 for v in values):
        return None
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    return None if below is not None and len(array) and array.max() >= below else array


def read_manifest(root: Path) -> dict:
    """The manifest, its fields checked (not yet its shards)."""
    where = printable(str(root / MANIFEST))
    manifest = _json(root / MANIFEST, MAX_MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{where} is not a vggnet prepare manifest")
    if manifest.get("version") != VERSION:
        raise DataError(f"{where} is format version {printable(str(manifest.get('version')))}; this vggnet reads "
                        f"{VERSION}")
    classes = manifest.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes) \
            or len(set(classes)) != len(classes):
        raise DataError(f"{where} has no list of distinct class names")
    skipped = manifest.get("skipped")
    if not isinstance(skipped, dict) or not all(isinstance(v, str) for v in skipped.values()):
        raise DataError(f"{where}: 'skipped' is not a map of file to reason")
    if not _count(manifest.get("short_side")) or not isinstance(manifest.get("splits"), dict) \
            or not manifest["splits"] or any(s not in SPLITS for s in manifest["splits"]):
        raise DataError(f"{where} is malformed (short_side, or its splits); {AGAIN}")
    return manifest


def _shards(root: Path, split: str, entry: object) -> list[Shard]:
    """A split's shard list: shard k is named ``<split>-<k>.tar``, a regular file (no link) of the
    size recorded; counts are non-negative ints."""
    entries = entry.get("shards") if isinstance(entry, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{printable(str(root / MANIFEST))}: split {split!r} has no shard list")
    shards, first = [], 0
    for k, e in enumerate(entries):
        ok = isinstance(e, dict) and e.get("file") == shard_name(split, k) and _count(e.get("images")) \
            and _count(e.get("bytes")) and isinstance(e.get("sha256"), str)
        if not ok:
            raise DataError(f"{printable(str(root / MANIFEST))}: shard {k} of {split!r} is not "
                            f"{shard_name(split, k)} with its image count, size and checksum; {AGAIN}")
        path = root / e["file"]
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise DataError(f"{path} is missing: {AGAIN} (it writes only what is missing)") from None
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path} is not a regular file (a link?): {AGAIN}")
        if st.st_size != e["bytes"]:
            raise DataError(f"{path} is {st.st_size} bytes, the manifest says {e['bytes']}: it was cut or changed; "
                            f"{AGAIN}")
        shards.append(Shard(e["file"], first, e["images"], e["bytes"], e["sha256"]))
        first += e["images"]
    return shards


def _split(root: Path, split: str, entry: object, classes: list[str], short_side: int) -> ShardSplit:
    shards = _shards(root, split, entry)
    total = shards[-1].first + shards[-1].images
    path = root / f"{split}-index.json"
    index = _json(path, (1 << 20) + INDEX_BYTES_PER_IMAGE * total)
    names = index.get("names") if isinstance(index, dict) else None
    labels = _int_list(index.get("labels"), below=len(classes)) if isinstance(index, dict) else None
    keys = _int_list(index.get("keys")) if isinstance(index, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) and "\0" not in n for n in names) \
            or len(set(names)) != len(names):
        raise DataError(f"{printable(str(path))}: 'names' is not a list of distinct file names; {AGAIN}")
    if labels is None or keys is None or not len(names) == len(labels) == len(keys) == total:
        raise DataError(f"{printable(str(path))}: labels (each one of the {len(classes)} classes) and keys for the "
                        f"{total} images of the shards are wanted; {AGAIN}")
    return ShardSplit(root, shards, NameTable.of(names), labels, classes, np.arange(total, dtype=np.int64),
                      short_side, keys)


def load_prepared(root: Path, strict: bool = False) -> tuple[dict[str, ShardSplit], dict]:
    """A prepared folder's splits, and its manifest. ``strict``: images left out because they
    could not be decoded stop it, as they stop a folder."""
    if being_written(root):
        raise DataError(f"{root} is being prepared right now (vggnet prepare is running): wait for it to finish")
    if (root / STATE).is_file() or (root / STATE).is_symlink():
        raise DataError(f"{root} is only partly prepared: run the same vggnet prepare command again to finish it")
    manifest = read_manifest(root)
    if manifest.get("complete") is not True:
        raise DataError(f"{root} is only partly prepared: run the same vggnet prepare command again to finish it")
    if strict and manifest["skipped"]:
        name, why = next(iter(manifest["skipped"].items()))
        raise DataError(f"cannot decode {printable(name)} ({why}): it was left out when {root} was prepared; "
                        "without --strict it is skipped")
    splits = {split: _split(root, split, entry, manifest["classes"], manifest["short_side"])
              for split, entry in manifest["splits"].items()}
    return splits, manifest


def prepared_source(path: str | os.PathLike[str]) -> str | None:
    """The dataset a prepared folder was made from (its absolute path), or None: not a prepared
    folder, or one whose manifest cannot be read."""
    root = Path(path).expanduser()
    try:
        source = read_manifest(root).get("source") if (root / MANIFEST).is_file() else None
    except DataError:
        return None
    return source if isinstance(source, str) else None
