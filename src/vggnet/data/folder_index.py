"""A dataset split's images as an index (names and labels over a file source), and a folder's scan."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vggnet.data.name_table import NameTable
from vggnet.data.sources import FileSource


@dataclass
class FolderIndex:
    """The images of one split over a :class:`FileSource`: rows of a shared :class:`NameTable`
    (compact, so a million names cost tens of MB and forked workers share them) and their labels."""

    source: FileSource
    table: NameTable
    rows: np.ndarray  # int64 positions in ``table``
    label_array: np.ndarray  # int64 class index per row
    classes: list[str]

    @classmethod
    def of(cls, source: FileSource, entries: list[tuple[str, int]], classes: list[str]) -> FolderIndex:
        """From ``(name, label)`` pairs."""
        table = NameTable.of(name for name, _ in entries)
        labels = np.fromiter((label for _, label in entries), dtype=np.int64, count=len(entries))
        return cls(source, table, np.arange(len(entries), dtype=np.int64), labels, classes)

    def __len__(self) -> int:
        return len(self.rows)

    def name(self, i: int) -> str:
        return self.table[int(self.rows[i])]

    def label(self, i: int) -> int:
        return int(self.label_array[i])

    def spread(self, n: int) -> range:
        """Up to ``n`` indexes evenly spaced over the split (a sample of it, from end to end)."""
        return range(0, len(self), max(1, len(self) // n))[:n]

    def names(self) -> list[str]:
        return [self.table[int(r)] for r in self.rows]

    @property
    def labels(self) -> torch.Tensor:
        return torch.from_numpy(self.label_array.copy())

    @property
    def entries(self) -> list[tuple[str, int]]:
        """``(name, label)`` pairs: a convenience for small splits (a million tuples cost ~150 MB)."""
        return list(zip(self.names(), self.label_array.tolist(), strict=True))

    def subset(self, index: list[int] | np.ndarray) -> FolderIndex:
        index = np.asarray(index, dtype=np.int64)
        return FolderIndex(self.source, self.table, self.rows[index], self.label_array[index], self.classes)


@dataclass
class FolderScan:
    """A dataset's splits (``train``/``val``/``test``, or ``all`` when it gives none) and the files
    the layout rule did not use, each with the reason."""

    source: FileSource
    splits: dict[str, FolderIndex]
    ignored: dict[str, str] = field(default_factory=dict)
