"""What one benchmark process runs: vggnet's default path, or the plain-PyTorch baseline.

Run as ``python -m vggnet.bench.workloads SPEC_JSON``; prints one JSON line. Each side gets a
fresh process so its peak memory is its own: on CPU the process's peak resident set (and its
growth after setup: model, data and inputs in place), on GPU the allocator's peak.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import torch
from PIL import Image

from vggnet.data.arrays import ImageArrays
from vggnet.device import autocast, autocast_dtype, channels_last_choice, resolve_device
from vggnet.fastpath import fast_path
from vggnet.models import create_model
from vggnet.models.registry import recipe_keywords

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _reset_peak() -> None:
    """Linux (4.0+): writing 5 to clear_refs resets this process's peak resident set to its current one."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    """This process's own peak resident set. Not ``ru_maxrss``: Linux carries that over from the
    parent across fork and exec, so a child of a large parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB on Linux, the best there is


class Memory:
    """Peak memory of what runs after :meth:`start` (model, data and inputs already in place)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated() / 2**20
        else:
            _reset_peak()  # setup's peak (a layout probe's copy of the model) is not the benchmark's
            self.base = _rss_mb()

    def report(self) -> dict[str, float]:
        peak = torch.cuda.max_memory_allocated() / 2 ** 20 if self.device.type == "cuda" else _peak_mb()
        return {"peak_memory_mb": round(peak, 1), "working_memory_mb": round(max(peak - self.base, 0.0), 1)}


def timed(step, warmup: int, steps: int, device: torch.device) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step``, after ``warmup`` untimed ones (GPU synchronised)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    return times


def model_kwargs(name: str, size: int) -> dict:
    """The head both sides build: CIFAR-size inputs get 10 classes (and, for a VGG, the linear head)."""
    if size > 64:
        return {}
    fields = {"head": "linear", "dropout": 0.0}
    return {"num_classes": 10, **{k: fields[k] for k in recipe_keywords(name) if k in fields}}


def _compiled(model: torch.nn.Module, spec: dict) -> torch.nn.Module:
    """vggnet's side: cuDNN picks the fastest kernels for the fixed shapes; ``compile`` wraps the
    model in torch.compile (``compile_mode`` 'reduce-overhead' replays CUDA graphs on a GPU)."""
    torch.backends.cudnn.benchmark = True
    if not spec.get("compile"):
        return model
    mode = spec.get("compile_mode", "default")
    return torch.compile(model, mode=None if mode == "default" else mode)


def _infer_onnx(spec: dict) -> dict:
    """--precision int8: the quantized file in onnxruntime; no PyTorch model is built in this process,
    so the peak memory is the int8 model's own."""
    from pathlib import Path

    from vggnet.weights.onnx_model import OnnxClassifier

    b, s = spec["batch_size"], spec["image_size"]
    net = OnnxClassifier(Path(spec["onnx"]).read_bytes())
    x = torch.randn(b, 3, s, s)
    memory = Memory(torch.device("cpu"))
    memory.start()
    times = timed(lambda: net(x), spec["warmup"], spec["steps"], torch.device("cpu"))
    return {"step_seconds": times, "precision": "int8", "channels_last": False, **memory.report()}


def infer(spec: dict) -> dict:
    """Forward passes on random inputs. vggnet: inference_mode, channels_last, autocast where it
    pays, optional torch.compile. Baseline: eager fp32 NCHW under no_grad."""
    if spec.get("onnx") and spec["side"] == "vggnet":
        return _infer_onnx(spec)
    device = resolve_device(spec.get("device"))
    b, s = spec["batch_size"], spec["image_size"]
    model = create_model(spec["model"], **model_kwargs(spec["model"], s)).eval().to(device)
    x = torch.randn(b, 3, s, s, device=device)
    if spec["side"] == "baseline":
        def step() -> None:
            with torch.no_grad():
                model(x)
        dtype, fmt, layout = None, torch.contiguous_format, None
    else:
        dtype = autocast_dtype(spec["precision"], device, training=False)
        cl, layout = channels_last_choice(spec.get("memory_format", "auto"), device, training=False, model=model,
                                          shape=(3, s, s), dtype=dtype, progress=False)
        fmt = torch.channels_last if cl else torch.contiguous_format
        model = model.to(memory_format=fmt)
        x = x.contiguous(memory_format=fmt)
        if spec.get("compile"):
            import torch._inductor.config as inductor

            inductor.freezing = True  # weights are constants here: fold and pre-pack them
        net = _compiled(model, spec)

        def step() -> None:
            with torch.inference_mode(), autocast(device.type, dtype):
                net(x)
    memory = Memory(device)
    memory.start()
    times = timed(step, spec["warmup"], spec["steps"], device)
    return {"step_seconds": times, "precision": "bf16" if dtype else "fp32",
            "channels_last": fmt == torch.channels_last, "auto_choice": fast_path(device).infer.reason,
            **({"layout_choice": layout} if layout else {}), **memory.report()}


def _arrays(spec: dict) -> ImageArrays:
    n = spec["batch_size"] * (spec["steps"] + spec["warmup"] + 1)
    if spec["data"] == "synthetic":
        s = spec["image_size"]
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=g)
        return ImageArrays(images, torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])
    from vggnet.data.datasets import load_data

    train = load_data(spec["data"], progress=False).train
    if not isinstance(train, ImageArrays):
        raise SystemExit("bench train reads small images (<= 64 px) held in memory, or 'synthetic'")
    return ImageArrays(train.images[:n], train.labels[:n], train.classes)


class _PerSample(torch.utils.data.Dataset):
    """What a torchvision user writes: PIL image -> RandomCrop(pad 4) -> flip -> ToTensor -> Normalize."""

    def __init__(self, arrays: ImageArrays, pad: int) -> None:
        self.images, self.labels, self.pad = arrays.images.permute(0, 2, 3, 1).numpy(), arrays.labels, pad
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = Image.fromarray(self.images[i])
        if self.pad:
            w, h = img.size
            padded = Image.new("RGB", (w + 2 * self.pad, h + 2 * self.pad))
            padded.paste(img, (self.pad, self.pad))
            x0, y0 = self.rng.integers(0, 2 * self.pad + 1, 2)
            img = padded.crop((x0, y0, x0 + w, y0 + h))
        if self.rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
        return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1), self.labels[i]


def train(spec: dict) -> dict:
    """Training steps, data pipeline included. vggnet: the training loop's own step on in-memory
    uint8 batches augmented on the device. Baseline: per-sample augmentation in a DataLoader,
    eager fp32 NCHW, SGD."""
    from vggnet.data.loader import ArrayBatches
    from vggnet.data.transforms import BatchTransform
    from vggnet.train.optim import build_optimizer
    from vggnet.train.recipes import get_recipe
    from vggnet.train.step import classification_loss, train_step

    device = resolve_device(spec.get("device"))
    arrays = _arrays(spec)
    s, b = arrays.images.shape[-1], spec["batch_size"]
    pad = 4 if s <= 64 else 0
    model = create_model(spec["model"], **model_kwargs(spec["model"], s)).to(device).train()
    recipe = get_recipe("cifar", {"batch_size": b})
    if spec["side"] == "baseline":
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=5e-4)
        loader = torch.utils.data.DataLoader(_PerSample(arrays, pad), batch_size=b, shuffle=True, drop_last=True,
                                             num_workers=spec.get("workers", 2), persistent_workers=False)
        batches = iter(loader)
        dtype, fmt, layout = None, torch.contiguous_format, None

        def step() -> None:
            x, y = next(batches)
            loss = classification_loss(model(x.to(device)), y.to(device))[0]  # GoogLeNet's aux heads too
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        dtype = autocast_dtype(spec["precision"], device)
        cl, layout = channels_last_choice(spec.get("memory_format", "auto"), device, model=model, shape=(3, s, s),
                                          dtype=dtype, progress=False)
        if spec.get("grad_checkpointing"):
            model.set_grad_checkpointing(True)
        fmt = torch.channels_last if cl else torch.contiguous_format
        model = model.to(memory_format=fmt)
        optimizer = build_optimizer(model, recipe)
        transform = BatchTransform(mean=MEAN, std=STD, pad_crop=pad, channels_last=fmt == torch.channels_last)
        batches = iter(ArrayBatches(arrays, b, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(0),
                                    device=device))
        net = _compiled(model, spec)

        def step() -> None:
            images, labels = next(batches)
            train_step(net, images, labels, transform, optimizer, dtype=dtype,
                       label_smoothing=recipe.label_smoothing)
    memory = Memory(device)
    memory.start()
    times = timed(step, spec["warmup"], spec["steps"], device)
    return {"step_seconds": times, "precision": "bf16" if dtype else "fp32",
            "channels_last": fmt == torch.channels_last, "auto_choice": fast_path(device).train.reason,
            **({"layout_choice": layout} if layout else {}), "image_size": s, **memory.report()}


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    torch.manual_seed(0)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    result = (infer if spec["kind"] == "infer" else train)(spec)
    print(json.dumps({**result, "threads": torch.get_num_threads()}))
