"""The ImageNet-1k classes, shipped with the package: index -> WordNet id and readable label.

Index order is the sorted WordNet ids, the order of torchvision's and Keras's 1000-way outputs
and of an ImageNet folder tree (``train/n01440764/...``) read by :func:`vggnet.data.folders.scan_folder`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def _rows() -> tuple[tuple[str, str], ...]:
    text = resources.files("vggnet.data").joinpath("imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = tuple(tuple(line.split("\t", 1)) for line in text.splitlines() if line)
    assert len(rows) == 1000, "imagenet_classes.tsv must hold 1000 classes"
    return rows  # type: ignore[return-value]


def imagenet_classes() -> list[str]:
    """The 1000 readable labels (torchvision's short names: 'tench', 'goldfish', ...)."""
    return [label for _, label in _rows()]


def imagenet_wnids() -> list[str]:
    """The 1000 WordNet ids ('n01440764', ...), sorted: the class folders of an ImageNet tree."""
    return [wnid for wnid, _ in _rows()]
