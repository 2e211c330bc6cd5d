"""``precision=auto``: the fastest precision and memory format on this device, by measurement.

Which arithmetic is fastest depends on the machine, not on a rule: on a 2-core Intel Xeon without
AMX, oneDNN's bf16 convolutions ran at half the fp32 rate; on a 2-core AMD EPYC (Zen 4, avx512_bf16)
they ran faster than fp32. So a short probe times a VGG-shaped 3x3 convolution (plus ReLU) in fp32
and bf16 autocast, NCHW and channels_last, forward only (inference) and forward + backward
(training), on the device in use, interleaved over rounds, and keeps the fastest of each. An
alternative wins only by more than :data:`MARGIN` over fp32 NCHW, or by more than the spread the
probe measured where the machine is noisier than that, so noise does not flip the choice.

The result is cached per machine and torch version in ``$VGGNET_HOME/fastpath.json``, so the probe
runs once (about two seconds on 2 CPU cores). ``VGGNET_PROBE=off`` skips it: auto then means fp32,
channels_last (what the probe itself would say on a machine where nothing else wins).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass

import torch

from vggnet.atomic import atomic_write_text
from vggnet.cache import cache_dir
from vggnet.errors import VggnetError
from vggnet.files import FileRefused, read_regular
from vggnet.progress import progress_bar

PROBE_ENV = "VGGNET_PROBE"
MARGIN = 0.05
"""How much faster (as a fraction of the fp32 NCHW time) another variant must be to be chosen."""
PROBE_VERSION = 2  # 2: interleaved rounds and a measured noise margin; older entries are measured again
CACHE_FILE = "fastpath.json"
CACHE_BOUND = 1 << 20  # the cache holds a few machines' entries; a larger file is not ours
VARIANTS = (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True))  # (precision, channels_last)


@dataclass(frozen=True)
class Choice:
    """What ``precision=auto`` means for one kind of work on one device, and the timings behind it."""

    precision: str  # 'fp32' or 'bf16'
    channels_last: bool
    seconds: dict[str, float]  # 'fp32/nchw' ... 'bf16/channels_last' -> the probe's median time
    source: str  # 'probe' (measured now), 'cache' (measured before, on this machine) or 'default'
    margin: float = MARGIN  # how much faster than fp32 NCHW a variant had to be: MARGIN or the noise

    @property
    def reason(self) -> str:
        """One line: what was chosen and how it compares with plain fp32 NCHW."""
        if not self.seconds:
            return f"{self.precision}, {_layout(self.channels_last)} ({PROBE_ENV}=off: not measured)"
        base = self.seconds[_key("fp32", False)]
        mine = self.seconds[_key(self.precision, self.channels_last)]
        others = ", ".join(f"{k} {base / v:.2f}x" for k, v in self.seconds.items() if k != _key("fp32", False))
        return (f"{self.precision}, {_layout(self.channels_last)}: {base / mine:.2f}x fp32 NCHW "
                f"(measured{' before' if self.source == 'cache' else ''}: {others}; "
                f"a win needs > {self.margin:.0%})")


@dataclass(frozen=True)
class FastPath:
    """The choices for inference (forward only) and training (forward and backward)."""

    infer: Choice
    train: Choice

    def for_work(self, training: bool) -> Choice:
        return self.train if training else self.infer


def _layout(channels_last: bool) -> str:
    return "channels_last" if channels_last else "NCHW"


def _key(precision: str, channels_last: bool) -> str:
    return f"{precision}/{'channels_last' if channels_last else 'nchw'}"


def decide(seconds: dict[str, float], source: str = "probe", noise: float = 0.0) -> Choice:
    """The fastest variant in ``seconds`` (keys as :func:`_key` writes them); fp32 NCHW unless
    another is faster by more than the margin: :data:`MARGIN`, or the measured ``noise`` (how
    uncertain fp32 NCHW's median is) where that is larger. fp32 channels_last, the usual default,
    is kept unless it is slower than NCHW by more than :data:`MARGIN`. Pure: timings in, choice out."""
    margin = max(MARGIN, noise if isinstance(noise, (int, float)) and noise == noise else 0.0)
    base_key = _key("fp32", False)
    if base_key not in seconds or any(not (v > 0) for v in seconds.values()):
        raise VggnetError(f"fast-path timings need a positive {base_key} entry, got {seconds}")
    best = min(seconds, key=seconds.__getitem__)
    if seconds[best] >= seconds[base_key] * (1 - margin):
        best = base_key
        # channels_last alone at fp32 is the usual default; keep it unless it is slower beyond the margin
        cl = _key("fp32", True)
        if cl in seconds and seconds[cl] <= seconds[base_key] * (1 + MARGIN):  # noise never excuses a loss
            best = cl
    precision, layout = best.split("/")
    return Choice(precision, layout == "channels_last", dict(seconds), source, margin)


def fingerprint(device: torch.device) -> str:
    """What the choice depends on: the processor (model and its instruction set) or the GPU, and torch."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        hw = f"cuda {props.name} sm{props.major}{props.minor}"
    elif device.type == "mps":
        hw = f"mps {platform.machine()}"
    else:
        hw = f"cpu {cpu_model()} threads={torch.get_num_threads()} {torch.backends.cpu.get_cpu_capability()}"
    digest = hashlib.sha256(_cpu_flags().encode()).hexdigest()[:12] if device.type == "cpu" else ""
    return f"{hw} {digest} torch {torch.__version__}".strip()


@functools.cache
def _cpuinfo() -> str:
    """/proc/cpuinfo, read once per process (empty where there is none)."""
    try:
        return read_regular("/proc/cpuinfo", bound=16 << 20).decode(errors="replace")
    except (OSError, FileRefused):
        return ""


def cpu_model() -> str:
    """The processor's model name, as benchmark results and the probe's cache name the machine."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_name(device: torch.device) -> str:
    """The CPU model and core count, or the GPU name: how results name the machine they ran on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {os.cpu_count()} cores"


def _cpu_flags() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return line.split(":", 1)[1].strip()
    return ""


def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (``avx512_vnni``, ``amx_int8``, ...); empty where unknown."""
    return frozenset(_cpu_flags().split())


def _shape(device: torch.device) -> tuple[int, int, int]:
    """(batch, channels, side) of the probe: VGG's conv3 block on a CPU, a larger slice on a GPU."""
    return (64, 256, 56) if device.type == "cuda" else (4, 128, 56)


def time_once(fn, device: torch.device) -> float:
    """Seconds of one call of ``fn``, the GPU synchronised on both sides."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _work(conv: torch.nn.Module, x: torch.Tensor, bf16: bool):
    """The two timed calls of one variant: a forward in inference mode, and a forward + backward."""
    def autocast() -> torch.autocast:
        return torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16)

    def forward() -> None:
        with torch.inference_mode(), autocast():
            torch.relu(conv(x))

    def step() -> None:
        with autocast():
            out = torch.relu(conv(x.requires_grad_()))
        out.float().sum().backward()
        x.grad = None
        conv.zero_grad(set_to_none=True)

    return forward, step


def _calls(device: torch.device) -> dict[tuple[str, str], object]:
    """(work, variant) -> the call to time; each variant has its own copy of the convolution."""
    batch, channels, side = _shape(device)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device)
    calls = {}
    for precision, channels_last in VARIANTS:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        mine = copy.deepcopy(conv).to(memory_format=fmt)
        x = torch.randn(batch, channels, side, side, device=device).contiguous(memory_format=fmt)
        forward, step = _work(mine, x, precision == "bf16")
        calls[("infer", _key(precision, channels_last))] = forward
        calls[("train", _key(precision, channels_last))] = step
    return calls


def _spread(times: list[float]) -> float:
    """How uncertain a median of ``times`` is, as a fraction of it: their interquartile range over
    the median, divided by the square root of their number (medians of more rounds vary less)."""
    if len(times) < 4:
        return 0.0
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return (q3 - q1) / median / math.sqrt(len(times))


def probe(device: torch.device, rounds: int = 7, progress: bool = True) -> dict[str, dict[str, float]]:
    """Time each variant's forward and forward + backward: ``{"infer": {...}, "train": {...},
    "noise": {"infer": f, "train": f}}`` (medians in seconds; noise: how uncertain fp32 NCHW's median
    is, :func:`_spread`).

    The variants are interleaved: each round times every one once, in an order that rotates, so a
    slow spell on a shared machine falls on all of them alike rather than on whichever ran then. A
    variant over twice as slow as fp32 NCHW in the first round cannot win and is not timed again.
    """
    calls = _calls(device)
    base = _key("fp32", False)
    with progress_bar(f"measuring the fastest precision on {device.type} (once)", rounds + 1,
                      enabled=progress, unit="rounds") as bar:
        for fn in calls.values():  # warm-up: oneDNN builds its kernels on the first call
            fn()
        bar.advance()
        times: dict[tuple[str, str], list[float]] = {k: [] for k in calls}
        order = list(calls)
        for r in range(rounds):
            for item in order[r % len(order):] + order[:r % len(order)]:
                times[item].append(time_once(calls[item], device))
            if r == 0:  # hopeless variants drop out, keeping their one time
                order = [(work, key) for work, key in order if times[(work, key)][0] <= 2 * times[(work, base)][0]]
            bar.advance()
    result: dict[str, dict[str, float]] = {"infer": {}, "train": {}, "noise": {}}
    for (work, key), seen in times.items():
        result[work][key] = sorted(seen)[len(seen) // 2]
    for work in ("infer", "train"):
        result["noise"][work] = round(_spread(times[(work, base)]), 4)
    return result


def probe_disabled() -> bool:
    """``VGGNET_PROBE=off`` (or 0, no, false): nothing is measured; auto takes the defaults."""
    return os.environ.get(PROBE_ENV, "").strip().lower() in ("off", "0", "no", "false")


def read_cache() -> dict:
    path = cache_dir(CACHE_FILE)
    try:
        entries = json.loads(read_regular(path, bound=CACHE_BOUND))
    except (OSError, FileRefused, ValueError):
        return {}  # absent, damaged or not ours: measured again and rewritten
    return entries if isinstance(entries, dict) else {}


def store(entries: dict, key: str, entry: dict) -> None:
    """Add ``entry`` (dated) under ``key`` to the cache ``entries`` as read, and write them back; a
    read-only home is no error: the choice then holds for this process only."""
    entries[key] = {**entry, "measured": time.strftime("%Y-%m-%d")}
    with contextlib.suppress(OSError, VggnetError):
        atomic_write_text(cache_dir(CACHE_FILE), json.dumps(entries, indent=1, sort_keys=True))


def _from_entry(entry: object) -> FastPath | None:
    try:
        if entry.get("version") != PROBE_VERSION:  # type: ignore[union-attr]
            return None
        noise = entry.get("noise") or {}  # type: ignore[union-attr]
        return FastPath(decide(entry["infer"], "cache", noise.get("infer", 0.0)),  # type: ignore[index]
                        decide(entry["train"], "cache", noise.get("train", 0.0)))  # type: ignore[index]
    except (KeyError, TypeError, AttributeError, VggnetError):  # not an entry this version wrote
        return None


_MEMO: dict[str, FastPath] = {}


def adopt(device: torch.device, path: FastPath) -> None:
    """Use ``path`` for ``device`` in this process from now on (a DDP rank taking rank 0's choice)."""
    if not isinstance(path, FastPath):
        raise VggnetError(f"a fast path is a FastPath, got {type(path).__name__}")
    _MEMO[fingerprint(device)] = path


def fast_path(device: torch.device) -> FastPath:
    """The choices for ``device``: from memory, the cache, or a probe now (then cached)."""
    if probe_disabled():
        choice = Choice("fp32", True, {}, "default")
        return FastPath(choice, choice)
    key = fingerprint(device)
    if key in _MEMO:
        return _MEMO[key]
    entries = read_cache()
    found = _from_entry(entries.get(key))
    if found is None:
        timings = probe(device)
        noise = timings.get("noise", {})
        found = FastPath(decide(timings["infer"], noise=noise.get("infer", 0.0)),
                         decide(timings["train"], noise=noise.get("train", 0.0)))
        store(entries, key, {**timings, "version": PROBE_VERSION})
    _MEMO[key] = found
    return found

