"""A run's validation split, written beside it (``split.json``), so that resuming keeps the same
held-out images and ``vggnet evaluate`` on the data a run trained on scores exactly those images
-- never the training ones -- even after files were added or removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vggnet.atomic import atomic_write_text
from vggnet.data.datasets import DATA_NAMES, DataSplits, held_key
from vggnet.errors import CheckpointError

SPLIT_FILE = "split.json"


def data_identity(spec: str | os.PathLike[str]) -> str:
    """``cifar10``/``sample`` as they are; a path made absolute, so runs compare it from any folder."""
    text = os.fspath(spec)
    if text in DATA_NAMES or not Path(text).expanduser().exists():
        return text
    return str(Path(text).expanduser().resolve())


def make_record(spec: str | os.PathLike[str], data: DataSplits) -> dict:
    """What :func:`write_split` keeps: the data, its held-out images (None: the dataset's own val
    split) and the split's sizes, taken before any subset of them."""
    return {"data": data_identity(spec), "classes": data.classes,
            "held_out": None if data.held_out is None else [held_key(n) for n in data.held_out],
            "held_out_bytes": held_out_bytes(data, data.held_out),
            "held_out_pixels": held_out_pixels(data.val) if data.held_out is not None else None,
            "train_images": len(data.train) if data.train is not None else 0,
            "val_images": len(data.val) if data.val is not None else 0}


def write_split(run_dir: Path, record: dict) -> None:
    atomic_write_text(run_dir / SPLIT_FILE, json.dumps(record) + "\n")


def held_out_pixels(split: object) -> str | None:
    """The sha256 of the held-out images' pixels and labels (in-memory data: CIFAR-10): tells a copy
    of the release a run trained on, under another path, from other data."""
    import hashlib

    from vggnet.data.arrays import ImageArrays

    if not isinstance(split, ImageArrays):
        return None
    digest = hashlib.sha256(split.images.contiguous().numpy().tobytes())
    digest.update(split.labels.numpy().tobytes())
    return digest.hexdigest()


def held_out_bytes(data: DataSplits, names: list[str] | None) -> int | None:
    """The held-out files' total size: with their names, it tells a copy of the data a run trained
    on (moved or copied elsewhere) from other data that happens to use the same file names."""
    if names is None or data.source is None:
        return None
    try:
        return sum(data.source.size(n) for n in names)
    except (OSError, KeyError):
        return None


def read_split(run_dir: Path) -> dict | None:
    """The record written by :func:`write_split`; None when the run has none (made before it existed)."""
    path = run_dir / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        held = record["held_out"]
        if not isinstance(record["data"], str) or not (held is None or (isinstance(held, list)
                                                                         and all(isinstance(n, str) for n in held))):
            raise ValueError("unexpected contents")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"cannot read {path}: {err}; it records the run's held-out images") from None
    return record


def run_dir_of(checkpoint: str | os.PathLike[str]) -> Path | None:
    """The run folder a checkpoint path belongs to: the run dir itself, ``checkpoints/``, an epoch
    folder or its weights file; None for a file outside any run."""
    path = Path(checkpoint).resolve()
    for candidate in (path, *path.parents[:3]):
        if (candidate / "run.json").is_file():
            return candidate
    return None


def describe_change(record: dict, data: DataSplits) -> str | None:
    """What changed in the data since the split was recorded, in words; None when nothing did."""
    held = record["held_out"] or []
    now_val = len(data.val) if data.val is not None else 0
    now_train = len(data.train) if data.train is not None else 0
    gone_val = len(held) - now_val if record["held_out"] is not None else record["val_images"] - now_val
    train_delta = now_train - record["train_images"]
    if not gone_val and not train_delta:
        return None
    parts = []
    if train_delta:
        parts.append(f"{abs(train_delta)} training image{'s' * (abs(train_delta) != 1)} "
                     f"{'added' if train_delta > 0 else 'removed'}")
    if gone_val:
        parts.append(f"{abs(gone_val)} held-out image{'s' * (abs(gone_val) != 1)} "
                     f"{'gone' if gone_val > 0 else 'added'}")
    return ", ".join(parts)
