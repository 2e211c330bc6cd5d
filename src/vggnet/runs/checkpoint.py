"""Checkpoints: weights in safetensors, run state in a weights-only torch file, written atomically.

Each checkpoint is a folder ``checkpoints/epoch-NNNN/`` with ``model.safetensors`` (the weights,
plus everything needed to rebuild and use the model in its metadata: name, keyword arguments,
class names, normalisation) and ``state.pt`` (optimizer, scheduler, RNG states, history). The
folder is written under a temporary name and renamed, then ``checkpoints/LATEST`` is replaced
atomically; a crash or a full disk at any moment leaves the previous checkpoint whole and named.
What is read back is checked before it is used: a damaged state or hand-edited metadata is an
error that names the file, never a silent restart or a model with the wrong classes.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vggnet.atomic import atomic_write_text, default_mode, write_failure
from vggnet.errors import CheckpointError, VggnetError, one_line
from vggnet.files import FileRefused, stat_regular

WEIGHTS = "model.safetensors"
STATE = "state.pt"
LATEST = "LATEST"
META_KEY = "vggnet"
EPOCH_DIR = re.compile(r"epoch-(\d{4,})")  # what save_checkpoint names; nothing else is read or pruned
STATE_KEYS = {"epoch": int, "optimizer": dict, "scheduler": dict, "rng": dict, "history": list, "stats": dict}


def _regular(path: Path) -> Path:
    """``path`` once ``os.stat`` (which never blocks) shows a regular file: a FIFO planted in a run
    directory would hang the reader, a device never ends. No size bound: vggnet wrote these files,
    and the safetensors header and ``weights_only`` unpickling bound what is built from them."""
    try:
        stat_regular(path, bound=sys.maxsize)
    except FileRefused as err:
        raise CheckpointError(f"{path} is {err}; a checkpoint is read only from regular files") from None
    return path


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


def epoch_dirs(root: Path) -> list[tuple[int, Path]]:
    """The checkpoint folders under ``root`` (``checkpoints/``), ordered by epoch number (so
    epoch-10000 comes after epoch-9999); folders of other names, the user's, are not included."""
    found = []
    for path in root.glob("epoch-*"):
        match = EPOCH_DIR.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _write_failed(final: Path, err: BaseException) -> CheckpointError:
    reason = write_failure(err) or one_line(err)
    return CheckpointError(f"cannot write checkpoint {final} ({reason}); the previous checkpoint is kept: free space "
                           "or fix the folder, then continue with --resume")


def save_checkpoint(run_dir: Path, epoch: int, model: nn.Module, meta: dict, state: dict, keep: int = 2) -> Path:
    """Write ``checkpoints/epoch-NNNN`` atomically, point LATEST at it, keep the newest ``keep``."""
    from safetensors import SafetensorError

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".epoch-*"):  # a write cut short by a kill; never named, never read
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".epoch-{epoch:04d}-{secrets.token_hex(4)}"
    final = root / f"epoch-{epoch:04d}"
    try:
        tmp.mkdir(mode=0o777)  # the umask decides, as for every other output
        save_weights(tmp / WEIGHTS, model, {**meta, "epoch": epoch})
        torch.save(state, tmp / STATE)
        for f in (tmp / WEIGHTS, tmp / STATE):
            os.chmod(f, default_mode())  # some writers make private files; outputs follow the umask
        for f in (tmp / WEIGHTS, tmp / STATE, tmp):
            _fsync(f)
        if final.exists():  # the same epoch written again (a resumed run): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        atomic_write_text(root / LATEST, final.name + "\n")
    except (OSError, RuntimeError, SafetensorError) as err:  # a full disk, a read-only folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_failed(final, err) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    older = [p for n, p in epoch_dirs(root) if n < epoch]  # numbered folders this run wrote, by number
    for old in older[:max(len(older) - (keep - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_dir(root: Path) -> Path | None:
    """The epoch folder ``root/LATEST`` names; without LATEST the newest epoch folder (each is
    renamed into place whole), or None. A LATEST that names anything but an epoch folder beside it
    (a path, a missing folder) is an error, never followed."""
    path = root / LATEST
    if not path.exists() and not path.is_symlink():  # none, or a kill came between an epoch's rename and LATEST
        whole = [p for _, p in epoch_dirs(root) if (p / WEIGHTS).is_file() and (p / STATE).is_file()]
        return whole[-1] if whole else None
    with open(_regular(path), "rb") as f:
        name = f.read(64).decode("utf-8", "replace").strip()  # a name, not a file's worth
    if not EPOCH_DIR.fullmatch(name) or not (root / name / WEIGHTS).is_file():
        raise CheckpointError(f"{path} names {name[:40]!r}, which is not a checkpoint beside it: the run directory is "
                              "damaged (point LATEST at an epoch-NNNN folder that holds model.safetensors)")
    return root / name


def find_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The weights file for a run dir, its checkpoints dir, one epoch dir, or a .safetensors file."""
    path = Path(path)
    if path.is_file():
        return path
    for root in (path / "checkpoints", path):
        if (found := latest_dir(root)) is not None:
            return found / WEIGHTS
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


def check_state(state: object, path: Path) -> dict:
    """The run state as training wrote it, or an error that says it is damaged (never a restart)."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is damaged (not a run state): restore it from a backup or start a new run")
    for key, kind in STATE_KEYS.items():
        if not isinstance(state.get(key), kind):
            raise CheckpointError(f"{path} is damaged ({key!r} is missing or of the wrong type): restore it from "
                                  "a backup or start a new run")
    last = state["history"][-1] if state["history"] else None
    if state["epoch"] < 1 or not isinstance(last, dict) or last.get("epoch") != state["epoch"]:
        raise CheckpointError(f"{path} is damaged (its epoch {state['epoch']} is not the last of its history): "
                              "restore it from a backup or start a new run")
    return state


def load_checkpoint(path: str | os.PathLike[str], with_state: bool = True) -> Checkpoint:
    """Read a checkpoint (see :func:`find_checkpoint`); torch files load with ``weights_only=True``."""
    from safetensors import SafetensorError, safe_open

    weights_path = _regular(find_checkpoint(path))
    try:
        with safe_open(weights_path, "pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot read {weights_path}: {one_line(err)}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{weights_path} has damaged vggnet metadata (not a JSON object)")
    state = None
    state_path = weights_path.with_name(STATE)
    if with_state and state_path.is_file():
        try:
            state = torch.load(_regular(state_path), map_location="cpu", weights_only=True)
        except Exception as err:  # torch's text may advise weights_only=False: never pass that on
            raise CheckpointError(f"cannot read {state_path}: it is damaged or holds more than plain tensors and "
                                  f"numbers ({type(err).__name__}); vggnet reads run states weights-only") from None
        state = check_state(state, state_path)
    return Checkpoint(weights, meta, state, weights_path)


def _finite(values: object, n: int, positive: bool = False) -> bool:
    return (isinstance(values, list) and len(values) == n
            and all(isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not positive) for v in values))


def check_meta(meta: dict, path: Path) -> None:
    """Stop on metadata a model cannot be used with: classes that do not match the outputs, a
    normalisation that would divide by zero, sizes that are not sizes (hand-edited files)."""
    kwargs = meta.get("model_kwargs", {})
    classes = meta.get("classes")
    problems = []
    if not isinstance(meta.get("model"), str) or not isinstance(kwargs, dict):
        problems.append("'model' must be a name and 'model_kwargs' an object")
    elif classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
                                  or len(classes) != kwargs.get("num_classes", 1000)):
        problems.append(f"'classes' must be {kwargs.get('num_classes', 1000)} names, one per output")
    if "mean" in meta and not _finite(meta["mean"], 3):
        problems.append("'mean' must be 3 finite numbers")
    if "std" in meta and not _finite(meta["std"], 3, positive=True):
        problems.append("'std' must be 3 positive numbers")
    for key in ("image_size", "test_scale"):
        if key in meta and not (isinstance(meta[key], int) and 1 <= meta[key] <= 4096):
            problems.append(f"{key!r} must be a whole number of pixels")
    if meta.get("channels", "RGB") not in ("RGB", "BGR"):
        problems.append("'channels' must be RGB or BGR")
    if problems:
        raise CheckpointError(f"{path} has damaged vggnet metadata: {problems[0]}")


def model_from_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was trained as and load its weights; returns (model, meta)."""
    from vggnet.models import create_model

    ckpt = load_checkpoint(path, with_state=False)
    if "model" not in ckpt.meta:
        raise CheckpointError(f"{ckpt.path} has no vggnet metadata; load it with load_state_dict instead")
    check_meta(ckpt.meta, ckpt.path)
    try:
        model = create_model(ckpt.meta["model"], **ckpt.meta.get("model_kwargs", {}))
    except (TypeError, VggnetError) as err:  # an unknown model name or keyword
        raise CheckpointError(f"{ckpt.path} has damaged vggnet metadata: {one_line(err)}") from None
    try:
        model.load_state_dict(ckpt.weights)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt.path} does not fit {ckpt.meta['model']}: {one_line(err)}") from None
    return model.eval(), ckpt.meta
