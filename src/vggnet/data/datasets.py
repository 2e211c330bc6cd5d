"""One entry point for every dataset: ``cifar10``, ``sample`` or a PATH, as train/val/test splits.

- ``cifar10``: the official release; val is a seeded, class-balanced part of the 50,000 training
  images (10% by default, i.e. 45,000/5,000), test is the official 10,000.
- ``sample``: the embedded CIFAR-10 subset, 4,000 to train and 1,000 held out (val).
- PATH: a CIFAR-10 archive/folder, or a class-per-folder directory or archive (the layout rule
  in :mod:`vggnet.data.layout`). Given splits (``train/``, ``val/``, ``test/``) are used as they
  are; a flat one is split with the seed.

Where vggnet makes the validation split itself, :attr:`DataSplits.held_out` names its images, so
a run can record it and later get exactly the same split back (``held_out=``), whatever changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from vggnet.data.arrays import ImageArrays, stratified_split
from vggnet.data.cifar import is_cifar_source, load_cifar10
from vggnet.data.folders import SMALL_SIDE, FolderIndex, SizeSurvey, load_folder_arrays, scan_folder, survey_sizes
from vggnet.data.ground_truth import USED as GROUND_TRUTH_USED
from vggnet.data.shard_manifest import load_prepared
from vggnet.data.shards import ShardSplit, is_prepared
from vggnet.data.sources import FileSource, printable
from vggnet.errors import DataError

log = logging.getLogger("vggnet")

Split = ImageArrays | FolderIndex | ShardSplit


@dataclass
class DataSplits:
    """Train/val/test of one dataset; small-image splits are in memory, large ones are indexes."""

    name: str
    classes: list[str]
    train: Split | None
    val: Split | None
    test: Split | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # image file -> why it could not be decoded
    ignored: dict[str, str] = field(default_factory=dict)  # file -> why the layout rule did not use it
    held_out: list[str] | None = None  # val's images, where vggnet split them off (None: a given split)
    survey: SizeSurvey | None = None  # image sizes measured on a sample (class folders only)
    flat: bool = False  # no val split of its own (class folders alone, or train/ alone): vggnet holds one out
    source: FileSource | None = None  # where the files are (class folders only)
    prepared_from: str | None = None  # a prepared folder: the dataset it was made from (absolute path)

    @property
    def in_memory(self) -> bool:
        """Whether the images are decoded arrays (small images), judged on the first split there is
        (a test/ folder alone has neither train nor val)."""
        return isinstance(next((s for s in (self.train, self.val, self.test) if s is not None), None), ImageArrays)

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


def names_of(split: Split) -> list[str]:
    """Each image's file (or, for CIFAR, ``train/INDEX``) name."""
    if not isinstance(split, ImageArrays):
        return split.names()
    if split.names is None:
        raise DataError("these in-memory images carry no names")
    return split.names


def labels_of(split: Split) -> torch.Tensor:
    return split.labels


def held_key(name: str) -> str:
    """An image as ``class/file``: unique in a pool (its class folders are side by side), and the
    same whatever folder or archive wraps the dataset; how ``split.json`` names held-out images."""
    return "/".join(name.split("/")[-2:])


def subset_of(split: Split, index: torch.Tensor | list[int]) -> Split:
    index = torch.as_tensor(index, dtype=torch.int64)
    return split.subset(index) if isinstance(split, ImageArrays) else split.subset(index.tolist())


def take_balanced(split: Split, n: int, seed: int) -> Split:
    """A fixed subset of ``n`` images with every class in proportion (chosen by ``seed``), for
    studies on a budget; ``n`` of 0 or at least the split's size returns the split unchanged."""
    if n <= 0 or n >= len(split):
        return split
    _, keep = stratified_split(labels_of(split), n / len(split), seed)
    return subset_of(split, keep.sort().values)


def _folder_order(pool: Split) -> torch.Tensor:
    """The pool's images in the order a class-folder index lists them (folder, then name), so a
    seed holds out the same images of a folder and of the shards prepared from it (whose training
    order is shuffled)."""
    if not isinstance(pool, ShardSplit):
        return torch.arange(len(pool))
    names = pool.names()
    return torch.tensor(sorted(range(len(names)), key=lambda i: (names[i].rpartition("/")[0], names[i])),
                        dtype=torch.int64)


def split_off(pool: Split, val_fraction: float, seed: int,
              held_out: Collection[str] | None = None) -> tuple[Split, Split]:
    """(train, val) from one pool: the images named in ``held_out`` when given (a run's record),
    else a seeded, class-balanced ``val_fraction`` (0: none, every image trains)."""
    if held_out is None and val_fraction == 0:
        return pool, subset_of(pool, [])
    if held_out is None:
        order = _folder_order(pool)
        train_idx, val_idx = stratified_split(labels_of(pool)[order], val_fraction, seed)
        return subset_of(pool, order[train_idx]), subset_of(pool, order[val_idx])
    held = {held_key(n) for n in held_out}
    keys = [held_key(n) for n in names_of(pool)]
    val_idx = [i for i, k in enumerate(keys) if k in held]
    train_idx = [i for i, k in enumerate(keys) if k not in held]
    return subset_of(pool, train_idx), subset_of(pool, val_idx)


SAMPLE_IMAGES = 5_000  # the embedded sample: 4,000 train + 1,000 val (tests/data checks the archive holds them)


def sample_archive() -> Path:
    """The embedded sample: real CIFAR-10 JPEGs shipped inside the package (see data/sample/)."""
    return Path(str(resources.files("vggnet.data.sample").joinpath("cifar10-sample.tar.gz")))


def warn_ignored(ignored: dict[str, str], where: str) -> None:
    """One warning naming the files a dataset holds that the layout rule did not use (litter, hidden
    files and the files that label val/ are left out of it)."""
    quiet = {"hidden", "desktop litter", "inside a vggnet run folder", GROUND_TRUTH_USED}
    shown = [n for n, why in ignored.items() if why not in quiet]
    if shown:
        first = ", ".join(f"{printable(n)} ({ignored[n]})" for n in shown[:3])
        log.warning("%d files in %s are not used: %s%s", len(shown), where, first, ", ..." if len(shown) > 3 else "")


def _folders(path: Path, val_fraction: float, seed: int, progress: bool, whole: bool, strict: bool,
             held_out: Collection[str] | None) -> DataSplits:
    scan = scan_folder(path, progress=progress)
    warn_ignored(scan.ignored, printable(path.name))
    first = scan.splits.get("train") or next(iter(scan.splits.values()))
    survey = survey_sizes(first)
    small = survey.median_side <= SMALL_SIDE
    if small and survey.mixed:
        log.warning("image sizes vary (%d to %d px in a sample of %d): each image is resized to %dx%d "
                    "(shorter side, centre crop)", survey.min_side, survey.max_side, survey.measured,
                    survey.median_side, survey.median_side)
    skipped: dict[str, str] = {}

    def load(folder: FolderIndex) -> Split:
        if not small:
            return folder
        arrays = load_folder_arrays(folder, survey.median_side, progress=progress, strict=strict,
                                    sizes_said=survey.mixed)
        skipped.update(arrays.skipped)
        return arrays

    splits = {name: load(folder) for name, folder in scan.splits.items()}
    result = DataSplits(str(path), first.classes, splits.get("train"), splits.get("val"), splits.get("test"),
                        skipped, scan.ignored, survey=survey, flat="val" not in splits, source=scan.source)
    return _hold_out(result, splits, val_fraction, seed, whole, held_out)


def _hold_out(result: DataSplits, splits: dict[str, Split], val_fraction: float, seed: int, whole: bool,
              held_out: Collection[str] | None) -> DataSplits:
    """A dataset with no val split of its own: hold out a seeded part of its pool (or the images a
    run recorded); ``whole``: the pool (unsplit, or a lone train/) is evaluated entire."""
    pool = splits.get("all", splits.get("train"))
    if pool is None or "val" in splits:
        return result
    if whole:
        result.val = pool
    else:
        result.train, result.val = split_off(pool, val_fraction, seed, held_out)
        result.held_out = names_of(result.val)
    return result


def _prepared(path: Path, val_fraction: float, seed: int, whole: bool, strict: bool,
              held_out: Collection[str] | None) -> DataSplits:
    """A folder ``vggnet prepare`` wrote: its splits as it recorded them (a pool split as folders are)."""
    splits, manifest = load_prepared(path, strict)
    first = splits.get("train") or next(iter(splits.values()))
    result = DataSplits(str(path), first.classes, splits.get("train"), splits.get("val"), splits.get("test"),
                        skipped=manifest.get("skipped") or {}, flat="val" not in splits,
                        prepared_from=manifest.get("source") if isinstance(manifest.get("source"), str) else None)
    return _hold_out(result, splits, val_fraction, seed, whole, held_out)


def _refuse_cifar_among_folders(path: Path) -> None:
    """A folder holding a CIFAR-10 release beside image class folders: neither may silently win."""
    try:
        found = path.is_dir() and any(scan_folder(path).splits.values())
    except DataError:  # no images at all: the CIFAR release alone
        found = False
    if found:
        raise DataError(f"{printable(str(path))} holds both a CIFAR-10 release and image class folders: point "
                        "--data at one of them")


DATA_NAMES = ("cifar10", "sample")  # what --data takes besides a path


def check_data_spec(spec: str | os.PathLike[str], extra: tuple[str, ...] = ()) -> None:
    """A --data that names nothing (not a known dataset, not a path) is one line before any work
    starts; what a path holds is the data readers' to judge. ``extra``: names a caller adds
    (bench's 'synthetic')."""
    text = os.fspath(spec)
    if text not in (*DATA_NAMES, *extra) and not Path(text).exists():
        valid = ", ".join(repr(n) for n in (*extra, *DATA_NAMES))
        raise DataError(f"unknown dataset {text!r}: not {valid}, nor an existing path")


def load_data(
    spec: str | os.PathLike[str],
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    whole: bool = False,
    strict: bool = False,
    held_out: Collection[str] | None = None,
) -> DataSplits:
    """Resolve ``cifar10``, ``sample`` or a path to :class:`DataSplits`.

    ``whole``: a PATH with no val split of its own (flat class folders, or train/ alone) gets one
    ``val`` split holding every image of its pool (what ``vggnet evaluate --split all`` wants),
    instead of a held-out part chosen by ``seed``. ``held_out``:
    the images (names) to hold out as val, as a run recorded them, instead of the seeded split.
    ``strict``: an image that cannot be decoded stops the load (named) instead of being skipped.
    """
    text = os.fspath(spec)
    if text == "sample":
        splits = _folders(sample_archive(), val_fraction, seed, progress, False, strict, held_out)
        splits.name = "sample"
        return splits
    if text == "cifar10" or is_cifar_source(Path(text)):
        if text != "cifar10":
            _refuse_cifar_among_folders(Path(text))
        release = load_cifar10(None if text == "cifar10" else text, progress=progress)
        pool = release["train"]
        if pool is None:  # the test batch alone
            return DataSplits("cifar10", release["test"].classes, None, None, release["test"])
        pool.names = [f"train/{i:05d}" for i in range(len(pool))]
        train, val = split_off(pool, val_fraction, seed, held_out)
        return DataSplits("cifar10", pool.classes, train, val, release["test"], held_out=names_of(val))
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"unknown dataset {text!r}: not 'cifar10', 'sample', nor an existing path")
    if path.is_dir() and is_prepared(path):
        return _prepared(path, val_fraction, seed, whole, strict, held_out)
    splits = _folders(path, val_fraction, seed, progress, whole, strict, held_out)
    if splits.skipped:
        name, why = next(iter(splits.skipped.items()))
        log.warning("%d images in %s cannot be decoded and are skipped (first: %s, %s); --strict stops instead",
                    len(splits.skipped), printable(path.name), printable(name), why)
    return splits
