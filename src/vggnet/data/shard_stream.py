"""A prepared split read as streams: each (rank, DataLoader worker) pair reads its own contiguous
slice of the epoch's shard sequence, shard after shard, through a shuffle buffer.

Items are what :class:`~vggnet.data.folders.FolderDataset` yields -- (uint8 CHW image, label, the
position of an undecodable image or -1) -- so :class:`~vggnet.data.loader.StreamedBatches` treats
both alike.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import numpy as np
import torch

from vggnet.data.decode import decode_rgb
from vggnet.data.shards import ShardSplit
from vggnet.data.transforms import RescaleCrop
from vggnet.files import UnreadableFile

SHUFFLE_BUFFER = 1000
"""Images each training stream holds to shuffle (about 30 MB of 256-side JPEGs)."""


def stream_slices(total: int, world: int, workers: int, batch: int, train: bool) -> list[tuple[int, int]]:
    """Each stream's [start, stop) in an epoch's sequence of ``total`` images, rank by rank, each
    rank's ``workers`` streams side by side; positions past ``total`` wrap round to the start.

    - training: each rank gets ``(total // world) // batch`` whole batches, dealt to its workers
      in whole batches, so every rank yields as many full batches and fewer than ``world * batch``
      images wait for another epoch's order (with fewer images than that, one padded partial
      batch per rank, as a folder does);
    - evaluation: each rank gets ``ceil(total / world)`` images (the last ones wrap round, as
      DistributedSampler pads), split between its workers; with one process, every image once.
    """
    per_rank_batches = (total // world) // batch
    train = train and per_rank_batches > 0
    per_rank = per_rank_batches * batch if train else -(-total // world)
    slices = []
    for r in range(world):
        unit, units = (batch, per_rank_batches) if train else (1, per_rank)
        bounds = [r * per_rank + unit * (units * w // workers) for w in range(workers + 1)]
        slices += list(itertools.pairwise(bounds))
    return slices


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


def _wrapped(start: int, stop: int, total: int) -> Iterator[tuple[int, int]]:
    """[start, stop) of an endless repetition of ``total`` positions, as ranges within one."""
    while start < stop:
        a = start % total
        n = min(stop - start, total - a)
        yield a, a + n
        start += n


class ShardStream(torch.utils.data.IterableDataset):
    """One rank's share of a :class:`ShardSplit` for one epoch (call :meth:`set_epoch` before each).

    ``workers`` must be the DataLoader's ``num_workers``: the streams are ``world * max(1, workers)``
    (see :func:`stream_slices`) and :meth:`batches` counts what this rank will yield. Training
    (``shuffle``) reads the shards in a seeded order per epoch; evaluation reads them in order.
    """

    def __init__(self, split: ShardSplit, transform: RescaleCrop, *, shuffle: bool, seed: int, rank: int, world: int,
                 workers: int, local_batch: int, fallback_side: int, substitute: bool = False,
                 buffer: int = SHUFFLE_BUFFER) -> None:
        self.split, self.transform, self.shuffle, self.seed = split, transform, shuffle, seed
        self.rank, self.world, self.workers = rank, world, max(1, workers)
        self.local_batch, self.buffer = local_batch, buffer
        self.fallback_side, self.substitute = fallback_side, substitute
        self.classes = split.classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _slices(self) -> list[tuple[int, int]]:
        return stream_slices(len(self.split), self.world, self.workers, self.local_batch, self.shuffle)

    def batches(self) -> int:
        """How many batches this rank yields in an epoch (the same on every rank)."""
        mine = self._slices()[self.rank * self.workers:(self.rank + 1) * self.workers]
        return sum(-(-(stop - start) // self.local_batch) for start, stop in mine)

    def _order(self) -> np.ndarray:
        n = len(self.split.shards)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _positions(self, start: int, stop: int) -> Iterator[tuple[bytes, int]]:
        """The images at [start, stop) of the epoch's sequence (wrapping round past its end)."""
        order = self._order()
        kept = self.split.kept_per_shard()[order]
        cum = np.concatenate([[0], np.cumsum(kept)])
        for a, b in _wrapped(start, stop, int(cum[-1])):
            for j in range(int(np.searchsorted(cum, a, side="right")) - 1, len(order)):
                if cum[j] >= b:
                    break
                shard = self.split.shards[order[j]]
                lo, hi = max(a, int(cum[j])) - int(cum[j]), min(b, int(cum[j + 1])) - int(cum[j])
                yield from self.split.read(shard, self.split.rows_in(shard)[lo:hi])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int, int]]:
        info = torch.utils.data.get_worker_info()
        stream = self.rank * self.workers + (info.id if info is not None else 0)
        start, stop = self._slices()[stream]
        items = self._positions(start, stop)
        if self.shuffle:
            items = shuffled(items, self.buffer, random.Random(f"{self.seed}/{self.epoch}/{stream}"))
        last = None
        for data, position in items:
            try:
                image = decode_rgb(data, min_side=max(self.transform.scale))
            except UnreadableFile:
                if self.substitute and last is not None:  # keep every rank's batches whole (see FolderDataset)
                    yield last[0], last[1], position
                else:
                    yield torch.zeros(3, self.fallback_side, self.fallback_side, dtype=torch.uint8), -1, position
                continue
            last = (self.transform(image), int(self.split.label_array[position]))
            yield last[0], last[1], -1

    def name_of(self, position: int) -> str:
        """The image behind a position reported as undecodable."""
        return self.split.where(position)
