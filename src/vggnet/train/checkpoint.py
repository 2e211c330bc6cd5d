"""Checkpoints: weights in safetensors, run state in a weights-only torch file, written atomically.

Each checkpoint is a folder ``checkpoints/epoch-NNNN/`` with ``model.safetensors`` (the weights,
plus everything needed to rebuild and use the model in its metadata: name, keyword arguments,
class names, normalisation) and ``state.pt`` (optimizer, scheduler, RNG states, history). The
folder is written under a temporary name and renamed, then ``checkpoints/LATEST`` is replaced
atomically; a crash or a full disk at any moment leaves the previous checkpoint whole and named.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vggnet.atomic import atomic_write_text
from vggnet.errors import CheckpointError, one_line

WEIGHTS = "model.safetensors"
STATE = "state.pt"
LATEST = "LATEST"
META_KEY = "vggnet"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unwrap(model: nn.Module) -> nn.Module:
    """The module whose state dict has the plain names (strips torch.compile and DDP wrappers)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def save_weights(path: Path, model: nn.Module, meta: dict) -> None:
    """Write the weights of ``model`` with ``meta`` (JSON) in the safetensors header."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in unwrap(model).state_dict().items()}
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(meta)})


def save_checkpoint(run_dir: Path, epoch: int, model: nn.Module, meta: dict, state: dict, keep: int = 2) -> Path:
    """Write ``checkpoints/epoch-NNNN`` atomically, point LATEST at it, keep the newest ``keep``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".epoch-*"):  # a write cut short by a kill; never named, never read
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".epoch-", dir=root))
    final = root / f"epoch-{epoch:04d}"
    try:
        save_weights(tmp / WEIGHTS, model, {**meta, "epoch": epoch})
        torch.save(state, tmp / STATE)
        for f in (tmp / WEIGHTS, tmp / STATE, tmp):
            _fsync(f)
        if final.exists():  # the same epoch written again (a resumed run): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        atomic_write_text(root / LATEST, final.name + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(p for p in root.glob("epoch-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The weights file for a run dir, its checkpoints dir, one epoch dir, or a .safetensors file."""
    path = Path(path)
    if path.is_file():
        return path
    for root in (path / "checkpoints", path):
        if (root / LATEST).is_file():
            return root / (root / LATEST).read_text().strip() / WEIGHTS
    if (path / WEIGHTS).is_file():
        return path / WEIGHTS
    raise CheckpointError(f"no checkpoint at {path} (expected a run dir, an epoch dir or a .safetensors file)")


@dataclass
class Checkpoint:
    """Weights, their metadata, and (when present beside them) the run state."""

    weights: dict[str, torch.Tensor]
    meta: dict
    state: dict | None
    path: Path


def load_checkpoint(path: str | os.PathLike[str], with_state: bool = True) -> Checkpoint:
    """Read a checkpoint (see :func:`find_checkpoint`); torch files load with ``weights_only=True``."""
    from safetensors import SafetensorError, safe_open

    weights_path = find_checkpoint(path)
    try:
        with safe_open(weights_path, "pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {weights_path}: {one_line(err)}") from None
    state = None
    state_path = weights_path.with_name(STATE)
    if with_state and state_path.is_file():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise CheckpointError(f"cannot read {state_path}: {one_line(err)}") from None
    return Checkpoint(weights, meta, state, weights_path)


def model_from_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was trained as and load its weights; returns (model, meta)."""
    from vggnet.models import create_model

    ckpt = load_checkpoint(path, with_state=False)
    if "model" not in ckpt.meta:
        raise CheckpointError(f"{ckpt.path} has no vggnet metadata; load it with load_state_dict instead")
    model = create_model(ckpt.meta["model"], **ckpt.meta.get("model_kwargs", {}))
    try:
        model.load_state_dict(ckpt.weights)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt.path} does not fit {ckpt.meta['model']}: {one_line(err)}") from None
    return model.eval(), ckpt.meta
