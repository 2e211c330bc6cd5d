"""Benchmarks that compare vggnet's default path with what a user writes in plain PyTorch, in
the same command, each configuration in its own process (so peak memory is its own), alternated
over rounds and reported as medians and ratios in one JSON object."""

from vggnet.bench.peak import matmul_peak
from vggnet.bench.runner import bench_infer, bench_train

__all__ = ["bench_infer", "bench_train", "matmul_peak"]
