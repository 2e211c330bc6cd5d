"""Does the data path or the device limit training from prepared shards? Measures both, apart.

    python benchmarks/shard_feed.py --device cuda --workers 16 [--images 8000] [--model vgg16] [--json]

1. Writes ``--images`` JPEGs of ImageNet's typical size (500x375, from real photographs by
   ``benchmarks/photos.py``) into ``--classes`` class folders, and times ``vggnet prepare`` on them
   (short side 256, quality 90, ``--workers`` processes).
2. **Data path**: vggnet's training loader over the shards (``--workers`` DataLoader workers,
   scale 256, random 224 crop, pinned memory) delivering uint8 batches onto the device, no model.
3. **Device**: the training step alone (``--model``, SGD, bf16 autocast on CUDA, fp32 on CPU,
   channels_last) on batches already on the device, after ``--warmup`` steps.

The slower of the two is the bottleneck; both are images per second on this machine. On a CPU
the same script runs (small ``--model`` and ``--image-size`` keep it short) to check it works.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from photos import load_photos, make_photos

from vggnet import create_model
from vggnet.data.datasets import load_data
from vggnet.data.loader import make_batches
from vggnet.data.prepare import Options, prepare
from vggnet.data.transforms import BatchTransform
from vggnet.fastpath import cpu_model


def make_dataset(root: Path, images: int, classes: int) -> Path:
    photos = load_photos()
    for k in range(classes):
        make_photos(root / "data" / "train" / f"c{k:04d}", images // classes, seed=k, photos=photos)
    return root / "data"


def time_prepare(data: Path, out: Path, workers: int) -> float:
    began = time.perf_counter()
    manifest = prepare(data, out, Options(256, 90), workers=workers, progress=False)
    return manifest["splits"]["train"]["images"] / (time.perf_counter() - began)


def time_loader(out: Path, args: argparse.Namespace, device: torch.device) -> float:
    """Images per second the loader puts on the device (the first batch, worker start-up, left out)."""
    train = load_data(out, progress=False).train
    batches = make_batches(train, args.batch_size, train=True, device=device, crop=args.image_size,
                           scale=(args.scale, args.scale), workers=args.workers,
                           generator=torch.Generator().manual_seed(0))
    batches.set_epoch(0)
    seen, began = 0, None
    for images, _ in batches:
        images = images.to(device, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if began is None:
            began = time.perf_counter()
            continue
        seen += len(images)
    return seen / (time.perf_counter() - began) if seen else float("nan")


def time_step(args: argparse.Namespace, device: torch.device, classes: int) -> float:
    """Images per second of the training step alone, on uint8 batches already on the device."""
    model = create_model(args.model, num_classes=classes).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    transform = BatchTransform(mean=(0.485, 0.456, 0.406))
    x = torch.randint(0, 256, (args.batch_size, 3, args.image_size, args.image_size), dtype=torch.uint8,
                      device=device)
    y = torch.randint(0, classes, (args.batch_size,), device=device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(transform(x, train=True)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=8000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--scale", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(Path(tmp), args.images, args.classes)
        prepare_rate = time_prepare(data, Path(tmp) / "shards", args.workers)
        loader_rate = time_loader(Path(tmp) / "shards", args, device)
    step_rate = time_step(args, device, args.classes)
    report = {"benchmark": "shard_feed", "device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else cpu_model(), "workers": args.workers, "model": args.model, "image_size": args.image_size,
              "batch_size": args.batch_size, "images": args.images, "prepare_img_s": round(prepare_rate, 1),
              "loader_img_s": round(loader_rate, 1), "train_step_img_s": round(step_rate, 1),
              "bottleneck": "data path" if loader_rate < step_rate else "device"}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['device']}, {args.workers} workers, {args.model} at {args.image_size}, batch {args.batch_size}")
    print(f"  prepare      {prepare_rate:9.1f} img/s (one-off)")
    print(f"  data path    {loader_rate:9.1f} img/s (shards -> device)")
    print(f"  train step   {step_rate:9.1f} img/s (device alone)")
    print(f"  bottleneck: {report['bottleneck']}")


if __name__ == "__main__":
    main()
