"""Which images calibrate an int8 model and which score it, and feeding them to onnxruntime.

Calibration sets each activation's int8 range from what the network sees, so the images should be
the user's own; they are never the images the accuracy is measured on. On the data a run trained
on, calibration draws from its training images and the score is its held-out split (``split.json``);
on other data with the model's classes, the images left after calibration are scored; on data of
other classes (photos for ImageNet weights) nothing is scored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from vggnet.data.datasets import DataSplits, Split, subset_of
from vggnet.data.loader import make_batches
from vggnet.data.transforms import centre_scale, eval_transform
from vggnet.errors import DataError
from vggnet.evaluate.run import NothingHeldOut, held_out_record, load_split


@dataclass
class ImagePlan:
    """The calibration images, the images to score (None: see ``unscored``) and what they are in words."""

    splits: DataSplits
    calibrate: Split
    score: Split | None
    calibrate_are: str
    score_are: str | None
    unscored: str | None = None  # why nothing is scored


def _draw(pool: Split, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rest): ``n`` indices of ``pool`` drawn by ``seed``, and the others in order."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return order[:n].sort().values, order[n:].sort().values


def plan_images(source: str | os.PathLike[str], meta: dict, data: str | os.PathLike[str], count: int, seed: int = 0,
                progress: bool = True, strict: bool = False) -> ImagePlan:
    """Choose ``count`` calibration images from ``data`` and the images to score, never overlapping."""
    record = held_out_record([source])
    try:
        splits, split, images_are = load_split(source, meta, data, None, progress, strict, record)
    except NothingHeldOut:  # val_fraction=0 on this data: calibrate on it, score nothing
        splits, _, _ = load_split(source, meta, data, "all", progress, strict, record)
        calibrate = subset_of(splits.val, _draw(splits.val, min(count, len(splits.val)), seed)[0])
        return ImagePlan(splits, calibrate, None, f"{len(calibrate)} training images of {data} (seed {seed})", None,
                         f"the run trained on every image of {data} (val_fraction=0): none is left to score; pass "
                         "a test set as --data")
    ours = splits.classes == meta["classes"]
    scored = splits.val if split in ("val", "all") else splits.split(split)
    pool = splits.train if splits.train is not None and split != "all" else scored
    if pool is None or not len(pool):
        raise DataError(f"{data} has no images to calibrate on")
    chosen, rest = _draw(pool, min(count, len(pool)), seed)
    calibrate = subset_of(pool, chosen)
    where = "training images" if pool is not scored else "images"
    calibrate_are = f"{len(calibrate)} {where} of {data} (seed {seed})"
    if not ours:
        return ImagePlan(splits, calibrate, None, calibrate_are, None, f"{data} has other classes than the model")
    if pool is scored:  # one pool: score what calibration did not use
        if not len(rest):
            return ImagePlan(splits, calibrate, None, calibrate_are, None,
                             "calibration used every image; pass fewer --calibration-images to keep some for scoring")
        return ImagePlan(splits, calibrate, subset_of(pool, rest), calibrate_are,
                         f"the other {len(rest)} images of {data} (none used for calibration)")
    if scored is None or not len(scored):
        raise DataError(f"no images to score in {data} ({images_are}): none of them is there any more")
    return ImagePlan(splits, calibrate, scored, calibrate_are, images_are)


def batches_for(split: Split, meta: dict, in_memory: bool, batch_size: int, workers: int = 2,
                strict: bool = False):
    """(uint8 batches, transform) that feed ``split`` to the model as evaluation does."""
    q = centre_scale(meta, in_memory)
    batches = make_batches(split, batch_size, train=False, device=torch.device("cpu"), crop=meta["image_size"],
                           scale=(q, q), workers=workers, strict=strict)
    transform = eval_transform(meta, in_memory)
    return batches, (lambda x: transform(x, train=False))


class CalibrationReader:
    """onnxruntime's CalibrationDataReader protocol (``get_next``, ``rewind``) over uint8 batches,
    normalised as the model expects."""

    def __init__(self, batches, transform, input_name: str, on_batch=None) -> None:
        self.batches, self.transform, self.input_name, self.on_batch = batches, transform, input_name, on_batch
        self._it: Iterator | None = None

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._it is None:
            self._it = iter(self.batches)
        batch = next(self._it, None)
        if batch is None:
            return None
        images, _ = batch
        if self.on_batch is not None:
            self.on_batch(len(images))
        return {self.input_name: np.ascontiguousarray(self.transform(images).float().numpy())}

    def rewind(self) -> None:
        self._it = None
