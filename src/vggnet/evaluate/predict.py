"""Classify image files with a checkpoint or pretrained weights: top-k labels with probabilities.

Folders expand to the images below them by the dataset rules (:mod:`vggnet.data.layout`); each
image is read and decoded on its own, so one bad file is reported and skipped, not fatal.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from vggnet.data.decode import SNIFF_BYTES, BadImage, decode_rgb, image_size, looks_like_image
from vggnet.data.layout import candidate_images, skip_folder  # the dataset rule for "is an image"
from vggnet.data.sources import DirectorySource, head
from vggnet.data.transforms import RescaleCrop, centre_scale, eval_transform
from vggnet.errors import DataError
from vggnet.files import FileRefused, read_regular, stat_regular
from vggnet.progress import progress_bar
from vggnet.terminal import printable_text

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


def _refusal(path: PathLike, data: bool = False) -> tuple[str | None, bytes | None]:
    """(why ``path`` cannot be an image, or None; its bytes when ``data``): a FIFO or /dev/zero is
    refused by a stat or a non-blocking open, never waited on or read forever."""
    try:
        return None, read_regular(path) if data else stat_regular(path)
    except FileRefused as err:
        return f"{err}; pass an image file", None
    except OSError as err:
        return f"cannot be read ({err.strerror})", None


def decode_image_file(path: PathLike, max_pixels: int | None = None) -> Image.Image:
    """One image file decoded to RGB, or a one-line :class:`DataError` naming it; ``max_pixels``:
    an image larger than this (read from its header) is refused before it is decoded."""
    why, data = _refusal(path, data=True)
    if why is not None:
        raise DataError(f"{path}: {why}")
    try:
        if max_pixels is not None:
            w, h = image_size(io.BytesIO(data))  # type: ignore[arg-type]
            if w * h > max_pixels:
                raise DataError(f"{path}: {w} x {h} pixels, over the {max_pixels:,} this takes; compare crops "
                                "or tiles")
        return decode_rgb(data)  # type: ignore[arg-type]
    except BadImage as err:
        raise DataError(f"{path}: not a readable image ({err})") from None


def load_image(path: PathLike, meta: dict) -> torch.Tensor:
    """One image file as the uint8 CHW tensor the checkpoint's test pipeline expects."""
    return RescaleCrop(centre_scale(meta), meta["image_size"], random=False)(decode_image_file(path))


def folder_images(folder: PathLike) -> list[str]:
    """The image files below ``folder``, sorted: the walk and the rule of a dataset folder (hidden
    files and folders, desktop litter, run folders and non-images skipped; a link cycle read once).
    Special files named as images are kept, so that they are reported rather than silently lost."""
    root = Path(folder)
    source = DirectorySource(root)
    listing = source.files(skip=skip_folder)
    names = sorted(n for n, kind in listing.items() if not n.endswith("/"))

    def is_image(name: str) -> bool:  # no extension: the first bytes tell (a special file: no)
        return listing[name] == "file" and looks_like_image(head(source, name, SNIFF_BYTES))

    found = [str(root / n) for n in candidate_images(names, is_image)]
    if not found:
        raise DataError(f"{printable_text(str(root))} is a directory with no image files below it")
    return found


def image_files(paths: Sequence[PathLike]) -> list[str]:
    """``paths`` with each folder replaced by :func:`folder_images`; files stay as given."""
    out: list[str] = []
    for path in paths:
        out.extend(folder_images(path) if Path(path).is_dir() else [str(path)])
    return out


def _none_scored(paths: list[str], errors: dict[int, str]) -> DataError:
    """One line for a batch where no image could be scored: the only failure, or the first."""
    first = f"{paths[0]}: {errors[0]}"
    if len(paths) == 1:
        return DataError(first)
    return DataError(f"none of the {len(paths)} images could be scored; the first: {first}")


def _top(probs: torch.Tensor, top_k: int, classes: list[str]) -> list[dict]:
    top = probs.topk(min(top_k, probs.shape[0]))
    return [{"index": int(i), "label": classes[i], "probability": float(p)}
            for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


@torch.inference_mode()
def predict_images(
    weights: PathLike, images: Sequence[PathLike], top_k: int = 5, model_name: str | None = None,
    batch_size: int = 32, device: str | torch.device | None = None, progress: bool = False,
) -> list[dict]:
    """``[{'image': path, 'top5': [{'index', 'label', 'probability'}, ...]}, ...]``, best first;
    an image that cannot be read or decoded is ``{'image': path, 'error': why}``, logged as a
    warning and skipped, so one bad file does not lose the others. None scored: one DataError.

    ``images``: files, or folders (the images below them, see :func:`folder_images`). ``weights``:
    a run dir or checkpoint, a known weight name (``vgg16``, ``vgg19.keras``) or a weight file;
    ``model_name`` only where the file does not say which network it holds. Each image is rescaled
    (smaller side to the test scale Q, 256 for ImageNet weights), centre-cropped and normalised as
    its weights expect, then run ``batch_size`` at a time on ``device``. The key is ``top{k}``.
    """
    from vggnet.device import resolve_device
    from vggnet.weights.load import model_for_inference

    paths = image_files(images)
    errors = {n: why for n, p in enumerate(paths) if (why := _refusal(p)[0]) is not None}
    if len(errors) == len(paths):  # before the model loads: a FIFO or a device is one line at once
        raise _none_scored(paths, errors)
    dev = resolve_device(device)
    model, meta = model_for_inference(weights, model_name)
    model.to(dev)
    todo = [n for n in range(len(paths)) if n not in errors]
    scored = _score(model, meta, paths, todo, errors, batch_size, dev, progress)
    if not scored:
        raise _none_scored(paths, errors)
    for n in sorted(errors):
        log.warning("%s: %s; skipped", paths[n], errors[n])
    key, classes = f"top{top_k}", meta["classes"]
    return [{"image": p, "error": errors[n]} if n in errors else {"image": p, key: _top(scored[n], top_k, classes)}
            for n, p in enumerate(paths)]


def _score(model: torch.nn.Module, meta: dict, paths: list[str], todo: list[int], errors: dict[int, str],
           batch_size: int, dev: torch.device, progress: bool) -> dict[int, torch.Tensor]:
    """Class probabilities for the images ``todo`` (indices into ``paths``), ``batch_size`` at a
    time; an image that fails to load goes into ``errors`` (without its path) instead."""
    transform = eval_transform(meta, in_memory=True)
    scored: dict[int, torch.Tensor] = {}
    chunks = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    with progress_bar("predict", len(todo), enabled=progress and len(chunks) > 3, unit="images") as bar:
        for chunk in chunks:
            loaded: dict[int, torch.Tensor] = {}
            for n in chunk:
                try:
                    loaded[n] = load_image(paths[n], meta)
                except DataError as err:
                    errors[n] = str(err).removeprefix(f"{paths[n]}: ")
            if loaded:
                x = transform(torch.stack(list(loaded.values())).to(dev), train=False)
                probs = torch.softmax(model(x).float(), 1).cpu()
                scored.update(zip(loaded, probs, strict=True))
            bar.advance(len(chunk))
    return scored


def results_csv(results: list[dict]) -> str:
    """The results as CSV text, one row per image (wide): ``image, rank1_label, rank1_probability,
    ..., error``, so ``pandas.read_csv`` gives one row per file, aligned with a list of images."""
    ranks = max((len(v) for r in results for k, v in r.items() if k.startswith("top")), default=0)
    header = ["image", *[f"rank{i}_{col}" for i in range(1, ranks + 1) for col in ("label", "probability")], "error"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in results:
        top = next((v for k, v in r.items() if k.startswith("top")), [])
        cells = [c for t in top for c in (t["label"], repr(t["probability"]))]
        writer.writerow([r["image"], *cells, *[""] * (2 * ranks - len(cells)), r.get("error", "")])
    return buf.getvalue()
