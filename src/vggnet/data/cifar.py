"""CIFAR-10 in its official python format (Krizhevsky, 2009).

The release is one archive, ``cifar-10-python.tar.gz``, holding pickled batches
(``data_batch_1`` ... ``data_batch_5``, ``test_batch``) and ``batches.meta``. It is downloaded
once into the user cache (resumable, md5-checked) or read from an archive or folder the user
names. The pickles are read with an unpickler that accepts only the handful of numpy names the
format uses, so a hostile file cannot run code.
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import numbers
import os
import pickle
import pickletools
import posixpath
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from vggnet.cache import cache_dir
from vggnet.data.arrays import ImageArrays
from vggnet.data.download import download
from vggnet.data.sources import printable
from vggnet.errors import ChecksumError, DataError, DownloadError, one_line
from vggnet.files import FileRefused, max_file_bytes, read_regular, stat_regular

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
SIZE = 170_498_071  # bytes of cifar-10-python.tar.gz: the download stops past it
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
SIDE = 32

BATCH_ROWS = 10_000
"""Images in one batch of the release; no batch holds more."""
MEMBER_BYTES = 64 << 20
"""A batch file is 31 MB (10,000 x 3,072 bytes, labels and file names): a bigger member is not one."""
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
}


class _Refused(Exception):
    """An array in a batch that the format does not allow, met before it is allocated."""


def _elements(shape: object) -> int | None:
    """The number of elements of a pickled array's shape; None if it is not a tuple of sizes."""
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        return None
    return math.prod(shape)


class _BoundedArray(np.ndarray):
    """What a batch's arrays are rebuilt as: the shape their state declares is checked before
    numpy allocates it, and numpy then requires the bytes to be in the file (never zero-filled)."""

    def __setstate__(self, state: tuple) -> None:
        shape = state[-4] if isinstance(state, tuple) and len(state) in (4, 5) else None
        n = _elements(shape)
        if n is not None:  # elements, and bytes: a subarray dtype multiplies one element's size
            n = max(n, n * getattr(state[-3], "itemsize", 1) // 8)
        if n is None or n > BATCH_ROWS * 3 * SIDE * SIDE:
            raise _Refused(f"an array of shape {shape}, larger than a batch holds ({BATCH_ROWS} x {3 * SIDE * SIDE})")
        super().__setstate__(state)


class _NdarrayClass:
    """What the name ``numpy.ndarray`` loads as: only :func:`_reconstruct`'s first argument. Called
    directly it would allocate whatever shape it is given, with no data behind it: refused."""

    def __call__(self, *args: object) -> None:
        raise _Refused("numpy.ndarray called directly (an array whose data is not in the file)")


_NDARRAY = _NdarrayClass()


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise DataError(f"CIFAR batch refers to {module}.{name}, which the format never uses")
        if name == "ndarray":
            return _NDARRAY
        found = super().find_class(module, name)
        if name != "_reconstruct":
            return found

        def reconstruct(subtype: object, shape: object, dtype: object) -> np.ndarray:
            if subtype is not _NDARRAY or _elements(shape) != 0:  # numpy writes (ndarray, (0,), b'b')
                raise _Refused(f"an array rebuilt as {shape!r} before its data (not how numpy pickles)")
            return found(_BoundedArray, shape, dtype)

        return reconstruct


MAX_MEMO = 1024  # a CIFAR batch memoises about 30 objects; a damaged index can ask for gigabytes


def _check_memo(data: bytes, what: str) -> None:
    """Refuse memo indices no batch uses before unpickling: the C unpickler sizes its memo table
    to the largest index it meets, so one flipped byte in a PUT could allocate gigabytes."""
    for op, arg, _ in pickletools.genops(data):
        if op.name.endswith(("PUT", "GET")) and isinstance(arg, int) and arg > MAX_MEMO:
            raise DataError(f"cannot read CIFAR batch {what}: memo index {arg} (a damaged file)")


def _unpickle(data: bytes, what: str) -> dict:
    try:
        _check_memo(data, what)
        obj = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except DataError:
        raise
    except Exception as err:  # truncated, not a pickle at all, an array refused or short of its data
        raise DataError(f"cannot read CIFAR batch {what}: {one_line(err)}") from None
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR batch {what} is not a dict")
    return {k.decode() if isinstance(k, bytes) else k: v.view(np.ndarray) if isinstance(v, np.ndarray) else v
            for k, v in obj.items()}


def _member_bound() -> int:
    """The most one batch file may hold: what the format allows, lower if ``$VGGNET_MAX_FILE_MB`` says so."""
    return min(MEMBER_BYTES, max_file_bytes())


def _too_big(where: str, size: int, bound: int) -> DataError:
    return DataError(f"{where} declares {size:,} bytes; a CIFAR-10 batch is about 31 MB (at most {bound:,} read): "
                     "is it the CIFAR-10 python release?")


def _read_file(path: Path) -> bytes:
    bound = _member_bound()
    try:
        if (size := os.stat(path).st_size) > bound:
            raise _too_big(str(path), size, bound)
        return read_regular(path, bound)  # a FIFO or a device: refused, not waited on
    except FileRefused as err:
        raise DataError(f"{path}: {err}") from None
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None


def _read_archive(source: Path) -> dict[str, bytes]:
    """The release's files (by base name) from its archive, each read only if it is a regular
    member no larger than a batch can be; any larger member stops the read unread."""
    wanted, bound = {*TRAIN_BATCHES, *TEST_BATCHES, "batches.meta"}, _member_bound()
    members: dict[str, bytes] = {}
    try:
        stat_regular(source, max(8 * MEMBER_BYTES, max_file_bytes()))  # before opening: a FIFO would block
        with tarfile.open(source) as archive:
            for m in archive:
                if m.isreg() and m.size > bound:
                    raise _too_big(f"{source}: member {printable(m.name)}", m.size, bound)
                name = posixpath.basename(m.name)
                if m.isreg() and name in wanted and name not in members:
                    members[name] = archive.extractfile(m).read(m.size)  # type: ignore[union-attr]
                    if len(members) == len(wanted):
                        break
    except FileRefused as err:
        raise DataError(f"{source}: {err}") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataError(f"cannot open CIFAR archive {source}: {err}") from None
    return members


def _reader(source: Path):
    """Functions ``read`` (name -> bytes) and ``has`` (name -> bool) over an archive, a folder of
    batches, or a folder holding either."""
    if source.is_dir():
        found = next((c for c in (source / FOLDER, source) if (c / "batches.meta").is_file()), None)
        if found is not None:
            return (lambda name: _read_file(found / name)), (lambda name: (found / name).is_file())
        if (source / ARCHIVE).is_file():
            return _reader(source / ARCHIVE)
        raise DataError(f"{source} holds neither {FOLDER}/ nor {ARCHIVE}")
    members = _read_archive(source)  # every member is needed: one pass (178 MB for the full release)

    def read(name: str) -> bytes:
        if name not in members:
            raise DataError(f"{source} has no {name}; is it cifar-10-python.tar.gz?")
        return members[name]

    return read, members.__contains__


def _labels(batch: dict, name: str, n_images: int, n_classes: int) -> torch.Tensor:
    """A batch's labels as int64, checked here so the error names the batch: a float label would
    otherwise be truncated silently (3.7 -> 3) and a string one would end in a traceback."""
    if "labels" not in batch:
        raise DataError(f"CIFAR batch {name} has no labels")
    raw = batch["labels"]
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1:
            raise DataError(f"CIFAR batch {name}: labels must be a 1-D list of integers, got shape {raw.shape}")
        if raw.dtype.kind in "iu":
            values: np.ndarray | list = raw
        else:  # bool, float, str, object: report the first label that is not an integer
            values = raw.tolist()
    elif isinstance(raw, (list, tuple)):
        values = list(raw)
    else:
        raise DataError(f"CIFAR batch {name}: labels must be a list of integers, got {type(raw).__name__}")
    if isinstance(values, list):
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                found = f"{type(v).__name__} {v!r}"
                raise DataError(f"CIFAR batch {name}: labels must be integers, found {found} (label {i})")
    if len(values) != n_images:
        raise DataError(f"CIFAR batch {name}: {n_images} images but {len(values)} labels")
    # Range before conversion: an integer past int64 would otherwise overflow instead of being named.
    if isinstance(values, np.ndarray):
        bad = values[(values < 0) | (values >= n_classes)].tolist()
    else:
        bad = [int(v) for v in values if not 0 <= v < n_classes]
    if bad:
        raise DataError(f"CIFAR batch {name}: {len(bad)} labels out of range [0, {n_classes}), e.g. {bad[0]}")
    return torch.as_tensor(np.asarray(values, dtype=np.int64))


def _batches(read, names: tuple[str, ...], classes: list[str]) -> ImageArrays:
    images, labels = [], []
    for name in names:
        batch = _unpickle(read(name), name)
        data = np.asarray(batch.get("data"))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE or len(data) > BATCH_ROWS:
            raise DataError(f"CIFAR batch {name}: data must be (N, 3072) uint8 with N <= {BATCH_ROWS:,}, "
                            f"got {data.shape} {data.dtype}")
        images.append(torch.from_numpy(data.reshape(-1, 3, SIDE, SIDE).copy()))
        labels.append(_labels(batch, name, len(data), len(classes)))
    return ImageArrays(torch.cat(images), torch.cat(labels), classes)


BINARY_FOLDER = "cifar-10-batches-bin"  # the binary (C) release: refused in one line, not read as images


SNIFF_RAW = 1 << 20  # compressed bytes read to find the first member's name
SNIFF_OUT = 64 << 10  # decompressed bytes looked at: room for PAX and GNU long-name entries before it


def _head(path: Path) -> bytes:
    """The first SNIFF_OUT bytes of a file, decompressed (gzip, bz2, xz) or as they are, from at
    most SNIFF_RAW bytes read: bounded whatever the file holds (a gzip header's name field that
    never ends, a run of empty gzip members)."""
    with open(path, "rb") as f:
        raw = f.read(SNIFF_RAW)
    if raw[:2] == b"\x1f\x8b":
        unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif raw[:3] == b"BZh":
        unpack = bz2.BZ2Decompressor()
    elif raw[:6] == b"\xfd7zXZ\x00":
        unpack = lzma.LZMADecompressor()
    else:
        return raw[:SNIFF_OUT]
    try:
        return unpack.decompress(raw, SNIFF_OUT)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        return b""


def first_member(path: Path) -> str:
    """The name of the first file or folder in a tar (plain, gzip, bz2 or xz), skipping the PAX and
    GNU entries that may come before it; '' for anything else. A browser's renamed download
    (``cifar-10-python (1).tar.gz``) is recognised by its contents, not its name."""
    if not path.is_file():  # a FIFO or a device is never opened
        return ""
    try:
        head = _head(path)
    except OSError:
        return ""
    at = 0
    while at + 512 <= len(head):
        header = head[at : at + 512]
        if header[257:262] not in (b"ustar", bytes(5)):  # POSIX/GNU, or a V7 header
            return ""
        try:
            size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            return ""
        if header[156:157] not in (b"x", b"g", b"L", b"K"):  # PAX, global PAX, GNU long name/link
            name = header[:100].split(b"\0", 1)[0]
            prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
            return (prefix + b"/" + name if prefix else name).decode("utf-8", "replace")
        at += 512 + -(-size // 512) * 512
    return ""


def _top_folder(path: Path) -> str:
    return first_member(path).lstrip("./").split("/", 1)[0]


def is_cifar_source(path: Path) -> bool:
    """Whether ``path`` looks like the official python release (archive under any name, extracted
    folder, or its parent). The binary release is named and refused here, in one line."""
    if path.is_dir():
        if (path / "batches.meta.txt").is_file() or ((path / BINARY_FOLDER / "batches.meta.txt").is_file() and not any(
                c.is_dir() and c.name != BINARY_FOLDER and not c.name.startswith(".") for c in path.iterdir())):
            raise _binary_release(path)  # beside other folders (class folders), those are read instead
        return any((p / "batches.meta").is_file() for p in (path, path / FOLDER)) or (path / ARCHIVE).is_file()
    top = _top_folder(path) if path.name != ARCHIVE else FOLDER
    if top == BINARY_FOLDER:
        raise _binary_release(path)
    return top == FOLDER


def _binary_release(path: Path) -> DataError:
    return DataError(f"{printable(str(path))} is CIFAR-10's binary release (cifar-10-batches-bin); vggnet reads the "
                     f"python release: pass {ARCHIVE} or its extracted {FOLDER}/, or --data cifar10 to download it")


def _check_cached(archive: Path) -> None:
    """The cached archive is the official release (size, then md5): a file put there by hand is
    read as 'cifar10' only if it is the one the name promises."""
    from vggnet.data.download import file_digest

    if archive.stat().st_size != SIZE or file_digest(archive, "md5") != MD5:
        raise DataError(f"{archive} is not the official {ARCHIVE} (its size or md5 differs): delete it to download "
                        "the release again, or pass a copy of your own with --data PATH")


def load_cifar10(
    root: str | os.PathLike[str] | None = None,
    *,
    download_ok: bool = True,
    url: str | None = None,
    progress: bool = True,
) -> dict[str, ImageArrays | None]:
    """CIFAR-10 as ``{'train': 50,000 images, 'test': 10,000 images}`` ('train' None for a copy
    holding the test batch and batches.meta alone: enough to score, not to train).

    ``root`` is the archive, the extracted folder, or a folder holding either; by default the
    archive in the user cache, downloaded from ``url`` (the official one) if missing and ``download_ok``.
    """
    if root is None:
        archive = cache_dir("cifar10") / ARCHIVE
        if not archive.exists():
            if not download_ok:
                raise DataError(f"CIFAR-10 is not in the cache ({archive}) and downloading is off")
            try:
                download(url or URL, archive, md5=MD5, size=SIZE, progress=progress)
            except ChecksumError:
                raise
            except DownloadError as err:  # offline, most often: say where a copy can go
                raise DownloadError(f"{err}; offline, put {ARCHIVE} at {archive} or pass its path with "
                                    "--data") from None
        _check_cached(archive)
        source = archive
    else:
        source = Path(root)
        if not source.exists():
            raise DataError(f"no such CIFAR-10 archive or folder: {source}")
    read, has = _reader(source)
    meta = _unpickle(read("batches.meta"), "batches.meta")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
    if not classes:
        raise DataError("batches.meta has no label_names")
    test_alone = not any(map(has, TRAIN_BATCHES)) and all(map(has, TEST_BATCHES))  # enough to score on
    return {"train": None if test_alone else _batches(read, TRAIN_BATCHES, classes),
            "test": _batches(read, TEST_BATCHES, classes)}
