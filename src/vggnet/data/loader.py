"""Batches of uint8 images and labels on the training device, from either kind of split.

In-memory splits are sliced from one tensor that lives on the device (an index permutation per
epoch, no workers). Streamed splits go through a DataLoader whose workers decode and rescale-crop
(:class:`~vggnet.data.transforms.RescaleCrop`); everything after that is batched on the device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.folders import FolderDataset, FolderIndex, undecodable
from vggnet.data.shard_stream import ShardStream
from vggnet.data.shards import ShardSplit
from vggnet.data.transforms import RescaleCrop
from vggnet.errors import DataError
from vggnet.files import usable_cores


class ArrayBatches:
    """Shuffled (or ordered) batches from an in-memory split moved once to ``device``.

    ``alternate_flip`` mirrors a seeded random half of the images in epoch 0 and then flips every
    image's state each epoch, so any two consecutive epochs show each image both ways (random
    flips show a quarter of them the same way twice). Call :meth:`set_epoch` before each epoch,
    as with a DistributedSampler.

    ``shard=(rank, world)``: every process draws the same permutation (same ``generator`` seed) and
    takes its contiguous 1/world of each batch of ``batch_size`` -- the DistributedSampler's split,
    done per global batch so the optimizer sees the same images whatever the number of processes.
    """

    def __init__(self, arrays: ImageArrays, batch_size: int, *, shuffle: bool, drop_last: bool,
                 generator: torch.Generator | None, device: torch.device, alternate_flip: bool = False,
                 flip_seed: int = 0, shard: tuple[int, int] = (0, 1)) -> None:
        self.images = arrays.images.to(device)
        self.labels = arrays.labels.to(device)
        self.batch_size, self.shuffle, self.drop_last, self.generator = batch_size, shuffle, drop_last, generator
        self.flipped = None
        if alternate_flip:
            g = torch.Generator().manual_seed(flip_seed)
            self.flipped = (torch.rand(len(self.labels), generator=g) < 0.5).to(device)
        self.epoch = 0
        self.rank, self.world = shard

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last and n >= self.batch_size else -(-n // self.batch_size)

    def _take(self, idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images[idx]
        if self.flipped is not None:
            flip = self.flipped[idx] ^ bool(self.epoch % 2)
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
        return images, self.labels[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator).to(self.images.device) if self.shuffle else None
        for i in range(len(self)):
            start, stop = i * self.batch_size, min(n, (i + 1) * self.batch_size)
            if self.world > 1:
                share = -(-(stop - start) // self.world)
                start, stop = start + self.rank * share, min(stop, start + (self.rank + 1) * share)
            yield self._take(slice(start, stop) if order is None else order[start:stop])


def worker_message(text: str) -> str:
    """A DataLoader worker's error as the worker raised it, without the traceback the loader adds."""
    if "Original Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith(("vggnet.errors.", "DataError")) and ": " in last else last


class StreamedBatches:
    """A DataLoader over a :class:`FolderDataset` that yields clean batches: an undecodable file
    is recorded in :attr:`skipped` (file -> why) and dropped from its batch (or, in distributed
    training, replaced by the dataset with another image), or, with ``strict``, the first one stops
    the iteration with a :class:`DataError` naming it. Consumers never see the dataset's signal."""

    def __init__(self, loader: torch.utils.data.DataLoader, strict: bool) -> None:
        self.loader, self.strict = loader, strict
        self.dataset: FolderDataset | ShardStream = loader.dataset
        self.sampler = loader.sampler
        self.skipped: dict[str, str] = {}

    def __len__(self) -> int:
        return self.dataset.batches() if isinstance(self.dataset, ShardStream) else len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        for target in (self.sampler, self.dataset):  # a DistributedSampler, or a shard stream
            if hasattr(target, "set_epoch"):
                target.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        try:
            yield from self._batches()
        except DataError as err:  # from a worker: its text carries the worker's traceback
            raise DataError(worker_message(str(err))) from None

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels, bad in self.loader:
            if (bad >= 0).any():
                names = [self.dataset.name_of(i) for i in bad[bad >= 0].tolist()]
                if self.strict:
                    raise undecodable(names[0])
                self.skipped.update(dict.fromkeys(names, "cannot be decoded"))
                keep = labels >= 0
                images, labels = images[keep], labels[keep]
                if len(labels) == 0:
                    continue
            yield images, labels


def _per_rank(generator: torch.Generator | None, rank: int) -> torch.Generator | None:
    """The DataLoader's generator seeds its workers: one per rank, so each rank draws its own crops."""
    return None if generator is None else torch.Generator().manual_seed(generator.initial_seed() + 7919 * rank)


def make_batches(
    split: ImageArrays | FolderIndex | ShardSplit,
    batch_size: int,
    *,
    train: bool,
    device: torch.device,
    generator: torch.Generator | None = None,
    crop: int = 224,
    scale: tuple[int, int] = (256, 256),
    workers: int = 4,
    alternate_flip: bool = False,
    flip_seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    seed: int = 0,
    strict: bool = False,
):
    """An iterable of (uint8 NCHW, int64 labels) batches; undecodable streamed files are dropped
    and named in the iterable's ``skipped`` (in-memory splits have none left to drop).

    ``batch_size`` is the global batch; with ``shard=(rank, world)`` this process gets its share
    of each (a DistributedSampler seeded with ``seed`` for streamed images). ``workers`` is at most
    the cores this process may use."""
    rank, world = shard
    if isinstance(split, ImageArrays):
        drop_last = train and len(split) > batch_size
        return ArrayBatches(split, batch_size, shuffle=train, drop_last=drop_last, generator=generator, device=device,
                            alternate_flip=alternate_flip and train, flip_seed=flip_seed, shard=shard)
    transform = RescaleCrop(scale if train else scale[0], crop, random=train)
    workers = min(workers, usable_cores())  # more processes than cores only slow decoding down
    if batch_size % world:
        raise ValueError(f"a global batch of {batch_size} does not split over {world} processes")
    if isinstance(split, ShardSplit):
        return _shard_batches(split, transform, batch_size // world, train=train, device=device, generator=generator,
                              workers=workers, shard=shard, seed=seed, strict=strict)
    dataset = FolderDataset(split, transform, fallback_side=crop, substitute=train and world > 1)
    drop_last = train and len(dataset) > batch_size
    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=train,
                                                      seed=seed, drop_last=drop_last)
        generator = _per_rank(generator, rank)
    return StreamedBatches(torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size // world,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        generator=generator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    ), strict)


def _shard_batches(split: ShardSplit, transform: RescaleCrop, local_batch: int, *, train: bool, device: torch.device,
                   generator: torch.Generator | None, workers: int, shard: tuple[int, int], seed: int,
                   strict: bool) -> StreamedBatches:
    """Streams over prepared shards: every rank and worker reads its own slice (see ShardStream)."""
    rank, world = shard
    stream = ShardStream(split, transform, shuffle=train, seed=seed, rank=rank, world=world, workers=workers,
                         local_batch=local_batch, fallback_side=transform.crop, substitute=train and world > 1)
    return StreamedBatches(torch.utils.data.DataLoader(
        stream, batch_size=local_batch, num_workers=workers,  # no drop_last: the slices hold whole batches
        generator=_per_rank(generator, rank),
        pin_memory=device.type == "cuda",
        persistent_workers=False,  # a worker must see set_epoch's new shard order: it is made each epoch
    ), strict)
