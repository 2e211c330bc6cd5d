"""Score a trained checkpoint on a dataset split and write metrics.json plus the report."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from vggnet.atomic import atomic_write_text
from vggnet.data.datasets import load_data
from vggnet.data.loader import make_batches
from vggnet.data.transforms import eval_transform
from vggnet.device import resolve_device
from vggnet.errors import DataError, VggnetError
from vggnet.evaluate.metrics import predict, score
from vggnet.evaluate.protocol import PROTOCOLS
from vggnet.evaluate.protocol_run import default_scales, protocol_predictions
from vggnet.evaluate.report import require_report_libraries, write_report
from vggnet.train.checkpoint import model_from_checkpoint


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "val",
    protocol: str = "center",
    scales: Sequence[int] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    workers: int = 4,
    progress: bool = True,
    strict: bool = False,
) -> dict:
    """Evaluate ``checkpoint`` (or an ensemble of several) on ``split`` of ``data``.

    A flat class-per-folder PATH counts whole. For ``cifar10`` and ``sample`` the val split is the
    one the (first) run trained beside: same seed and fraction, read from the checkpoint.
    ``protocol`` is one of :data:`~vggnet.evaluate.protocol.PROTOCOLS`, at test scales ``scales``
    (default: Q, or the paper's three for dense and multi-crop).
    """
    require_report_libraries()
    paths = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    if protocol not in PROTOCOLS:
        raise VggnetError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    models = [model_from_checkpoint(p) for p in paths]
    if not models:
        raise VggnetError("evaluate needs at least one checkpoint")
    model, meta = models[0]
    if any(m["classes"] != meta["classes"] for _, m in models):
        raise DataError("the checkpoints of an ensemble must share their classes")
    device = resolve_device(device)
    splits = load_data(data, val_fraction=meta.get("val_fraction", 0.1), seed=meta.get("seed", 0),
                       progress=progress, whole=True, strict=strict)
    if splits.classes != meta["classes"]:
        raise DataError(
            f"{data} has classes {splits.classes[:5]}... but the checkpoint was trained on {meta['classes'][:5]}..."
        )
    images = splits.split(split)
    default = default_scales(meta, protocol, splits.in_memory)
    scales = tuple(scales or default)
    if len(models) == 1 and protocol == "center" and scales == default:
        model.to(device, memory_format=torch.channels_last)  # the fast path: crops cut by the loader
        size = meta["image_size"]
        batches = make_batches(images, batch_size, train=False, device=device, crop=size,
                               scale=(scales[0], scales[0]), workers=workers, strict=strict)
        transform = eval_transform(meta, splits.in_memory)
        result = predict(model, batches, lambda x: transform(x, train=False), dtype=None)
    else:
        result = protocol_predictions(models, images, protocol, scales, device=device, progress=progress,
                                      strict=strict)
    metrics = {"split": split, "data": str(data), "checkpoint": [str(p) for p in paths] if len(paths) > 1
               else str(paths[0]), "protocol": protocol, "scales": list(scales), **score(result, splits.classes)}
    out = Path(out)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_report(out, metrics, [], title=f"{meta['model']} evaluated on {data} ({split})")
    return metrics
