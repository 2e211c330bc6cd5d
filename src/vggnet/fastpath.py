"""``precision=auto``: the fastest precision and memory format on this device, by measurement.

Which arithmetic is fastest depends on the machine, not on a rule: on a 2-core Intel Xeon without
AMX, oneDNN's bf16 convolutions ran at half the fp32 rate; on a 2-core AMD EPYC (Zen 4, avx512_bf16)
they ran faster than fp32. So a short probe times a VGG-shaped 3x3 convolution (plus ReLU) in fp32
and bf16 autocast, NCHW and channels_last, forward only (inference) and forward + backward
(training), on the device in use, and keeps the fastest of each. An alternative wins only by more
than :data:`MARGIN` over fp32 NCHW, so noise does not flip the choice.

The result is cached per machine and torch version in ``$VGGNET_HOME/fastpath.json``, so the probe
runs once (about two seconds on 2 CPU cores). ``VGGNET_PROBE=off`` skips it: auto then means fp32,
channels_last (what the probe itself would say on a machine where nothing else wins).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
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

    @property
    def reason(self) -> str:
        """One line: what was chosen and how it compares with plain fp32 NCHW."""
        if not self.seconds:
            return f"{self.precision}, {_layout(self.channels_last)} ({PROBE_ENV}=off: not measured)"
        base = self.seconds[_key("fp32", False)]
        mine = self.seconds[_key(self.precision, self.channels_last)]
        others = ", ".join(f"{k} {base / v:.2f}x" for k, v in self.seconds.items() if k != _key("fp32", False))
        return (f"{self.precision}, {_layout(self.channels_last)}: {base / mine:.2f}x fp32 NCHW "
                f"(measured{' before' if self.source == 'cache' else ''}: {others})")


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


def decide(seconds: dict[str, float], source: str = "probe") -> Choice:
    """The fastest variant in ``seconds`` (keys as :func:`_key` writes them); fp32 NCHW unless
    another is faster by more than :data:`MARGIN`. Pure: the probe's timings in, the choice out."""
    base_key = _key("fp32", False)
    if base_key not in seconds or any(not (v > 0) for v in seconds.values()):
        raise VggnetError(f"fast-path timings need a positive {base_key} entry, got {seconds}")
    best = min(seconds, key=seconds.__getitem__)
    if seconds[best] >= seconds[base_key] * (1 - MARGIN):
        best = base_key
        # channels_last alone at fp32 is the usual default; keep it unless it is slower beyond the margin
        cl = _key("fp32", True)
        if cl in seconds and seconds[cl] <= seconds[base_key] * (1 + MARGIN):
            best = cl
    precision, layout = best.split("/")
    return Choice(precision, layout == "channels_last", dict(seconds), source)


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


def _cpu_flags() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return line.split(":", 1)[1].strip()
    return ""


def _shape(device: torch.device) -> tuple[int, int, int]:
    """(batch, channels, side) of the probe: VGG's conv3 block on a CPU, a larger slice on a GPU."""
    return (64, 256, 56) if device.type == "cuda" else (4, 128, 56)


def _time(fn, device: torch.device, repeats: int, give_up: float = float("inf")) -> float:
    """Median seconds of ``fn()`` after one warm-up call; a variant whose first timed call already
    takes over ``give_up`` seconds cannot win and is not timed again (the probe stays short where
    one precision is several times slower)."""
    fn()
    times: list[float] = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        if times[0] > give_up:
            break
    return sorted(times)[len(times) // 2]


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


def probe(device: torch.device, repeats: int = 5, progress: bool = True) -> dict[str, dict[str, float]]:
    """Time each variant's forward and forward + backward: ``{"infer": {...}, "train": {...}}``."""
    batch, channels, side = _shape(device)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device)
    timings: dict[str, dict[str, float]] = {"infer": {}, "train": {}}
    base = _key("fp32", False)
    with progress_bar(f"measuring the fastest precision on {device.type} (once)", 2 * len(VARIANTS),
                      enabled=progress, unit="runs") as bar:
        for precision, channels_last in VARIANTS:  # fp32 NCHW first: the others are cut short against it
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            conv = conv.to(memory_format=fmt)
            x = torch.randn(batch, channels, side, side, device=device).contiguous(memory_format=fmt)
            forward, step = _work(conv, x, precision == "bf16")
            for work, fn in (("infer", forward), ("train", step)):
                give_up = 2 * timings[work][base] if base in timings[work] else float("inf")
                timings[work][_key(precision, channels_last)] = _time(fn, device, repeats, give_up)
                bar.advance()
    return timings


def _read_cache() -> dict:
    path = cache_dir(CACHE_FILE)
    try:
        entries = json.loads(read_regular(path, bound=CACHE_BOUND))
    except (OSError, FileRefused, ValueError):
        return {}  # absent, damaged or not ours: measured again and rewritten
    return entries if isinstance(entries, dict) else {}


def _from_entry(entry: object) -> FastPath | None:
    try:
        return FastPath(decide(entry["infer"], "cache"), decide(entry["train"], "cache"))  # type: ignore[index]
    except (KeyError, TypeError, VggnetError):
        return None


_MEMO: dict[str, FastPath] = {}


def fast_path(device: torch.device) -> FastPath:
    """The choices for ``device``: from memory, the cache, or a probe now (then cached)."""
    if os.environ.get(PROBE_ENV, "").strip().lower() in ("off", "0", "no", "false"):
        choice = Choice("fp32", True, {}, "default")
        return FastPath(choice, choice)
    key = fingerprint(device)
    if key in _MEMO:
        return _MEMO[key]
    entries = _read_cache()
    found = _from_entry(entries.get(key))
    if found is None:
        timings = probe(device)
        found = FastPath(decide(timings["infer"]), decide(timings["train"]))
        entries[key] = {"infer": timings["infer"], "train": timings["train"], "measured": time.strftime("%Y-%m-%d")}
        with contextlib.suppress(OSError, VggnetError):  # a read-only home: the choice holds for this process
            atomic_write_text(cache_dir(CACHE_FILE), json.dumps(entries, indent=1, sort_keys=True))
    _MEMO[key] = found
    return found

