"""Classify image files with a trained checkpoint: top-k labels with probabilities."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vggnet.data.folders import BadImage, decode_rgb
from vggnet.data.transforms import RescaleCrop, eval_transform
from vggnet.errors import DataError
from vggnet.train.checkpoint import model_from_checkpoint


def load_image(path: str | os.PathLike[str], meta: dict) -> torch.Tensor:
    """One image file as the uint8 CHW tensor the checkpoint's test pipeline expects."""
    path = Path(path)
    try:
        img = decode_rgb(path.read_bytes())
    except BadImage as err:
        raise DataError(f"{path}: not a readable image ({err})") from None
    size = meta["image_size"]
    small = meta.get("in_memory", size <= 64)  # small images were used whole: fit, do not crop to Q
    return RescaleCrop(size if small else meta.get("test_scale", 256), size, random=False)(img)


@torch.no_grad()
def predict_images(
    checkpoint: str | os.PathLike[str], images: list[str | os.PathLike[str]], top_k: int = 5
) -> list[dict]:
    """``[{'image': path, 'top': [{'label', 'index', 'probability'}, ...]}, ...]``, best first."""
    model, meta = model_from_checkpoint(checkpoint)
    batch = torch.stack([load_image(p, meta) for p in images])
    transform = eval_transform(meta, in_memory=True)
    probs = torch.softmax(model(transform(batch, train=False)).float(), dim=1)
    top = probs.topk(min(top_k, probs.shape[1]), dim=1)
    classes = meta["classes"]
    return [
        {"image": str(path), "top": [{"label": classes[i], "index": int(i), "probability": float(p)}
                                      for p, i in zip(top.values[n].tolist(), top.indices[n].tolist(), strict=True)]}
        for n, path in enumerate(images)
    ]
