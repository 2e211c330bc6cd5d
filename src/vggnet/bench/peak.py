"""The machine's matrix-multiply peak, measured on the spot: the yardstick for achieved GFLOPS."""

from __future__ import annotations

import time

import torch


def matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", n: int | None = None,
                seconds: float = 1.0) -> float:
    """Best GFLOPS of an n x n x n matrix product in ``dtype`` over about ``seconds`` of trials.

    ``n`` defaults to 2048 on CPU and 8192 on GPU, where smaller products cannot fill the chip.
    """
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t = time.perf_counter()
        for _ in range(4):
            a @ b
        sync()
        dt = (time.perf_counter() - t) / 4
        best, spent = min(best, dt), spent + 4 * dt
    return 2 * n**3 / best / 1e9
