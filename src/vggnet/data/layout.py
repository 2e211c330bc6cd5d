"""The layout rule: which files are images, which folders are classes, which are splits.

One rule for directories and archives alike (docs/data.md states it for users):

1. Hidden files and folders (a name starting with ``.``), desktop litter (``__MACOSX``,
   ``Thumbs.db``, ``desktop.ini``, ...) and vggnet's own run folders are ignored.
2. An image is a file with an image extension, or a file with no extension whose first bytes
   are an image signature. Other files are ignored.
3. Class folders are the folders that directly hold images and have no image-holding folder
   below them; a class is named by its folder. Images elsewhere (beside class folders, in a
   folder that also has class folders inside) are ignored.
4. A split is the nearest folder above a class folder named train/training, val/valid/validation
   or test/testing (any case). Either every class folder is inside a split or none is.
5. The class folders of one split are side by side in one folder; otherwise the layout is
   ambiguous and loading stops with one line that says what was found.
6. A class folder named like a split is taken as a class only beside at least two class folders
   that are not; a split-named folder of images beside split folders is unlabelled (ignored).

Everything ignored is returned with the reason, so the caller can list it; nothing ignored ever
becomes a class.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from vggnet.data.decode import IMAGE_EXTENSIONS
from vggnet.data.sources import printable
from vggnet.errors import DataError

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}
LITTER_FOLDERS = frozenset({"__macosx", "@eadir", "$recycle.bin", "system volume information", "__pycache__"})
LITTER_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"})
UNLABELLED = "directly in a split folder, with no class folder (unlabelled)"  # vggnet.data.ground_truth labels some
RUN_MARKERS = ("run.json", "metrics.json")  # beside report.md: a folder vggnet wrote
FOREIGN_IMAGES = frozenset({".heic", ".heif", ".avif", ".jxl", ".svg", ".psd", ".dng", ".cr2", ".cr3", ".nef", ".arw",
                            ".orf", ".rw2", ".raw"})  # images in formats this Pillow does not read (avif: some do)


@dataclass
class Layout:
    """``splits``: split name ('train', 'val', 'test' or 'all' when none is given) -> [(file, class)];
    ``ignored``: file -> why it is not used; ``roots``: split -> the folder holding its classes."""

    splits: dict[str, list[tuple[str, str]]]
    ignored: dict[str, str] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)


def skip_folder(name: str) -> str | None:
    """Rule 1 for folders, so a walk need not enter them: why a folder is ignored, or None."""
    if name.startswith("."):
        return "hidden"
    return "desktop litter" if name.lower() in LITTER_FOLDERS else None


def _run_folders(names: list[str]) -> set[str]:
    """vggnet's run and evaluation folders (report.md beside run.json or metrics.json), and the
    study folders of ``vggnet experiment`` (report.md above run folders)."""
    reports = {n[:-len("/report.md")] if "/" in n else "" for n in names if n.endswith("report.md")
               and (n == "report.md" or n.endswith("/report.md"))}
    if not reports:  # no string set over a million names when there is nothing to look for
        return set()
    present = set(names)
    runs = {d for d in reports if any(posixpath.join(d, m) in present for m in RUN_MARKERS)}
    return runs | {d for d in reports if any(posixpath.dirname(r) == d for r in runs)}


def candidate_images(names: list[str], is_image: Callable[[str], bool]) -> list[str]:
    """The names a dataset folder would read as images (the rule of :func:`resolve_layout` without
    classes): what ``vggnet predict FOLDER`` scores."""
    why_not = _Rule(names, is_image)
    return [n for n in names if why_not(n) is None]


class _Rule:
    """Rules 1-2 for one file: why it is not a candidate image, or None. What depends only on the
    folder is decided once per folder: a dataset of a million files has a few thousand folders."""

    def __init__(self, names: list[str], is_image: Callable[[str], bool]) -> None:
        self.runs = _run_folders(names)
        self.is_image = is_image
        self.folders: dict[str, str | None] = {}

    def _folder(self, folder: str) -> str | None:
        parts = folder.split("/") if folder else []
        if any(p.startswith(".") for p in parts):
            return "hidden"
        if any(p.lower() in LITTER_FOLDERS for p in parts):
            return "desktop litter"
        if any(f"{folder}/".startswith(f"{run}/") or not run for run in self.runs):
            return "inside a vggnet run folder"
        return None

    def __call__(self, name: str) -> str | None:
        folder, _, base = name.rpartition("/")
        if folder not in self.folders:
            self.folders[folder] = self._folder(folder)
        why = self.folders[folder]
        if why is not None:
            return why
        if base.startswith("."):
            return "hidden"
        if base.lower() in LITTER_FILES:
            return "desktop litter"
        dot = base.rfind(".")
        suffix = base[dot:].lower() if dot > 0 else ""
        if suffix in IMAGE_EXTENSIONS:
            return None
        if not suffix:
            return None if self.is_image(name) else "no extension, and its content is not an image"
        return f"not an image ({suffix})"


def _split_of(folder: str) -> tuple[str, str] | None:
    """(split, the split folder's path) for the nearest split-named folder above ``folder``."""
    parts = folder.split("/")[:-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() in SPLIT_ALIASES:
            return SPLIT_ALIASES[parts[i].lower()], "/".join(parts[: i + 1])
    return None


def _show(folder: str, root: str) -> str:
    return printable(posixpath.join(root, folder) if folder else root)


def _class_folders(images: dict[str, list[str]], ignored: dict[str, str]) -> list[str]:
    """Rule 3: the image folders with no image folder below them; others' images are ignored."""
    above = {"/".join(f.split("/")[:i]) for f in images for i in range(f.count("/") + 1)}
    classes = sorted(f for f in images if f not in above)
    for folder in set(images) - set(classes):
        for name in images[folder]:
            ignored[name] = "not in a class folder"
    return classes


def _unlabelled_splits(classes: list[str], images: dict[str, list[str]], ignored: dict[str, str]) -> list[str]:
    """A split-named folder holding images beside split folders that hold classes (Kaggle's
    ``test/`` of unlabelled images beside ``train/<class>/``) is no class: its images are ignored."""
    split_parents = {posixpath.dirname(found[1]) for f in classes if (found := _split_of(f))}
    kept = []
    for folder in classes:
        if posixpath.basename(folder).lower() in SPLIT_ALIASES and _split_of(folder) is None \
                and posixpath.dirname(folder) in split_parents:
            for name in images[folder]:
                ignored[name] = UNLABELLED
        else:
            kept.append(folder)
    return kept


def _group(classes: list[str], root: str) -> dict[str, list[str]]:
    """Rules 4-6: class folders by split, each split's classes side by side, splits not mixed up
    with classes."""
    groups: dict[str, list[str]] = {}
    for folder in classes:
        found = _split_of(folder)
        groups.setdefault(found[0] if found else "all", []).append(folder)
    if "all" in groups and len(groups) > 1:
        inside = ", ".join(sorted(s for s in groups if s != "all"))
        raise DataError(f"{root} has split folders ({inside}) and class folders outside them "
                        f"({_show(groups['all'][0], root)}): move those into a split, or point --data at one part")
    for folders in groups.values():
        where = sorted({posixpath.dirname(f) for f in folders})
        if len(where) > 1:
            raise DataError(f"class folders are in two places, {_show(where[0], root)} and {_show(where[1], root)}: "
                            "classes must be folders side by side; keep one copy, or if these are splits name "
                            "them train/ and val/ (or test/)")
        _refuse_lookalike_classes(folders, root)
        named = [f for f in folders if posixpath.basename(f).lower() in SPLIT_ALIASES]
        if named and len(folders) - len(named) < 2:
            raise DataError(f"{_show(named[0], root)} holds images directly, but it is named like a split: put "
                            "each class's images in a folder named after the class (inside each split folder)")
    return groups


def _refuse_unreadable_classes(images: dict[str, list[str]], ignored: dict[str, str], root: str) -> None:
    """A folder of photos in a format Pillow cannot read would vanish as a class: stop instead."""
    foreign: dict[str, list[str]] = {}
    for name in ignored:
        suffix = posixpath.splitext(name)[1].lower()
        if suffix in FOREIGN_IMAGES and suffix not in IMAGE_EXTENSIONS:
            foreign.setdefault(posixpath.dirname(name), []).append(suffix)
    for folder, suffixes in sorted(foreign.items()):
        if folder not in images:
            raise DataError(f"{_show(folder, root)} holds {len(suffixes)} {suffixes[0]} files and no image vggnet can "
                            "read: convert them (to JPEG or PNG), or move the folder out of the dataset")


def _refuse_lookalike_classes(folders: list[str], root: str) -> None:
    """Two class folders whose names differ only in Unicode normalisation (NFC vs NFD) print alike."""
    seen: dict[str, str] = {}
    for folder in folders:
        name = unicodedata.normalize("NFC", posixpath.basename(folder))
        if name in seen:
            raise DataError(f"class folders {_show(seen[name], root)} and {_show(folder, root)} have the same name in "
                            "different Unicode forms (NFC and NFD): rename one, or merge them")
        seen[name] = folder


def _no_classes_hint(images: dict[str, list[str]]) -> str:
    """What to do about images with no class folder: ImageNet's flat val and a prepared shard
    (a tar of numbered JPEGs) each have their own way in."""
    names = [posixpath.basename(n) for found in images.values() for n in found[:50]]
    if names and all(n.startswith("ILSVRC2012_val_") for n in names):
        return ("this is ImageNet's flat validation folder, labelled by LOC_val_solution.csv or the devkit's "
                "ground truth: point --data at the folder holding train/, val/ and that file")
    if names and all(n[:8].isdigit() and n.endswith(".jpg") for n in names):
        return "if this is one shard of a folder vggnet prepare wrote, point --data at that folder"
    return "put each class's images in a folder named after the class"


def resolve_layout(names: list[str], is_image: Callable[[str], bool], root: str = ".") -> Layout:
    """Apply the rule to the files of a dataset (relative POSIX names); ``root`` names it in errors."""
    ignored: dict[str, str] = {}
    why_not = _Rule(names, is_image)
    images: dict[str, list[str]] = {}  # folder -> its images
    for name in names:
        why = why_not(name)
        if why:
            ignored[name] = why
        else:
            images.setdefault(name.rpartition("/")[0], []).append(name)
    _refuse_unreadable_classes(images, ignored, root)
    if not images:
        return Layout({}, ignored)
    classes = _unlabelled_splits(_class_folders(images, ignored), images, ignored)
    if not classes:
        raise DataError(f"{root} holds images but no class folders: {_no_classes_hint(images)}")
    groups = _group(classes, root)
    splits = {split: [(name, posixpath.basename(f)) for f in folders for name in sorted(images[f])]
              for split, folders in groups.items()}
    return Layout(splits, ignored, {split: posixpath.dirname(folders[0]) for split, folders in groups.items()})
