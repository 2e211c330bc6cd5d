"""Batches of uint8 images and labels on the training device, from either kind of split.

In-memory splits are sliced from one tensor that lives on the device (an index permutation per
epoch, no workers). Streamed splits go through a DataLoader whose workers decode and rescale-crop
(:class:`~vggnet.data.transforms.RescaleCrop`); everything after that is batched on the device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.folders import FolderDataset, FolderIndex
from vggnet.data.transforms import RescaleCrop


class ArrayBatches:
    """Shuffled (or ordered) batches from an in-memory split moved once to ``device``."""

    def __init__(self, arrays: ImageArrays, batch_size: int, *, shuffle: bool, drop_last: bool,
                 generator: torch.Generator | None, device: torch.device) -> None:
        self.images = arrays.images.to(device)
        self.labels = arrays.labels.to(device)
        self.batch_size, self.shuffle, self.drop_last, self.generator = batch_size, shuffle, drop_last, generator

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last and n >= self.batch_size else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator).to(self.images.device) if self.shuffle else None
        for i in range(len(self)):
            if order is None:
                sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
                yield self.images[sl], self.labels[sl]
            else:
                idx = order[i * self.batch_size : (i + 1) * self.batch_size]
                yield self.images[idx], self.labels[idx]


def make_batches(
    split: ImageArrays | FolderIndex,
    batch_size: int,
    *,
    train: bool,
    device: torch.device,
    generator: torch.Generator | None = None,
    crop: int = 224,
    scale: tuple[int, int] = (256, 256),
    workers: int = 4,
):
    """An iterable of (uint8 NCHW, int64 labels) batches; streamed labels may hold -1 (bad file)."""
    if isinstance(split, ImageArrays):
        drop_last = train and len(split) > batch_size
        return ArrayBatches(split, batch_size, shuffle=train, drop_last=drop_last, generator=generator, device=device)
    transform = RescaleCrop(scale if train else scale[0], crop, random=train)
    dataset = FolderDataset(split, transform, fallback_side=crop)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train and len(dataset) > batch_size,
        generator=generator,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
