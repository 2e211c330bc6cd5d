"""The device work runs on when the caller does not say: the GPU if there is one."""

from __future__ import annotations

import torch

from vggnet.errors import VggnetError
from vggnet.fastpath import fast_path
from vggnet.layoutprobe import model_layout
from vggnet.names import MEMORY_FORMATS, PRECISIONS  # torch-free, for the command line


def autocast_dtype(precision: str, device: torch.device, training: bool = True) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ('auto', 'fp32', 'bf16') on ``device``; None is fp32.
    'auto' is what :mod:`vggnet.fastpath` measured fastest here, for training or for inference."""
    if precision not in PRECISIONS:
        raise VggnetError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        precision = fast_path(device).for_work(training).precision
    return torch.bfloat16 if precision == "bf16" else None


def channels_last_choice(memory_format: str, device: torch.device, training: bool = True,
                         model: torch.nn.Module | None = None, shape: tuple[int, ...] | None = None,
                         dtype: torch.dtype | None = None, progress: bool = True) -> tuple[bool, str]:
    """(whether to run NHWC, why) for ``memory_format`` ('auto', 'channels_last', 'contiguous').
    'auto' with the ``model`` and its input ``shape`` (C, H, W) is what :mod:`vggnet.layoutprobe`
    measured faster for that network (in autocast ``dtype``); without them, the machine's probe."""
    if memory_format not in MEMORY_FORMATS:
        raise VggnetError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, got {memory_format!r}")
    if memory_format != "auto":
        return memory_format == "channels_last", f"memory_format={memory_format}"
    machine = fast_path(device).for_work(training)
    if model is None or shape is None:
        return machine.channels_last, machine.reason
    choice = model_layout(model, shape, device, training=training, dtype=dtype, default=machine.channels_last,
                          progress=progress)
    return choice.channels_last, choice.reason



def autocast(device_type: str, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to ``dtype`` (as :func:`autocast_dtype` returns it); None runs in fp32 unchanged."""
    return torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


DEVICE_TYPES = ("cpu", "cuda", "mps")


def _unavailable(device: torch.device) -> str | None:
    """Why ``device`` cannot run here (None: it can)."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "this torch has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            return f"device {device} is not available ({built}); use --device cpu"
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return f"device {device} does not exist: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return f"device {device} is not available (no Apple GPU, or this torch was built without MPS); use --device cpu"
    if device.type == "mps" and device.index not in (None, 0):
        return f"device {device} does not exist: there is one MPS device, mps"
    return None


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device; None means cuda when available, else cpu. A name torch does not
    know, a device type vggnet does not run on, or a device this machine lacks is a one-line error
    here, before any data is read (torch would fail later, deep in the first copy to it)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        resolved = device
    else:
        try:
            resolved = torch.device(str(device).strip())
        except RuntimeError:
            resolved = None
        if resolved is None or resolved.type not in DEVICE_TYPES:
            raise VggnetError(f"unknown device {str(device)!r}; valid: cpu, cuda, cuda:N (a GPU's index), mps")
    why = _unavailable(resolved)
    if why:
        raise VggnetError(why)
    return resolved
