"""Classify image files with a checkpoint or pretrained weights: top-k labels with probabilities."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vggnet.data.decode import BadImage, decode_rgb
from vggnet.data.sources import FileRefused, read_regular, stat_regular
from vggnet.data.transforms import RescaleCrop, eval_transform
from vggnet.errors import DataError


def _checked(path: str | os.PathLike[str], how: Callable = stat_regular) -> Any:
    """``how(path)`` (a stat or a bounded read), its refusal as one line naming the image."""
    try:
        return how(path)
    except FileRefused as err:
        raise DataError(f"{path}: {err}; pass an image file") from None
    except OSError as err:
        raise DataError(f"cannot read image {path}: {err.strerror}") from None


def load_image(path: str | os.PathLike[str], meta: dict) -> torch.Tensor:
    """One image file as the uint8 CHW tensor the checkpoint's test pipeline expects."""
    path = Path(path)
    data = _checked(path, read_regular)  # a FIFO or /dev/zero is refused, not waited on or read forever
    try:
        img = decode_rgb(data)
    except BadImage as err:
        raise DataError(f"{path}: not a readable image ({err})") from None
    size = meta["image_size"]
    small = meta.get("in_memory", size <= 64)  # small images were used whole: fit, do not crop to Q
    return RescaleCrop(size if small else meta.get("test_scale", 256), size, random=False)(img)


@torch.inference_mode()
def predict_images(
    weights: str | os.PathLike[str], images: list[str | os.PathLike[str]], top_k: int = 5,
    model_name: str | None = None, batch_size: int = 16,
) -> list[dict]:
    """``[{'image': path, 'top5': [{'index', 'label', 'probability'}, ...]}, ...]``, best first.
    Each image must be a regular file within ``$VGGNET_MAX_FILE_MB``; any other is one line.

    ``weights``: a run dir or checkpoint, a known weight name (``vgg16``, ``vgg19.keras``) or a
    weight file; ``model_name`` only where the file does not say which network it holds. Each
    image is rescaled (smaller side to the test scale Q, 256 for ImageNet weights), centre-cropped
    and normalised as its weights expect. The key is ``top{k}``.
    """
    from vggnet.weights.load import model_for_inference

    for path in images:  # before the model loads: a FIFO or a device is one line at once
        _checked(path)
    model, meta = model_for_inference(weights, model_name)
    transform = eval_transform(meta, in_memory=True)
    probs = torch.cat([
        torch.softmax(model(transform(torch.stack([load_image(p, meta) for p in chunk]), train=False)).float(), 1)
        for chunk in (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    ])
    top = probs.topk(min(top_k, probs.shape[1]), dim=1)
    classes = meta["classes"]
    return [
        {"image": str(path), f"top{top_k}": [{"index": int(i), "label": classes[i], "probability": float(p)}
                                      for p, i in zip(top.values[n].tolist(), top.indices[n].tolist(), strict=True)]}
        for n, path in enumerate(images)
    ]
