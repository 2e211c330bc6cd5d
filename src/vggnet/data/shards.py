"""Prepared datasets: resized JPEGs in tar shards (the WebDataset layout), streamed for training.

``vggnet prepare`` (:mod:`vggnet.data.prepare`) writes, in OUT::

    vggnet-shards.json      what was prepared: classes, short side, quality, each split's shards
    <split>-index.json      every image's original name, label and member key, in shard order
    <split>-000000.tar ...  members 00000000.jpg, 00000000.cls (the label as text), ... in order

Any WebDataset reader takes the tars as they are (key, ``.jpg``, ``.cls``). vggnet reads them as
streams: each epoch the shards are put in a seeded order, and each (rank, DataLoader worker) pair
reads one contiguous slice of that sequence, shard after shard, through a shuffle buffer. Every
slice has the same length, so every rank yields the same number of batches (DDP's all-reduce
needs that); the few images past the last whole slice wait for the next epoch's order.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vggnet.data.name_table import NameTable
from vggnet.errors import DataError
from vggnet.files import max_file_bytes
from vggnet.terminal import printable_text as printable

MANIFEST = "vggnet-shards.json"
STATE = ".vggnet-prepare.json"  # a pass under way (or interrupted): what it has written so far
LOCK = ".vggnet-prepare.lock"  # held (flock) by the pass writing the folder
FORMAT = "vggnet-shards"
VERSION = 1
SPLITS = ("train", "val", "test", "all")


def shard_name(split: str, k: int) -> str:
    return f"{split}-{k:06d}.tar"


@dataclass(frozen=True)
class Shard:
    file: str
    first: int  # the position of its first image in the split
    images: int
    bytes: int
    sha256: str


@dataclass
class ShardSplit:
    """One prepared split: its shards, and each image's name and label in shard order; ``rows``
    are the images in use (ascending positions: all of them, or a subset such as a held-out part)."""

    root: Path
    shards: list[Shard]
    table: NameTable
    label_array: np.ndarray
    classes: list[str]
    rows: np.ndarray
    short_side: int
    keys: np.ndarray  # each image's member key in its shard (``<key>.jpg``, ``<key>.cls``)

    def __len__(self) -> int:
        return len(self.rows)

    def name(self, i: int) -> str:
        return self.table[int(self.rows[i])]

    def label(self, i: int) -> int:
        return int(self.label_array[self.rows[i]])

    def names(self) -> list[str]:
        return [self.table[int(r)] for r in self.rows]

    @property
    def labels(self) -> torch.Tensor:
        return torch.from_numpy(self.label_array[self.rows])

    def subset(self, index: list[int] | np.ndarray) -> ShardSplit:
        rows = np.sort(self.rows[np.asarray(index, dtype=np.int64)])  # streams read positions in order
        return ShardSplit(self.root, self.shards, self.table, self.label_array, self.classes, rows, self.short_side,
                          self.keys)

    def where(self, position: int) -> str:
        """An image as a user would look for it: its shard member and its original name."""
        shard = self.shards[int(np.searchsorted([s.first for s in self.shards], position, side="right")) - 1]
        return printable(f"{self.root / shard.file} image {position - shard.first} ({self.table[position]})")

    def kept_per_shard(self) -> np.ndarray:
        starts = np.array([s.first for s in self.shards] + [len(self.table)])
        return np.diff(np.searchsorted(self.rows, starts))

    def rows_in(self, shard: Shard) -> np.ndarray:
        """The positions in use that ``shard`` holds (``rows`` is sorted: two binary searches)."""
        lo, hi = np.searchsorted(self.rows, [shard.first, shard.first + shard.images])
        return self.rows[lo:hi]

    def read(self, shard: Shard, wanted: np.ndarray) -> Iterator[tuple[bytes, int]]:
        """The JPEG bytes of the images at ``wanted`` positions (ascending) in ``shard``, in order.
        The k-th ``.jpg`` member of a shard is the image at position ``shard.first + k``."""
        path = self.root / shard.file
        try:
            yield from self._members(path, shard, (wanted - shard.first).tolist())
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"cannot read shard {path} ({err}): it is damaged; delete it and run vggnet prepare "
                            "again (it resumes)") from None

    def _members(self, path: Path, shard: Shard, offsets: list[int]) -> Iterator[tuple[bytes, int]]:
        """Walk the shard's members: the k-th ``.jpg`` is image ``shard.first + k``; each one read
        must carry its recorded key and be followed by its ``.cls`` holding its recorded label (a
        shard copied over another, or members added, stop here rather than mislabel)."""
        want = iter(offsets)
        nxt = next(want, None)
        bound = max_file_bytes()
        k = -1
        with tarfile.open(path, "r:") as tar:
            while nxt is not None and (member := tar.next()) is not None:
                if not member.name.endswith(".jpg"):
                    continue
                k += 1
                if k != nxt:
                    continue
                position = shard.first + k
                key = f"{int(self.keys[position]):08d}"
                label = tar.next()
                if member.name != f"{key}.jpg" or label is None or label.name != f"{key}.cls" \
                        or not member.isreg() or not label.isreg() or member.size > bound or label.size > 32:
                    raise DataError(f"{path}: image {k} is not {key}.jpg with its {key}.cls: the shard is not the "
                                    "one its manifest records; delete it and run vggnet prepare again")
                data = tar.extractfile(member).read(member.size)  # type: ignore[union-attr]
                if tar.extractfile(label).read(32).strip() != str(int(self.label_array[position])).encode():  # type: ignore[union-attr]
                    raise DataError(f"{path}: {key}.cls disagrees with the index's label for {key}.jpg; delete the "
                                    "shard and run vggnet prepare again")
                yield data, position
                nxt = next(want, None)
        if nxt is not None:
            raise DataError(f"{path} holds {k + 1} images, its manifest entry {shard.images}: the shard is damaged; "
                            "delete it and run vggnet prepare again (it resumes)")

    def images(self) -> Iterator[tuple[bytes, int]]:
        """Every image in use, in shard order: (bytes, position)."""
        for shard in self.shards:
            if len(mine := self.rows_in(shard)):
                yield from self.read(shard, mine)

    def sample(self, n: int) -> list[tuple[bytes, int]]:
        """Up to ``n`` images spread over the shards (the first few of evenly spaced ones: train
        shards hold a seeded shuffle, so these are a fair sample): (bytes, label)."""
        kept = self.kept_per_shard()
        chosen = [k for k in np.linspace(0, len(self.shards) - 1, min(len(self.shards), n)).round().astype(int)
                  if kept[k]]
        chosen = sorted(set(chosen))
        per = -(-n // max(1, len(chosen)))
        out = []
        for k in chosen:
            shard = self.shards[k]
            out += [(data, int(self.label_array[pos])) for data, pos in self.read(shard, self.rows_in(shard)[:per])]
        return out[:n]


def is_prepared(path: Path) -> bool:
    """A folder vggnet prepare wrote, or began to write."""
    return (path / MANIFEST).is_file() or (path / STATE).is_file()


def being_written(path: Path) -> bool:
    """A vggnet prepare pass holds the folder right now (where the system has flock)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(path / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
