"""Many file names held as two arrays (UTF-8 bytes and offsets) instead of a million Python strings.

ImageNet's 1.28M names as ``str`` objects in tuples take about 200 MB, and every DataLoader worker
forked from the main process slowly copies them (touching an object's reference count writes its
memory page). As one byte buffer plus int64 offsets they take about 45 bytes per name and are
never written after the scan, so forked workers share them. Names that are not UTF-8 keep their
bytes (surrogate escapes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class NameTable(Sequence[str]):
    """An immutable sequence of names; ``table[i]`` decodes one.

    ``blob`` holds every name followed by a NUL byte (which no file name contains); name ``i`` is
    ``blob[offsets[i] : offsets[i + 1] - 1]``.
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        if blob.dtype != np.uint8 or offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError("a name table is a uint8 buffer and int64 offsets (one more than the names)")
        if offsets[0] != 0 or offsets[-1] != len(blob) or (len(offsets) > 1 and (np.diff(offsets) < 1).any()):
            raise ValueError("name table offsets do not partition its buffer")
        self.blob, self.offsets = blob, offsets

    @classmethod
    def of(cls, names: Iterable[str]) -> NameTable:
        names = list(names)
        if not names:
            return cls(np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.int64))
        text = "\0".join(names) + "\0"  # one string, encoded once: no million small bytes objects
        blob = np.frombuffer(text.encode("utf-8", "surrogateescape"), dtype=np.uint8)
        ends = np.flatnonzero(blob == 0)
        if len(ends) != len(names):
            raise ValueError("a name holds a NUL character")
        offsets = np.zeros(len(names) + 1, dtype=np.int64)
        offsets[1:] = ends + 1
        return cls(blob, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # negative indexes, and IndexError past the end
        start, stop = self.offsets[i], self.offsets[i + 1] - 1
        return self.blob[start:stop].tobytes().decode("utf-8", "surrogateescape")

    @property
    def nbytes(self) -> int:
        return self.blob.nbytes + self.offsets.nbytes
