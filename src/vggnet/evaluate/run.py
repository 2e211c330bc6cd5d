"""Score a trained checkpoint on a dataset split and write metrics.json plus the report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from vggnet.atomic import atomic_write_text
from vggnet.data.datasets import load_data
from vggnet.data.loader import make_batches
from vggnet.data.transforms import BatchTransform
from vggnet.errors import DataError
from vggnet.evaluate.metrics import predict, score
from vggnet.evaluate.report import require_report_libraries, write_report
from vggnet.train.checkpoint import model_from_checkpoint


def eval_transform(meta: dict, in_memory: bool) -> BatchTransform:
    """The test-time preprocessing a checkpoint was trained with: normalise (and resize) only."""
    return BatchTransform(mean=tuple(meta["mean"]), std=tuple(meta["std"]), flip=False,
                          size=meta["image_size"] if in_memory else None)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "val",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    workers: int = 4,
    progress: bool = True,
) -> dict:
    """Evaluate ``checkpoint`` on ``split`` of ``data``; a flat class-per-folder PATH counts whole.

    For ``cifar10`` and ``sample`` the val split is the one the run trained beside (same seed and
    fraction, read from the checkpoint).
    """
    require_report_libraries()
    model, meta = model_from_checkpoint(checkpoint)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    splits = load_data(data, val_fraction=meta.get("val_fraction", 0.1), seed=meta.get("seed", 0),
                       progress=progress, whole=True)
    if splits.classes != meta["classes"]:
        raise DataError(
            f"{data} has classes {splits.classes[:5]}... but the checkpoint was trained on {meta['classes'][:5]}..."
        )
    images = splits.split(split)
    model.to(device, memory_format=torch.channels_last)
    size = meta["image_size"]
    batches = make_batches(images, batch_size, train=False, device=device, crop=size,
                           scale=(meta.get("test_scale", 256),) * 2, workers=workers)
    transform = eval_transform(meta, splits.in_memory)
    result = predict(model, batches, lambda x: transform(x, train=False), bf16=False)
    metrics = {"split": split, "data": str(data), "checkpoint": str(checkpoint), **score(result, splits.classes)}
    out = Path(out)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_report(out, metrics, [], title=f"{meta['model']} evaluated on {data} ({split})")
    return metrics
