"""``feature_info``: the feature levels a backbone offers, in one shape for every model.

Each level is a dict ``{"name", "module", "num_chs", "reduction"}``: the paper's name of the layer
(``relu3_3``), its module path (``features.15``), its channels and its stride relative to the
input. The list has timm's accessors (``channels()``, ``reduction()``, ``module_name()``,
``get_dicts()``), so detection and segmentation code written for timm backbones reads it as is.
It stays a list of dicts, so code that iterates over it keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vggnet.errors import VggnetError


class FeatureInfo(list):
    """The feature levels of a model (all of them) or of a ``features_only`` module (those it returns)."""

    def _pick(self, key: str, idx: int | Sequence[int] | None) -> object:
        if idx is None:
            return [level[key] for level in self]
        if isinstance(idx, int):
            return self[idx][key]
        return [self[i][key] for i in idx]

    def channels(self, idx: int | Sequence[int] | None = None) -> list[int] | int:
        """Channels of each level (or of level ``idx``)."""
        return self._pick("num_chs", idx)  # type: ignore[return-value]

    def reduction(self, idx: int | Sequence[int] | None = None) -> list[int] | int:
        """How many input pixels one feature-map pixel spans per side, for each level."""
        return self._pick("reduction", idx)  # type: ignore[return-value]

    def module_name(self, idx: int | Sequence[int] | None = None) -> list[str] | str:
        """The module path whose output each level is (``features.3``)."""
        return self._pick("module", idx)  # type: ignore[return-value]

    def get_dicts(self, keys: Iterable[str] | None = None, idx: Sequence[int] | None = None) -> list[dict]:
        """Copies of the levels' dicts, limited to ``keys`` where given."""
        levels = [self[i] for i in idx] if idx is not None else list(self)
        return [dict(d) if keys is None else {k: d[k] for k in keys} for d in levels]

    def select(self, out_indices: Sequence[int] | None) -> tuple[tuple[int, ...], FeatureInfo]:
        """Validated ``out_indices`` (negative ones count from the end; None: every level), and the
        levels they pick; a one-line error for an index out of range."""
        if out_indices is None:
            out_indices = range(len(self))
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        picked = []
        for i in out_indices:
            if not isinstance(i, int) or not -len(self) <= i < len(self):
                raise VggnetError(f"out_indices {tuple(out_indices)}: this model has {len(self)} feature levels "
                                  f"(0 to {len(self) - 1})")
            picked.append(i % len(self))
        if not picked:
            raise VggnetError("out_indices is empty; pick at least one feature level")
        return tuple(picked), FeatureInfo(self[i] for i in picked)
