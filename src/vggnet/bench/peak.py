"""The machine's peaks, measured on the spot: the yardsticks for achieved GFLOPS.

Two shapes of work, because they do not run the same kernels: a square matrix product (the usual
peak figure) and VGG's own convolution (3x3, 256 channels at 56x56, conv3 of VGG-16), which on a
CPU can run faster than the matmul in bf16 (oneDNN's convolution kernels, not its GEMM). A model's
share of peak is taken against the higher of the two for the precision it ran in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

CONV_CHANNELS, CONV_SIDE = 256, 56  # VGG-16's conv3 block


def best_seconds(step: Callable[[], object], device: torch.device, seconds: float) -> float:
    """The fastest single call of ``step`` (averaged over groups of 4) within about ``seconds`` of trials."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        step()
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t = time.perf_counter()
        for _ in range(4):
            step()
        sync()
        dt = (time.perf_counter() - t) / 4
        best, spent = min(best, dt), spent + 4 * dt
    return best


def matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", n: int | None = None,
                seconds: float = 1.0) -> float:
    """Best GFLOPS of an n x n x n matrix product in ``dtype`` over about ``seconds`` of trials.

    ``n`` defaults to 2048 on CPU and 8192 on GPU, where smaller products cannot fill the chip.
    """
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return 2 * n**3 / best_seconds(lambda: a @ b, device, seconds) / 1e9


def conv_flops(batch: int, channels: int = CONV_CHANNELS, side: int = CONV_SIDE) -> int:
    """FLOPs of one 3x3 same-padded convolution, channels to channels, on (batch, channels, side, side)."""
    return 2 * batch * channels * channels * 9 * side * side


def conv_batch(device: torch.device) -> int:
    return 64 if device.type == "cuda" else 4


@torch.inference_mode()
def conv_peak(dtype: torch.dtype, device: torch.device | str = "cpu", seconds: float = 1.0) -> float:
    """Best GFLOPS of VGG's conv3 convolution forward in ``dtype``, NCHW or channels_last (the faster)."""
    device = torch.device(device)
    b = conv_batch(device)
    best = float("inf")
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(b, CONV_CHANNELS, CONV_SIDE, CONV_SIDE, device=device).to(dtype).contiguous(memory_format=fmt)
        w = (torch.randn(CONV_CHANNELS, CONV_CHANNELS, 3, 3, device=device) * 0.02).to(dtype)
        w = w.contiguous(memory_format=fmt)
        best = min(best, best_seconds(lambda x=x, w=w: F.conv2d(x, w, padding=1), device, seconds / 2))
    return conv_flops(b) / best / 1e9
