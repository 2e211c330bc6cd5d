"""Classify image files with a checkpoint or pretrained weights: top-k labels with probabilities."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vggnet.data.decode import BadImage, decode_rgb
from vggnet.data.transforms import RescaleCrop, eval_transform
from vggnet.errors import DataError


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


@torch.inference_mode()
def predict_images(
    weights: str | os.PathLike[str], images: list[str | os.PathLike[str]], top_k: int = 5,
    model_name: str | None = None, batch_size: int = 16,
) -> list[dict]:
    """``[{'image': path, 'top5': [{'index', 'label', 'probability'}, ...]}, ...]``, best first.

    ``weights``: a run dir or checkpoint, a known weight name (``vgg16``, ``vgg19.keras``) or a
    weight file; ``model_name`` only where the file does not say which network it holds. Each
    image is rescaled (smaller side to the test scale Q, 256 for ImageNet weights), centre-cropped
    and normalised as its weights expect. The key is ``top{k}``.
    """
    from vggnet.weights.load import model_for_inference

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
