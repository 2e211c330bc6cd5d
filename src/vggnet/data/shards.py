"""Prepared datasets: resized JPEGs in tar shards (the WebDataset layout), streamed for training.

``vggnet prepare`` (:mod:`vggnet.data.prepare`) writes, in OUT::

    vggnet-shards.json      what was prepared: classes, short side, quality, each split's shards
    <split>-index.json      every image's original name and label, in shard order
    <split>-000000.tar ...  members 00000000.jpg, 00000000.cls (the label as text), ... in order

Any WebDataset reader takes the tars as they are (key, ``.jpg``, ``.cls``). vggnet reads them as
streams: each epoch the shards are put in a seeded order, and each (rank, DataLoader worker) pair
reads one contiguous slice of that sequence, shard after shard, through a shuffle buffer. Every
slice has the same length, so every rank yields the same number of batches (DDP's all-reduce
needs that); the few images past the last whole slice wait for the next epoch's order.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vggnet.data.name_table import NameTable
from vggnet.errors import DataError
from vggnet.files import max_file_bytes, read_regular
from vggnet.terminal import printable_text as printable

MANIFEST = "vggnet-shards.json"
STATE = ".vggnet-prepare.json"  # a pass under way (or interrupted): what it has written so far
FORMAT = "vggnet-shards"
VERSION = 1
SPLITS = ("train", "val", "test", "all")
SHARD_FILE = re.compile(r"(train|val|test|all)-\d{6}\.tar")
MAX_MANIFEST = 64 << 20  # its shard list and the names of images left out
MAX_INDEX = 1 << 30  # 1.28M names and labels take about 60 MB


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
        return ShardSplit(self.root, self.shards, self.table, self.label_array, self.classes, rows, self.short_side)

    def where(self, position: int) -> str:
        """An image as a user would look for it: its shard member and its original name."""
        shard = self.shards[int(np.searchsorted([s.first for s in self.shards], position, side="right")) - 1]
        return printable(f"{self.root / shard.file} image {position - shard.first} ({self.table[position]})")

    def kept_per_shard(self) -> np.ndarray:
        starts = np.array([s.first for s in self.shards] + [len(self.table)])
        return np.diff(np.searchsorted(self.rows, starts))

    def read(self, shard: Shard, wanted: np.ndarray) -> Iterator[tuple[bytes, int]]:
        """The JPEG bytes of the images at ``wanted`` positions (ascending) in ``shard``, in order.
        The k-th ``.jpg`` member of a shard is the image at position ``shard.first + k``."""
        path = self.root / shard.file
        want = iter((wanted - shard.first).tolist())
        nxt = next(want, None)
        bound = max_file_bytes()
        try:
            yield from self._members(path, shard, want, nxt, bound)
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"cannot read shard {path} ({err}): it is damaged; delete it and run vggnet prepare "
                            "again (it resumes)") from None

    def _members(self, path: Path, shard: Shard, want: Iterator[int], nxt: int | None,
                 bound: int) -> Iterator[tuple[bytes, int]]:
        k = -1
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if nxt is None:
                    return
                if not member.name.endswith(".jpg"):
                    continue
                k += 1
                if k != nxt:
                    continue
                if not member.isreg() or member.size > bound:
                    raise DataError(f"{path}:{printable(member.name)} is not a regular member within {bound} bytes")
                f = tar.extractfile(member)
                yield (f.read(member.size) if f is not None else b""), shard.first + k
                nxt = next(want, None)
        if nxt is not None:
            raise DataError(f"{path} holds {k + 1} images, its manifest entry {shard.images}: the shard is damaged; "
                            "delete it and run vggnet prepare again (it resumes)")

    def images(self) -> Iterator[tuple[bytes, int]]:
        """Every image in use, in shard order: (bytes, position)."""
        for shard in self.shards:
            mine = self.rows[(self.rows >= shard.first) & (self.rows < shard.first + shard.images)]
            if len(mine):
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
            mine = self.rows[(self.rows >= shard.first) & (self.rows < shard.first + shard.images)][:per]
            out += [(data, int(self.label_array[pos])) for data, pos in self.read(shard, mine)]
        return out[:n]


def is_prepared(path: Path) -> bool:
    """A folder vggnet prepare wrote, or began to write."""
    return (path / MANIFEST).is_file() or (path / STATE).is_file()


def _json(path: Path, limit: int) -> object:
    try:
        return json.loads(read_regular(path, limit))
    except ValueError as err:
        raise DataError(f"{printable(str(path))} is not valid JSON ({err}); run vggnet prepare again") from None


def _check_shards(root: Path, split: str, entries: object, total: int) -> list[Shard]:
    """The manifest's shard list, checked against the files: names vggnet writes, regular files
    inside OUT (no link leads elsewhere), sizes as recorded, positions covering the split."""
    if not isinstance(entries, list):
        raise DataError(f"{root / MANIFEST}: split {split!r} has no shard list")
    shards, first = [], 0
    for e in entries:
        try:
            shard = Shard(str(e["file"]), first, int(e["images"]), int(e["bytes"]), str(e["sha256"]))
        except (TypeError, KeyError, ValueError):
            raise DataError(f"{root / MANIFEST}: a shard entry of {split!r} is malformed") from None
        if not SHARD_FILE.fullmatch(shard.file) or not shard.file.startswith(f"{split}-"):
            raise DataError(f"{root / MANIFEST}: {printable(shard.file)!r} is not a shard name vggnet writes")
        path = root / shard.file
        if path.is_symlink() or not path.is_file():
            raise DataError(f"{path} is missing (or not a regular file): run vggnet prepare again to resume")
        if path.stat().st_size != shard.bytes:
            raise DataError(f"{path} is {path.stat().st_size} bytes, the manifest says {shard.bytes}: it was cut or "
                            "changed; run vggnet prepare again")
        shards.append(shard)
        first += shard.images
    if first != total:
        raise DataError(f"{root / MANIFEST}: the shards of {split!r} hold {first} images, its index {total}")
    return shards


def read_manifest(root: Path) -> dict:
    manifest = _json(root / MANIFEST, MAX_MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{root / MANIFEST} is not a vggnet prepare manifest")
    return manifest


def load_prepared(root: Path) -> tuple[dict[str, ShardSplit], dict]:
    """A prepared folder's splits, and its manifest."""
    if (root / STATE).is_file():
        raise DataError(f"{root} is only partly prepared: run the same vggnet prepare command again to finish it")
    manifest = read_manifest(root)
    if manifest.get("version") != VERSION:
        raise DataError(f"{root / MANIFEST} is format version {manifest.get('version')}; this vggnet reads {VERSION}")
    if not manifest.get("complete"):
        raise DataError(f"{root} is only partly prepared: run the same vggnet prepare command again to finish it")
    classes = manifest.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise DataError(f"{root / MANIFEST} has no class list")
    splits = {}
    for split, entry in (manifest.get("splits") or {}).items():
        if split not in SPLITS:
            raise DataError(f"{root / MANIFEST}: unknown split {printable(str(split))!r}")
        index = _json(root / f"{split}-index.json", MAX_INDEX)
        names, labels = (index.get("names"), index.get("labels")) if isinstance(index, dict) else (None, None)
        if not isinstance(names, list) or not isinstance(labels, list) or len(names) != len(labels) \
                or not all(isinstance(n, str) for n in names):
            raise DataError(f"{root / f'{split}-index.json'} is not a names-and-labels index; run vggnet prepare again")
        label_array = np.asarray(labels, dtype=np.int64)
        if len(label_array) and (label_array.min() < 0 or label_array.max() >= len(classes)):
            raise DataError(f"{root / f'{split}-index.json'} has labels outside the {len(classes)} classes")
        shards = _check_shards(root, split, entry.get("shards") if isinstance(entry, dict) else None, len(names))
        splits[split] = ShardSplit(root, shards, NameTable.of(names), label_array, classes,
                                   np.arange(len(names), dtype=np.int64), int(manifest.get("short_side", 0)))
    if not splits:
        raise DataError(f"{root / MANIFEST} lists no splits")
    return splits, manifest


def stream_slices(total: int, streams: int, mode: str) -> list[tuple[int, int]]:
    """Each stream's [start, stop) in an epoch's sequence of ``total`` images (stop may pass
    ``total``: those positions wrap round to the start).

    - ``drop`` (training): ``total // streams`` each, the rest left out this epoch;
    - ``pad`` (distributed evaluation): ``ceil(total / streams)`` each, wrapping round as
      DistributedSampler pads, so every rank yields as many batches;
    - ``exact`` (one process): every image once, lengths differing by at most one.
    """
    if mode == "exact":
        return list(itertools.pairwise(total * s // streams for s in range(streams + 1)))
    q = total // streams if mode == "drop" else -(-total // streams)
    return [(s * q, (s + 1) * q) for s in range(streams)]


def shuffled(items: Iterator, size: int, rng: random.Random) -> Iterator:
    """A shuffle buffer: hold ``size`` items, emit a random one as each new one arrives."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        k = rng.randrange(size)
        buffer[k], item = item, buffer[k]
        yield item
    rng.shuffle(buffer)
    yield from buffer
