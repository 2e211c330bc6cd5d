"""Small images held in memory as one uint8 tensor, and seeded, class-balanced splits.

At 32x32 a whole dataset fits in memory (CIFAR-10's 60,000 images are 184 MB as uint8), so it is
decoded once and batches are sliced from the tensor: no per-sample Python, no worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vggnet.errors import DataError


@dataclass
class ImageArrays:
    """``images``: (N, 3, H, W) uint8; ``labels``: (N,) int64 in ``[0, len(classes))``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it was not used
    names: list[str] | None = None  # each image's file (member) name, where it came from files

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise DataError(f"images must be (N, 3, H, W) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        if len(self.labels) != len(self.images):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.names is not None and len(self.names) != len(self.images):
            raise DataError(f"{len(self.images)} images but {len(self.names)} names")
        self.labels = self.labels.to(torch.int64)
        bad = (self.labels < 0) | (self.labels >= len(self.classes))
        if bad.any():
            first = int(self.labels[bad][0])
            raise DataError(
                f"{int(bad.sum())} labels out of range [0, {len(self.classes)}), e.g. {first}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: torch.Tensor) -> ImageArrays:
        names = None if self.names is None else [self.names[i] for i in torch.as_tensor(index).tolist()]
        return ImageArrays(self.images[index], self.labels[index], self.classes, names=names)


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val): ``val_fraction`` of every class to val, chosen by ``seed``.

    CIFAR-10's 50,000 training images at 0.1 give 45,000/5,000 with exactly 500 per class.

    The same labels and seed give the same split on every machine (torch's CPU generator).
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    g = torch.Generator().manual_seed(seed)
    classes, counts = torch.unique(labels, return_counts=True)
    # Largest remainder: round(N * fraction) images in all, each class within one of its share.
    share = counts.double() * val_fraction
    n_val = share.floor().long()
    extra = round(len(labels) * val_fraction) - int(n_val.sum())
    # the leftover images go to the classes with the largest remainders, ties in a seeded order (a
    # stable sort alone gave every leftover to the first classes by name)
    tie_order = torch.randperm(len(share), generator=torch.Generator().manual_seed(seed + 0x5EED))
    ranked = tie_order[torch.argsort((share - n_val)[tie_order], descending=True, stable=True)]
    n_val[ranked[:extra]] += 1
    train, val = [], []
    for c, k in zip(classes.tolist(), n_val.tolist(), strict=True):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        val.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def channel_mean_std(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale (the paper subtracts the mean)."""
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (total_sq / n - mean * mean).clamp_min(0).sqrt()
    return mean.tolist(), std.tolist()
