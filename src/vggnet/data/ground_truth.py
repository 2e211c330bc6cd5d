"""ImageNet's validation images as distributed: one flat folder, labelled by a ground-truth file.

The layout rule ignores a split folder that holds images directly (they have no class folder).
ImageNet's ``val/ILSVRC2012_val_00000001.JPEG ...`` is such a folder, and its labels come in one of
two files somewhere in the dataset:

- Kaggle's ``LOC_val_solution.csv``: ``ImageId,PredictionString``, the first token of the
  prediction string (a WordNet id, ``n01751748``) is the label;
- the devkit's ``ILSVRC2012_validation_ground_truth.txt`` (line k: the ILSVRC2012_ID of image k,
  1-1000) with the devkit's ``meta.mat`` beside it, which maps those ids to WordNet ids (their
  order is not the sorted one, so the table is required; reading it needs scipy).

When exactly one such file is found, the flat folder's images become the ``val`` split, labelled
by WordNet id; an image the file does not name stays ignored, with the reason. Each file is read
within a bound fixed by its format, before parsing.
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import re

from vggnet.data.layout import UNLABELLED, Layout
from vggnet.data.sources import FileSource, printable
from vggnet.errors import DataError, MissingDependencyError

log = logging.getLogger("vggnet")

KAGGLE = "LOC_val_solution.csv"
DEVKIT = "ILSVRC2012_validation_ground_truth.txt"
DEVKIT_META = "meta.mat"
GROUND_TRUTH = (KAGGLE, DEVKIT, DEVKIT_META)  # files whose content labels images
USED = "the labels of the flat validation folder"
BOUNDS = {KAGGLE: 64 << 20, DEVKIT: 4 << 20, DEVKIT_META: 16 << 20}  # 50,000 rows: about 3 MB, 0.2 MB, 2 MB
WNID = re.compile(r"n\d{8}")


def _read(source: FileSource, name: str) -> bytes:
    bound = BOUNDS[posixpath.basename(name)]
    if source.size(name) > bound:
        raise DataError(f"{source.where(name)} is larger than an ImageNet ground-truth file can be "
                        f"({source.size(name):,} bytes); it is not read")
    return source.read(name)


def _kaggle(source: FileSource, name: str) -> dict[str, str]:
    rows = csv.reader(io.StringIO(_read(source, name).decode("utf-8-sig", errors="replace")))
    header = next(rows, [])
    if [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
        raise DataError(f"{source.where(name)} is not Kaggle's solution file (its header is not "
                        "ImageId,PredictionString)")
    labels = {}
    for n, row in enumerate(rows, start=2):
        if not row:
            continue
        tokens = row[1].split() if len(row) > 1 else []
        if not tokens or not WNID.fullmatch(tokens[0]):
            raise DataError(f"{source.where(name)} line {n}: no WordNet id (n########) first in its "
                            "PredictionString")
        labels[row[0].strip()] = tokens[0]
    return labels


def _devkit_ids(source: FileSource, meta: str) -> dict[int, str]:
    """ILSVRC2012_ID -> WordNet id, from the devkit's meta.mat (its 'synsets' struct)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise MissingDependencyError("the devkit's meta.mat is a MATLAB file: pip install scipy") from None
    try:
        synsets = loadmat(io.BytesIO(_read(source, meta)), squeeze_me=True)["synsets"]
        table = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    except (KeyError, ValueError, TypeError, IndexError, OSError, NotImplementedError) as err:
        raise DataError(f"{source.where(meta)} is not the ImageNet devkit's meta.mat ({err})") from None
    return {i: w for i, w in table.items() if 1 <= i <= 1000 and WNID.fullmatch(w)}


def _devkit(source: FileSource, name: str, files: list[str]) -> dict[str, str]:
    meta = posixpath.join(posixpath.dirname(name), DEVKIT_META)
    if meta not in files:
        raise DataError(f"{source.where(name)} numbers the classes by the devkit's ILSVRC2012_ID: its meta.mat "
                        "must be beside it to turn them into WordNet ids")
    ids = _devkit_ids(source, meta)
    labels = {}
    for k, line in enumerate(_read(source, name).decode("ascii", errors="replace").split(), start=1):
        if not line.isdigit() or int(line) not in ids:
            raise DataError(f"{source.where(name)} line {k}: {printable(line)!r} is not an ILSVRC2012_ID in meta.mat")
        labels[f"ILSVRC2012_val_{k:08d}"] = ids[int(line)]
    return labels


def label_flat_val(layout: Layout, source: FileSource, files: list[str]) -> None:
    """Make a flat validation folder the ``val`` split where a ground-truth file labels it."""
    found = [f for f in files if f.endswith((KAGGLE, DEVKIT)) and posixpath.basename(f) in (KAGGLE, DEVKIT)]
    flat = [name for name, why in layout.ignored.items() if why == UNLABELLED
            and posixpath.basename(posixpath.dirname(name)).lower() in ("val", "valid", "validation")]
    if not found or not flat or "val" in layout.splits:
        return
    if len(found) > 1:
        raise DataError(f"{source.where(found[0])} and {source.where(found[1])} both label the validation images: "
                        "keep one")
    labels = _kaggle(source, found[0]) if found[0].endswith(KAGGLE) else _devkit(source, found[0], files)
    val = []
    for name in sorted(flat):
        stem = posixpath.splitext(posixpath.basename(name))[0]
        if stem in labels:
            val.append((name, labels[stem]))
            del layout.ignored[name]
        else:
            layout.ignored[name] = f"in a flat validation folder, not named in {posixpath.basename(found[0])}"
    if val:
        layout.splits["val"] = val
        layout.roots["val"] = posixpath.dirname(val[0][0])
        for used in (found[0], posixpath.join(posixpath.dirname(found[0]), DEVKIT_META)):
            if used in layout.ignored:
                layout.ignored[used] = USED  # listed with its use, not among the files left out
        absent = len(labels) - len(val)
        if absent > 0:
            log.warning("%d of the %d images %s labels are not in %s: the val split has %d", absent, len(labels),
                        posixpath.basename(found[0]), printable(layout.roots["val"]), len(val))
