"""Class-per-folder image datasets (the ImageNet layout), from a directory or a .tar/.tar.gz.

Layouts understood, possibly under one wrapping folder::

    root/<class>/<image>                      one pool of images (split it with a seed)
    root/{train,val,test}/<class>/<image>     the splits as given

Small images (side <= ``SMALL_SIDE``) are decoded once into one uint8 tensor and cached as a
safetensors file, so later runs start in a second. Large images stream from disk through a
DataLoader with worker processes; an image that cannot be decoded then comes back with a negative
label that names it (see :meth:`FolderDataset.name_of`), and the loader drops and counts it -- or,
with ``strict``, stops naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch

from vggnet.cache import cache_dir
from vggnet.data.arrays import ImageArrays
from vggnet.data.decode import BadImage, decode_rgb
from vggnet.data.transforms import RescaleCrop
from vggnet.errors import DataError
from vggnet.progress import progress_bar

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp"})
SPLIT_NAMES = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SMALL_SIDE = 64
"""Images no larger than this are held in memory; larger ones stream."""


class FileSource:
    """Reads member files of a directory or a tar archive; tar handles are opened per process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_archive = path.is_file()
        self._tar: tarfile.TarFile | None = None
        self._pid = -1
        self._members: dict[str, tarfile.TarInfo] = {}

    def _archive(self) -> tarfile.TarFile:
        if self._tar is None or self._pid != os.getpid():  # DataLoader workers each open their own
            try:
                self._tar = tarfile.open(self.path)  # noqa: SIM115  (kept open: members are read on demand)
                self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
            except tarfile.ReadError:  # tarfile's own text is several lines of per-codec attempts
                raise DataError(f"cannot read archive {self.path}: not a tar archive, or a damaged one") from None
            except (tarfile.TarError, OSError, EOFError) as err:
                raise DataError(f"cannot read archive {self.path}: {err}") from None
            self._pid = os.getpid()
        return self._tar

    def names(self) -> list[str]:
        if self.is_archive:
            self._archive()
            return sorted(self._members)
        return sorted(
            p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
        )

    def read(self, name: str) -> bytes:
        if self.is_archive:
            return self._archive().extractfile(self._members[name]).read()
        return (self.path / name).read_bytes()

    def where(self, name: str) -> str:
        """Where a member is, as a user would look for it: a path, or ``archive:member``."""
        return f"{self.path}:{name}" if self.is_archive else str(self.path / name)

    def fingerprint(self) -> str:
        """Changes when any file changes: archive size/mtime, or every file's path, size, mtime."""
        h = hashlib.sha256(str(self.path.resolve()).encode())
        paths = [self.path] if self.is_archive else [self.path / n for n in self.names()]
        for p in paths:
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()[:24]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tar": None, "_pid": -1, "_members": {}}


@dataclass
class FolderIndex:
    """The images of one split: ``(member name, label)`` pairs over a :class:`FileSource`."""

    source: FileSource
    entries: list[tuple[str, int]]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.entries)


def _layout(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Group image paths into splits -> [(path, class)], peeling one wrapping folder if needed."""
    found = [(n, PurePosixPath(n)) for n in names]  # keep each name as stored ('./a/0.jpg')
    found = [(n, p) for n, p in found if p.suffix.lower() in IMAGE_EXTENSIONS]
    found = [(n, p) for n, p in found if not any(part.startswith(".") for part in p.parts)]
    prefix = 0
    while found:
        tops = {p.parts[prefix] for _, p in found if len(p.parts) > prefix + 1}
        deep = all(len(p.parts) >= prefix + 3 for _, p in found)
        if deep and tops and tops <= set(SPLIT_ALIASES):
            splits: dict[str, list[tuple[str, str]]] = {}
            for n, p in found:
                splits.setdefault(SPLIT_ALIASES[p.parts[prefix]], []).append((n, p.parts[prefix + 1]))
            return splits
        if deep and len(tops) == 1:
            prefix += 1
            continue
        return {"all": [(n, p.parts[prefix]) for n, p in found if len(p.parts) >= prefix + 2]}
    return {}


def scan_folder(path: str | os.PathLike[str]) -> dict[str, FolderIndex]:
    """Index a class-per-folder directory or archive: ``{'train': ..., 'val': ...}`` or ``{'all': ...}``."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"no such dataset folder or archive: {root}")
    source = FileSource(root)
    splits = _layout(source.names())
    if not any(splits.values()):
        raise DataError(f"no images found in {root} (expected one folder per class holding image files)")
    first = "train" if "train" in splits else next(iter(splits))
    classes = sorted({c for _, c in splits[first]})
    index = {c: i for i, c in enumerate(classes)}
    result = {}
    for name, items in splits.items():
        unknown = sorted({c for _, c in items} - set(classes))
        if unknown:
            raise DataError(f"split {name!r} has classes missing from {first!r}: {', '.join(unknown[:5])}")
        result[name] = FolderIndex(source, [(p, index[c]) for p, c in items], classes)
    return result


def first_image_side(folder: FolderIndex, tries: int = 8) -> int:
    """The larger side of the first decodable image (to choose in-memory or streaming)."""
    for name, _ in folder.entries[:tries]:
        try:
            return max(decode_rgb(folder.source.read(name)).size)
        except BadImage:
            continue
    raise DataError(f"none of the first {tries} images in {folder.source.path} can be decoded")


def undecodable(where: str, why: str = "") -> DataError:
    """The ``--strict`` error for a file that cannot be decoded, named as :meth:`FileSource.where` does."""
    return DataError(f"cannot decode {where}{f' ({why})' if why else ''}; without --strict it is skipped")


def load_folder_arrays(folder: FolderIndex, side: int, *, progress: bool = True, use_cache: bool = True,
                       strict: bool = False) -> ImageArrays:
    """Decode a split to a uint8 tensor at ``side`` x ``side``; bad files are skipped and recorded
    (``strict``: the first one stops it, named).

    The result is cached under the user cache dir, keyed by the files' names, sizes and mtimes.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    from vggnet.atomic import atomic_path

    names = "\n".join(n for n, _ in folder.entries)
    key = hashlib.sha256(f"{folder.source.fingerprint()}|{side}|{names}".encode()).hexdigest()[:32]
    cached = cache_dir("folders", f"{key}.safetensors")
    if use_cache and cached.exists():
        with safe_open(cached, "pt") as f:
            meta = f.metadata()
            tensors = {"images": f.get_tensor("images"), "labels": f.get_tensor("labels")}
        classes, skipped = json.loads(meta["classes"]), json.loads(meta["skipped"])
        if strict and skipped:
            name, why = next(iter(skipped.items()))
            raise undecodable(folder.source.where(name), why)
        return ImageArrays(tensors["images"], tensors["labels"], classes, skipped)

    images = torch.empty((len(folder), 3, side, side), dtype=torch.uint8)
    labels = torch.empty(len(folder), dtype=torch.int64)
    skipped: dict[str, str] = {}
    square = RescaleCrop(side, side, random=False)  # resize + centre crop; no-op at side x side
    n = 0
    with progress_bar(f"decode {folder.source.path.name}", total=len(folder), enabled=progress) as bar:
        for name, label in folder.entries:
            bar.advance()
            try:
                image = square(decode_rgb(folder.source.read(name)))
            except BadImage as err:
                if strict:
                    raise undecodable(folder.source.where(name), str(err)) from None
                skipped[name] = str(err)
                continue
            images[n] = image
            labels[n] = label
            n += 1
    if n == 0:
        raise DataError(f"none of the {len(folder)} images in {folder.source.path} can be decoded")
    arrays = ImageArrays(images[:n].clone(), labels[:n].clone(), folder.classes, skipped)
    if use_cache:
        with atomic_path(cached) as tmp:
            save_file({"images": arrays.images, "labels": arrays.labels}, str(tmp),
                      metadata={"classes": json.dumps(arrays.classes), "skipped": json.dumps(skipped)})
    return arrays


class FolderDataset(torch.utils.data.Dataset):
    """Streams large images: decode, ``transform`` (PIL -> uint8 CHW tensor), label.

    A file that cannot be decoded yields a zero image with label ``-(index + 1)``: negative, so
    every consumer drops it, and :meth:`name_of` says which file it was.
    """

    def __init__(self, folder: FolderIndex, transform, fallback_side: int) -> None:
        self.folder = folder
        self.transform = transform
        self.fallback_side = fallback_side
        self.classes = folder.classes

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        name, label = self.folder.entries[i]
        try:
            return self.transform(decode_rgb(self.folder.source.read(name))), label
        except BadImage:
            return torch.zeros(3, self.fallback_side, self.fallback_side, dtype=torch.uint8), -(i + 1)

    def name_of(self, label: int) -> str:
        """The file behind a negative label."""
        return self.folder.source.where(self.folder.entries[-label - 1][0])
