"""Load a weight file into a model, also one with another number of classes (fine-tuning)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from vggnet.errors import CheckpointError, one_line
from vggnet.models import create_model, init_weights


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a torch file read with ``weights_only=True``."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read weights {path}: {one_line(err)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return state


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy ``state`` into ``model``. A last layer of another shape (another ``num_classes``) is
    left re-initialised; the returned list names the keys that were not loaded."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"weights do not fit {getattr(model, 'model_name', type(model).__name__)}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    skipped = [k for k, v in state.items() if own[k].shape != v.shape]
    last = {k.rsplit(".", 1)[0] for k in skipped}
    if len(last) > 1 or (last and not next(iter(last)).startswith("classifier")):
        raise CheckpointError(f"weights do not fit: shapes differ at {skipped[:4]}")
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    if skipped:
        init_weights(dict(model.named_modules())[next(iter(last))], "kaiming")
    return skipped


def pretrained_model(
    model_name: str, weights: str | os.PathLike[str], num_classes: int = 1000, **kwargs: object
) -> tuple[nn.Module, list[str]]:
    """Build ``model_name`` and load ``weights`` (a known name or a file path) into it."""
    from vggnet.weights.hub import fetch_weights

    path = Path(weights)
    if not path.exists():
        path = fetch_weights(str(weights))
    model = create_model(model_name, num_classes=num_classes, **kwargs)
    return model, load_pretrained(model, load_state_dict_file(path))
