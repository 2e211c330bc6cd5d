"""One entry point for every dataset: ``cifar10``, ``sample`` or a PATH, as train/val/test splits.

- ``cifar10``: the official release; val is a seeded, class-balanced part of the 50,000 training
  images (10% by default, i.e. 45,000/5,000), test is the official 10,000.
- ``sample``: the embedded CIFAR-10 subset, 4,000 to train and 1,000 held out (val).
- PATH: a CIFAR-10 archive/folder, or a class-per-folder directory or archive. Given splits
  (``train/``, ``val/``, ``test/``) are used as they are; a flat one is split with the seed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from vggnet.data.arrays import ImageArrays, stratified_split
from vggnet.data.cifar import is_cifar_source, load_cifar10
from vggnet.data.folders import SMALL_SIDE, FolderIndex, first_image_side, load_folder_arrays, scan_folder
from vggnet.errors import DataError

log = logging.getLogger("vggnet")

Split = ImageArrays | FolderIndex


@dataclass
class DataSplits:
    """Train/val/test of one dataset; small-image splits are in memory, large ones are indexes."""

    name: str
    classes: list[str]
    train: Split | None
    val: Split | None
    test: Split | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # image file -> why it was not used

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train if self.train is not None else self.val, ImageArrays)

    @property
    def native_size(self) -> int | None:
        """Side of in-memory images (32 for CIFAR); None for streamed images of any size."""
        split = next(s for s in (self.train, self.val, self.test) if s is not None)
        return split.image_size if isinstance(split, ImageArrays) else None

    def split(self, name: str) -> Split:
        found = getattr(self, name, None) if name in ("train", "val", "test") else None
        if found is None:
            have = [n for n in ("train", "val", "test") if getattr(self, n) is not None]
            raise DataError(f"dataset {self.name!r} has no {name!r} split; it has {', '.join(have)}")
        return found


def take_balanced(split: Split, n: int, seed: int) -> Split:
    """A fixed subset of ``n`` images with every class in proportion (chosen by ``seed``), for
    studies on a budget; ``n`` of 0 or at least the split's size returns the split unchanged."""
    if n <= 0 or n >= len(split):
        return split
    labels = split.labels if isinstance(split, ImageArrays) else torch.tensor([c for _, c in split.entries])
    _, keep = stratified_split(labels, n / len(split), seed)
    keep = keep.sort().values
    if isinstance(split, ImageArrays):
        return split.subset(keep)
    return FolderIndex(split.source, [split.entries[i] for i in keep.tolist()], split.classes)


def sample_archive() -> Path:
    """The embedded sample: real CIFAR-10 JPEGs shipped inside the package (see data/sample/)."""
    return Path(str(resources.files("vggnet.data.sample").joinpath("cifar10-sample.tar.gz")))


def _split_arrays(arrays: ImageArrays, val_fraction: float, seed: int) -> tuple[ImageArrays, ImageArrays]:
    train_idx, val_idx = stratified_split(arrays.labels, val_fraction, seed)
    return arrays.subset(train_idx), arrays.subset(val_idx)


def _split_index(folder: FolderIndex, val_fraction: float, seed: int) -> tuple[FolderIndex, FolderIndex]:
    import torch

    labels = torch.tensor([label for _, label in folder.entries])
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    return tuple(  # type: ignore[return-value]
        FolderIndex(folder.source, [folder.entries[i] for i in idx.tolist()], folder.classes)
        for idx in (train_idx, val_idx)
    )


def _folders(path: Path, val_fraction: float, seed: int, progress: bool, whole: bool, strict: bool) -> DataSplits:
    index = scan_folder(path)
    first = index.get("train") or next(iter(index.values()))
    side = first_image_side(first)
    small = side <= SMALL_SIDE

    skipped: dict[str, str] = {}

    def load(folder: FolderIndex) -> Split:
        if not small:
            return folder
        arrays = load_folder_arrays(folder, side, progress=progress, strict=strict)
        skipped.update(arrays.skipped)
        return arrays

    classes = first.classes
    if "all" in index:
        if whole:  # evaluate everything
            return DataSplits(str(path), classes, None, load(index["all"]), skipped=skipped)
        train, val = _split_index(index["all"], val_fraction, seed)
        return DataSplits(str(path), classes, load(train), load(val), skipped=skipped)
    splits = {name: load(folder) for name, folder in index.items()}
    if "val" not in splits and "train" in splits:
        if small:
            splits["train"], splits["val"] = _split_arrays(splits["train"], val_fraction, seed)
        else:
            splits["train"], splits["val"] = _split_index(splits["train"], val_fraction, seed)
    return DataSplits(str(path), classes, splits.get("train"), splits.get("val"), splits.get("test"), skipped)


def load_data(
    spec: str | os.PathLike[str],
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    whole: bool = False,
    strict: bool = False,
) -> DataSplits:
    """Resolve ``cifar10``, ``sample`` or a path to :class:`DataSplits`.

    ``whole``: a flat class-per-folder PATH becomes one ``val`` split holding every image (what
    ``vggnet evaluate`` wants), instead of being split with ``seed``. ``strict``: an image that
    cannot be decoded stops the load (named) instead of being skipped with a warning.
    """
    text = os.fspath(spec)
    if text == "sample":
        splits = _folders(sample_archive(), val_fraction, seed, progress, whole=False, strict=strict)
        splits.name = "sample"
        return splits
    if text == "cifar10" or is_cifar_source(Path(text)):
        release = load_cifar10(None if text == "cifar10" else text, progress=progress)
        train, val = _split_arrays(release["train"], val_fraction, seed)
        return DataSplits("cifar10", release["train"].classes, train, val, release["test"])
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"unknown dataset {text!r}: not 'cifar10', 'sample', nor an existing path")
    splits = _folders(path, val_fraction, seed, progress, whole, strict)
    if splits.skipped:
        name, why = next(iter(splits.skipped.items()))
        log.warning("%d images in %s cannot be decoded and are skipped (first: %s, %s); --strict stops instead",
                    len(splits.skipped), path.name, name, why)
    return splits
