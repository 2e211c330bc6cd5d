"""Receptive fields as the input pixels each output row sees, along the height.

The textbook recurrence (``r += (k - 1) * j``, ``j *= s``) assumes every output row sees a window
of the same size placed at a constant stride. An adaptive pool breaks that: from 12 rows to 7,
row ``i`` averages rows ``floor(12 i / 7)`` .. ``ceil(12 (i + 1) / 7) - 1``, windows of 2 or 3 rows
at steps of 1 or 2, so no single (kernel, stride) describes it and dividing the jump by 12/7
gives fractional nonsense. Here each row carries its own interval of input pixels, so every
layer is exact: the receptive field is the widest interval, the jump the largest step between
neighbouring rows. Intervals are not clipped to the image: a row whose window reaches into the
padding counts those pixels, as the textbook formula does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

Span = tuple[int, int]
"""First and last input pixel a row sees (inclusive; may lie outside the image)."""


@dataclass(frozen=True)
class Field:
    """The input interval of every row of a feature map, and the step used beyond its ends."""

    spans: tuple[Span, ...]
    jump: int

    @classmethod
    def image(cls, height: int) -> Field:
        return cls(tuple((i, i) for i in range(height)), 1)

    @property
    def size(self) -> int:
        """The receptive field: the widest interval any row sees."""
        return max(hi - lo + 1 for lo, hi in self.spans)

    def span(self, row: int) -> Span:
        """Row ``row``'s interval; rows in the padding continue the grid at ``jump``."""
        if 0 <= row < len(self.spans):
            return self.spans[row]
        edge = 0 if row < 0 else len(self.spans) - 1
        lo, hi = self.spans[edge]
        shift = (row - edge) * self.jump
        return lo + shift, hi + shift

    def union(self, first: int, last: int) -> Span:
        """The pixels seen by rows ``first`` .. ``last`` together."""
        spans = [self.span(r) for r in range(first, last + 1)]
        return min(lo for lo, _ in spans), max(hi for _, hi in spans)


def _step(spans: tuple[Span, ...], fallback: int) -> int:
    return max((b[0] - a[0] for a, b in pairwise(spans)), default=fallback)


def sliding(field: Field, kernel: int, stride: int, padding: int, rows: int) -> Field:
    """A convolution or pooling window of ``kernel`` rows (dilation included) at ``stride``."""
    spans = tuple(field.union(i * stride - padding, i * stride - padding + kernel - 1) for i in range(rows))
    return Field(spans, field.jump * stride)


def adaptive(field: Field, rows: int) -> Field:
    """An adaptive pool (or any resampling to ``rows``): row i pools input rows
    ``floor(i * n / rows)`` .. ``ceil((i + 1) * n / rows) - 1``, as PyTorch's adaptive pools do."""
    n = len(field.spans)
    spans = tuple(field.union(i * n // rows, -(-(i + 1) * n // rows) - 1) for i in range(rows))
    return Field(spans, _step(spans, field.jump * n))


def flatten(field: Field) -> Field:
    """Flattening a map for an FC layer: its one row sees every row (the k x k convolution of the
    fully-convolutional net); its jump is the map's whole extent, the first row to past the last."""
    first, last = field.spans[0][0], field.spans[-1][0]
    return Field((field.union(0, len(field.spans) - 1),), last - first + field.jump)


def merge(fields: list[Field]) -> Field:
    """Several inputs of one output (add, cat): each row sees what any input's row sees."""
    if len({len(f.spans) for f in fields}) != 1:
        return max(fields, key=lambda f: f.size)
    spans = tuple((min(s[0] for s in rows), max(s[1] for s in rows)) for rows in zip(*(f.spans for f in fields),
                                                                                      strict=True))
    return Field(spans, max(f.jump for f in fields))
