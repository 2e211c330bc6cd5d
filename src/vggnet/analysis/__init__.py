"""Exact architecture analysis: per-layer trace, small-filter arithmetic, model comparison."""

from vggnet.analysis.trace import LayerStats, Trace, trace

__all__ = ["LayerStats", "Trace", "trace"]
