"""Class-per-folder image datasets (the ImageNet layout), from a directory or a .tar/.tar.gz/.zip.

Which files are images, which folders are classes and which are splits is decided by one rule
(:mod:`vggnet.data.layout`, stated in docs/data.md); what the rule ignores is listed, never used.

Small images (side <= ``SMALL_SIDE``) are decoded once into one uint8 tensor and cached (see
:mod:`vggnet.data.array_cache`), so later runs start in a second. Large images stream from disk
through a DataLoader with worker processes; an image that cannot be decoded then comes back with
a negative label that names it (see :meth:`FolderDataset.name_of`), which the loader drops and
counts -- or, with ``strict``, stops naming the file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.decode import SNIFF_BYTES, decode_rgb, image_size, looks_like_image
from vggnet.data.folder_index import FolderIndex, FolderScan
from vggnet.data.ground_truth import GROUND_TRUTH, label_flat_val
from vggnet.data.layout import resolve_layout, skip_folder
from vggnet.data.name_table import NameTable
from vggnet.data.sources import DirectorySource, FileSource, head, open_source, printable
from vggnet.data.transforms import RescaleCrop
from vggnet.errors import DataError
from vggnet.files import UnreadableFile
from vggnet.progress import progress_bar

log = logging.getLogger("vggnet")

SMALL_SIDE = 64
"""Images no larger than this are held in memory; larger ones stream."""
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
SURVEY_SAMPLE = 256
"""How many images (evenly spaced) are measured to decide the image size of a dataset."""


def scan_folder(path: str | os.PathLike[str], *, progress: bool = False, use_cache: bool = True) -> FolderScan:
    """Index a class-per-folder directory or archive by the layout rule. A directory's index is
    cached (:mod:`vggnet.data.scan_cache`) and listed again only when one of its folders changed."""
    from vggnet.data.scan_cache import Stamp, read_index, stamp, write_index

    root = Path(path)
    if not root.exists():
        raise DataError(f"no such dataset folder or archive: {root}")
    source = open_source(root)
    cacheable = use_cache and isinstance(source, DirectorySource)
    if cacheable and (cached := read_index(source)) is not None:
        return cached
    started = time.time()
    stamps: list[Stamp] = []
    shown = progress and isinstance(source, DirectorySource)  # an archive is listed as it is opened
    with progress_bar(f"index {printable(root.name)} (folders)", total=None, enabled=shown, transient=True) as bar:
        def walked(folder: str) -> None:  # stamped before it is listed: a change made meanwhile shows next time
            if cacheable:
                try:
                    stamps.append(stamp(root, folder, folder=True))
                except OSError:  # gone meanwhile: a stamp that never matches, so it is listed again
                    stamps.append([folder, -1, -1, -1, -1])
            bar.advance()

        listing = source.files(skip=skip_folder, walked=walked)
    files = sorted(name for name, kind in listing.items() if kind == "file")
    ignored = {name: why for name, why in listing.items() if why != "file"}
    del listing  # a million entries: not kept while the layout is resolved
    sniffed: list[str] = []

    def is_image(name: str) -> bool:  # a file with no extension: its first bytes tell
        sniffed.append(name)
        return looks_like_image(head(source, name, SNIFF_BYTES))

    unlisted = [name for name, why in ignored.items() if why.startswith("a folder that cannot be listed")]
    if unlisted:
        where = source.where(unlisted[0]).rstrip("/")
        raise DataError(f"{where}: {ignored[unlisted[0]]}; fix its permissions, or move it out of the dataset")
    layout = resolve_layout(files, is_image, root=printable(str(root)))
    label_flat_val(layout, source, files)  # ImageNet's flat val/ and its ground-truth file
    ignored.update(layout.ignored)
    if not any(layout.splits.values()):
        archives = [n for n in ignored if n.lower().endswith(ARCHIVE_SUFFIXES)]
        hint = (f"; it holds an archive, {printable(archives[0])}: extract it, or pass it to --data" if archives
                else f"; {len(ignored)} other files ignored" if ignored else "")
        raise DataError(f"no images found in {printable(str(root))} (expected one folder per class holding image "
                        f"files{hint})")
    scan = FolderScan(source, _indexes(layout.splits, source), ignored)
    if cacheable:
        write_index(scan, stamps, sniffed + [f for f in files if posixpath.basename(f) in GROUND_TRUTH], started)
    return scan


def _indexes(splits: dict[str, list[tuple[str, str]]], source: FileSource) -> dict[str, FolderIndex]:
    """Each split's (file, class) pairs as an index; the classes are the training split's (or the
    only split's), and a class another split adds stops here."""
    first = "train" if "train" in splits else next(iter(splits))
    classes = sorted({c for _, c in splits[first]})
    index = {c: i for i, c in enumerate(classes)}
    result = {}
    for name, items in splits.items():
        unknown = sorted({c for _, c in items} - set(classes))
        if unknown:
            raise DataError(f"split {name!r} has classes missing from {first!r}: "
                            f"{', '.join(printable(u) for u in unknown[:5])}; every class needs a folder in "
                            f"{first!r} (or remove it from {name!r})")
        labels = np.fromiter((index[c] for _, c in items), dtype=np.int64, count=len(items))
        result[name] = FolderIndex(source, NameTable.of(p for p, _ in items), np.arange(len(items)), labels, classes)
    return result


@dataclass
class SizeSurvey:
    """Image sides measured from the headers of an evenly spaced sample of a split."""

    measured: int
    min_side: int
    max_side: int
    median_side: int  # of each image's larger side: the size the dataset is used at in memory

    @property
    def mixed(self) -> bool:
        return self.min_side != self.max_side


def survey_sizes(folder: FolderIndex, sample: int = SURVEY_SAMPLE) -> SizeSurvey:
    """Measure up to ``sample`` images spread over the whole split (headers only: fast)."""
    sides: list[tuple[int, int]] = []
    for i in folder.spread(sample):
        name = folder.name(i)
        try:
            try:  # a header is small; a huge EXIF block may need the whole file
                w, h = image_size(io.BytesIO(folder.source.read(name, limit=1 << 18)))
            except UnreadableFile:
                w, h = image_size(io.BytesIO(folder.source.read(name)))
        except (UnreadableFile, OSError):
            continue
        sides.append((min(w, h), max(w, h)))
    if not sides:
        raise DataError(f"none of the {min(sample, len(folder))} images sampled from "
                        f"{printable(str(folder.source.path))} can be decoded")
    return SizeSurvey(len(sides), min(s for s, _ in sides), max(b for _, b in sides),
                      int(statistics.median_low(b for _, b in sides)))


def undecodable(where: str, why: str = "") -> DataError:
    """The ``--strict`` error for a file that cannot be decoded, named as :meth:`FileSource.where` does."""
    return DataError(f"cannot decode {where}{f' ({why})' if why else ''}; without --strict it is skipped")


def _matches(cached: ImageArrays, folder: FolderIndex) -> bool:
    """A cache entry's classes, files and labels are the split's, file for file."""
    expected = dict(zip(folder.names(), folder.label_array.tolist(), strict=True))
    if cached.classes != folder.classes or cached.names is None:
        return False
    if set(cached.names) | set(cached.skipped) != set(expected):
        return False
    return all(expected[n] == label for n, label in zip(cached.names, cached.labels.tolist(), strict=True))


def load_folder_arrays(folder: FolderIndex, side: int, *, progress: bool = True, use_cache: bool = True,
                       strict: bool = False, sizes_said: bool = False) -> ImageArrays:
    """Decode a split to a uint8 tensor at ``side`` x ``side`` (shorter side scaled to ``side``,
    centre crop: deterministic); bad files are skipped and recorded (``strict``: the first one
    stops it, named). Each image keeps its file name (:attr:`ImageArrays.names`). Images of
    another size are counted in a warning, unless ``sizes_said`` (the size survey already said so).

    The result is cached, keyed by the files' names, sizes, mtimes and inodes, so a dataset is
    decoded once whatever the seed or split taken from it later.
    """
    from vggnet.data.array_cache import read_cached, write_cached

    names = folder.names()
    text = f"{folder.source.fingerprint(names)}|{side}|" + "\n".join(names)
    key = hashlib.sha256(text.encode("utf-8", "surrogateescape"))
    key_text = key.hexdigest()[:32]
    cached = read_cached(key_text) if use_cache else None
    if cached is not None and not _matches(cached, folder):
        log.warning("decoded-image cache entry %s disagrees with the files it was made from; decoding again", key_text)
        cached = None
    if cached is not None:
        if strict and cached.skipped:
            name, why = next(iter(cached.skipped.items()))
            raise undecodable(folder.source.where(name), why)
        return cached

    images = torch.empty((len(folder), 3, side, side), dtype=torch.uint8)
    labels = torch.empty(len(folder), dtype=torch.int64)
    kept: list[str] = []
    skipped: dict[str, str] = {}
    other_sizes = 0
    square = RescaleCrop(side, side, random=False)  # resize + centre crop; no-op at side x side
    with progress_bar(f"decode {printable(folder.source.path.name)}", total=len(folder), enabled=progress) as bar:
        for name, label in zip(names, folder.label_array.tolist(), strict=True):
            bar.advance()
            try:
                image = decode_rgb(folder.source.read(name))
            except UnreadableFile as err:
                if strict:
                    raise undecodable(folder.source.where(name), str(err)) from None
                skipped[name] = str(err)
                continue
            other_sizes += image.size != (side, side)
            images[len(kept)] = square(image)
            labels[len(kept)] = label
            kept.append(name)
    if not kept:
        raise DataError(f"none of the {len(folder)} images in {printable(str(folder.source.path))} can be decoded")
    if other_sizes and not sizes_said:
        log.warning("%d of %d images are not %dx%d: each was resized (shorter side to %d, centre crop)",
                    other_sizes, len(kept), side, side, side)
    n = len(kept)
    arrays = ImageArrays(images[:n].clone(), labels[:n].clone(), folder.classes, skipped, names=kept)
    if use_cache:
        write_cached(key_text, arrays)
    return arrays


SUBSTITUTE_TRIES = 16
"""How many following images a substituting dataset tries in place of an undecodable one."""


class FolderDataset(torch.utils.data.Dataset):
    """Streams large images: item ``i`` is (decoded and ``transform``-ed uint8 CHW tensor, label,
    the index of an undecodable file met, or -1).

    An undecodable file comes back as a zero image with label -1, which the loader
    (:class:`~vggnet.data.loader.StreamedBatches`) drops and names (:meth:`name_of`). With
    ``substitute`` (distributed training) the next decodable image takes its place instead, so
    every rank's batches keep their size and count: a rank that dropped a batch would leave the
    others waiting in the gradient all-reduce.
    """

    def __init__(self, folder: FolderIndex, transform: RescaleCrop, fallback_side: int,
                 substitute: bool = False) -> None:
        self.folder = folder
        self.transform = transform
        self.fallback_side = fallback_side
        self.substitute = substitute
        self.classes = folder.classes

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        for k in range(SUBSTITUTE_TRIES if self.substitute else 1):
            j = (i + k) % len(self.folder)
            try:
                # the largest side the transform may rescale to: a big JPEG is decoded no larger than that
                image = decode_rgb(self.folder.source.read(self.folder.name(j)), min_side=max(self.transform.scale))
                return self.transform(image), self.folder.label(j), (i if k else -1)
            except UnreadableFile:
                continue
        return torch.zeros(3, self.fallback_side, self.fallback_side, dtype=torch.uint8), -1, i

    def name_of(self, index: int) -> str:
        """The file behind an index the dataset reported as undecodable."""
        return self.folder.source.where(self.folder.name(index))
