"""A prepared split read as streams: each (rank, DataLoader worker) pair reads its own contiguous
slice of the epoch's shard sequence, shard after shard, through a shuffle buffer.

Items are what :class:`~vggnet.data.folders.FolderDataset` yields -- (uint8 CHW image, label, the
position of an undecodable image or -1) -- so :class:`~vggnet.data.loader.StreamedBatches` treats
both alike.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch

from vggnet.data.decode import decode_rgb
from vggnet.data.shards import ShardSplit, shuffled, stream_slices
from vggnet.data.transforms import RescaleCrop
from vggnet.files import UnreadableFile

SHUFFLE_BUFFER = 1000
"""Images each training stream holds to shuffle (about 30 MB of 256-side JPEGs)."""


class ShardStream(torch.utils.data.IterableDataset):
    """One rank's share of a :class:`ShardSplit` for one epoch (call :meth:`set_epoch` before each).

    ``workers`` must be the DataLoader's ``num_workers``: the streams are ``world * max(1, workers)``
    and :meth:`batches` counts what this rank will yield. Training (``shuffle``) reads the shards
    in a seeded order per epoch and drops what does not fill equal slices; evaluation reads them in
    order, every image once (padded across ranks like DistributedSampler when ``world > 1``).
    """

    def __init__(self, split: ShardSplit, transform: RescaleCrop, *, shuffle: bool, seed: int, rank: int, world: int,
                 workers: int, local_batch: int, drop_last: bool, fallback_side: int, substitute: bool = False,
                 buffer: int = SHUFFLE_BUFFER) -> None:
        self.split, self.transform, self.shuffle, self.seed = split, transform, shuffle, seed
        self.rank, self.world, self.workers = rank, world, max(1, workers)
        self.local_batch, self.drop_last, self.buffer = local_batch, drop_last, buffer
        self.fallback_side, self.substitute = fallback_side, substitute
        self.classes = split.classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _slices(self) -> list[tuple[int, int]]:
        mode = "drop" if self.shuffle else "pad" if self.world > 1 else "exact"
        return stream_slices(len(self.split), self.world * self.workers, mode)

    def batches(self) -> int:
        """How many batches this rank yields in an epoch (the same on every rank)."""
        mine = self._slices()[self.rank * self.workers:(self.rank + 1) * self.workers]
        b = self.local_batch
        return sum((stop - start) // b if self.drop_last else -(-(stop - start) // b) for start, stop in mine)

    def _order(self) -> np.ndarray:
        n = len(self.split.shards)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def _positions(self, start: int, stop: int) -> Iterator[tuple[bytes, int]]:
        """The images at [start, stop) of the epoch's sequence (wrapping round past its end)."""
        order = self._order()
        kept = self.split.kept_per_shard()[order]
        cum = np.concatenate([[0], np.cumsum(kept)])
        total = int(cum[-1])
        ranges = [(start, min(stop, total))] + ([(0, stop - total)] if stop > total else [])
        for a, b in ranges:
            for j in range(int(np.searchsorted(cum, a, side="right")) - 1, len(order)):
                if cum[j] >= b:
                    break
                shard = self.split.shards[order[j]]
                rows = self.split.rows
                mine = rows[(rows >= shard.first) & (rows < shard.first + shard.images)]
                lo, hi = max(a, int(cum[j])) - int(cum[j]), min(b, int(cum[j + 1])) - int(cum[j])
                yield from self.split.read(shard, mine[lo:hi])

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
