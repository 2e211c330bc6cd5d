"""The device work runs on when the caller does not say: the GPU if there is one."""

from __future__ import annotations

import torch

from vggnet.errors import VggnetError

PRECISIONS = ("auto", "fp32", "bf16")


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 math is faster than fp32 here: on a GPU that supports it, and on CPUs with AMX
    tiles. Without AMX (AVX-512 BF16 only) oneDNN's bf16 kernels run at about half the fp32 rate
    (measured: `vggnet bench infer` reports both matrix-multiply peaks), so fp32 is the fast path."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ('auto', 'fp32', 'bf16') on ``device``; None is fp32."""
    if precision not in PRECISIONS:
        raise VggnetError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" or (precision == "auto" and fast_bf16(device)):
        return torch.bfloat16
    return None


def autocast(device_type: str, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to ``dtype`` (as :func:`autocast_dtype` returns it); None runs in fp32 unchanged."""
    return torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device; None means cuda when available, else cpu."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
