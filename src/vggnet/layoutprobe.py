"""``memory_format=auto`` for one network: NCHW or channels_last, whichever runs *this* network faster.

The machine-level probe (:mod:`vggnet.fastpath`) times one convolution, which settles the precision
(the arithmetic is the machine's) but not the layout: on the 2-core Xeon a single 3x3 convolution
trains 1.07-1.2x faster in channels_last at every CIFAR-sized shape tried, while the whole VGG-11-BN
trains 0.83x as fast in it (its 3-channel first convolution and its 2x2 and 4x4 maps lose more than
the rest gains) and ``vgg_fast`` 1.18x faster. So the layout is measured on the network itself:
a few forward (inference) or forward + backward (training) passes of a copy of it, on a small batch
of the real input size, in each layout, interleaved over rounds; the faster median wins. The result
is cached beside the machine's probe, keyed by machine, torch, network (class, parameter count),
input shape, work and precision, so it is measured once.
"""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass

import torch

from vggnet.errors import VggnetError
from vggnet.fastpath import fingerprint, probe_disabled, read_cache, store, time_once
from vggnet.progress import progress_bar

LAYOUT_VERSION = 1
SMALL_SIDE = 64  # CIFAR-sized inputs: a batch of 32 is cheap; larger ones are probed at batch 2


@dataclass(frozen=True)
class LayoutChoice:
    """The layout chosen for one network and kind of work, and the medians behind it."""

    channels_last: bool
    seconds: dict[str, float]  # 'nchw', 'channels_last' -> median seconds per pass
    source: str  # 'probe', 'cache' or 'default'

    @property
    def reason(self) -> str:
        if not self.seconds:
            return f"{'channels_last' if self.channels_last else 'NCHW'} (not measured)"
        ratio = self.seconds["nchw"] / self.seconds["channels_last"]
        return (f"{'channels_last' if self.channels_last else 'NCHW'} for this network: channels_last "
                f"{ratio:.2f}x NCHW (measured{' before' if self.source == 'cache' else ''})")


_MEMO: dict[str, LayoutChoice] = {}


def _key(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device, training: bool,
         dtype: torch.dtype | None) -> str:
    params = sum(p.numel() for p in model.parameters())
    return (f"layout v{LAYOUT_VERSION} | {fingerprint(device)} | {type(model).__name__} {params} "
            f"{'x'.join(map(str, shape))} {'train' if training else 'infer'} {dtype or 'fp32'}")


def _pass(model: torch.nn.Module, x: torch.Tensor, training: bool, dtype: torch.dtype | None):
    def autocast() -> torch.autocast:
        return torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def run() -> None:
        if not training:
            with torch.inference_mode(), autocast():
                model(x)
            return
        with autocast():
            out = model(x)
        (out[0] if isinstance(out, (tuple, list)) else out).float().sum().backward()
        model.zero_grad(set_to_none=True)

    return run


def measure(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device, training: bool,
            dtype: torch.dtype | None, rounds: int | None = None, progress: bool = True) -> dict[str, float]:
    """Median seconds per pass of a copy of ``model`` in each layout: {'nchw': s, 'channels_last': s}.
    One copy is switched between layouts (never two alive: VGG-16 is 0.5 GB); after each switch
    one untimed pass lets oneDNN reorder its weights, then one pass is timed."""
    small = max(shape[-2:]) <= SMALL_SIDE
    batch, rounds = (32, rounds or 5) if small else (2, rounds or 3)
    net = copy.deepcopy(model).to(device).train(training)
    x = torch.randn(batch, *shape, device=device)
    times: dict[str, list[float]] = {"nchw": [], "channels_last": []}
    with progress_bar("measuring the faster memory layout for this network (once)", rounds, enabled=progress,
                      unit="rounds") as bar:
        for r in range(rounds):
            for name in (list(times) if r % 2 == 0 else list(times)[::-1]):
                fmt = torch.channels_last if name == "channels_last" else torch.contiguous_format
                net.to(memory_format=fmt)
                run = _pass(net, x.contiguous(memory_format=fmt), training, dtype)
                run()  # untimed: oneDNN reorders the weights for the new layout
                times[name].append(time_once(run, device))
            bar.advance()
    return {name: statistics.median(seen) for name, seen in times.items()}


def _from_entry(entry: object) -> LayoutChoice | None:
    try:
        seconds = {k: float(entry[k]) for k in ("nchw", "channels_last")}  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None
    if not all(v > 0 for v in seconds.values()):
        return None
    return LayoutChoice(seconds["channels_last"] < seconds["nchw"], seconds, "cache")


def model_layout(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device, *, training: bool,
                 dtype: torch.dtype | None, default: bool, progress: bool = True) -> LayoutChoice:
    """The faster layout for ``model`` on inputs of ``shape`` (C, H, W): from memory, the cache, or
    measured now (then cached). ``default`` is used unmeasured where the probe is off."""
    if probe_disabled():
        return LayoutChoice(default, {}, "default")
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise VggnetError(f"a layout probe needs an input shape (C, H, W), got {shape}")
    key = _key(model, shape, device, training, dtype)
    if key in _MEMO:
        return _MEMO[key]
    entries = read_cache()
    found = _from_entry(entries.get(key))
    if found is None:
        seconds = measure(model, shape, device, training, dtype, progress=progress)
        found = LayoutChoice(seconds["channels_last"] < seconds["nchw"], seconds, "probe")
        store(entries, key, seconds)
    _MEMO[key] = found
    return found
