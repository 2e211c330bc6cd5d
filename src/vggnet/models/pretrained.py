"""Weights for ``create_model(pretrained=True | weights=...)``: the default known file per model,
loading with another ``num_classes`` (the classifier stays fresh, as timm does), and a first
convolution adapted to ``in_chans`` other than 3.

Models sit below :mod:`vggnet.weights` in the dependency order (``weights.load`` builds models), so
every import of it here is inside a function, made only when weights are asked for.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable

import torch
from torch import nn

from vggnet.errors import CheckpointError, VggnetError

log = logging.getLogger("vggnet")

HEAD_PREFIXES = ("classifier.", "fc.", "aux1.", "aux2.")
"""State-dict prefixes of the layers a new ``num_classes`` replaces in the non-VGG models."""


def pretrained_names() -> list[str]:
    """The registered models that have known weights (``list_models(pretrained=True)``)."""
    from vggnet.weights.hub import KNOWN_WEIGHTS  # lazy: see the module docstring

    return sorted({w.model for w in KNOWN_WEIGHTS.values()})


def default_weights(name: str) -> str:
    """The known weights ``pretrained=True`` loads for ``name``: torchvision's where there are
    several (Keras's expect BGR input); a one-line error naming the models that have weights."""
    from vggnet.weights.hub import KNOWN_WEIGHTS  # lazy: see the module docstring

    found = [w for w in KNOWN_WEIGHTS.values() if w.model == name]
    if not found:
        raise VggnetError(f"no pretrained weights are known for {name}; models with weights: "
                          f"{', '.join(pretrained_names())} (or pass weights=FILE)")
    return next((w.name for w in found if w.source == "torchvision"), found[0].name)


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A first-conv weight trained on RGB made to take ``in_chans`` channels, as timm's
    ``adapt_input_conv`` does: one channel sums the RGB filters (a grey image is R = G = B); more
    repeat them and scale by 3/in_chans, so that the layer's output keeps its scale."""
    have = weight.shape[1]
    if in_chans == have:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    if have != 3:
        raise VggnetError(f"cannot adapt a first convolution of {have} input channels to in_chans={in_chans}; "
                          "only RGB weights adapt")
    return weight.repeat(1, math.ceil(in_chans / 3), 1, 1)[:, :in_chans] * (3 / in_chans)


def _adapt_first_conv(state: dict[str, torch.Tensor], in_chans: int) -> dict[str, torch.Tensor]:
    key = next((k for k, v in state.items() if k.endswith(".weight") and v.dim() == 4), None)
    if key is None or in_chans == 3 or state[key].shape[1] == in_chans:
        return state
    return {**state, key: adapt_input_conv(state[key], in_chans)}


def vgg_with_weights(name: str, weights: str | os.PathLike[str], kwargs: dict) -> nn.Module:
    """A VGG with ``weights`` loaded; head and classes default to the file's (weights.load does the work)."""
    from vggnet.weights.load import pretrained_model, read_weights  # lazy: see the module docstring

    src = read_weights(weights)
    src.state = _adapt_first_conv(src.state, int(kwargs.get("in_chans", 3)))
    model, _ = pretrained_model(name, src, **kwargs)  # warns when layers stay freshly initialised
    return model


def other_with_weights(name: str, weights: str | os.PathLike[str], build: Callable[[], nn.Module],
                       kwargs: dict) -> nn.Module:
    """vgg_fast or a classic network with ``weights`` loaded: everything must fit except the
    classifier, which stays freshly initialised where its shape differs (another ``num_classes``)."""
    from vggnet.weights.load import read_weights  # lazy: see the module docstring

    src = read_weights(weights)
    if src.model and src.model != name:
        raise VggnetError(f"{src.path or weights} holds {src.model}, not {name}")
    state = _adapt_first_conv(src.state, int(kwargs.get("in_chans", 3)))
    model = build()
    own = model.state_dict()
    differ = [k for k in own if k not in state or state[k].shape != own[k].shape]
    wrong = [k for k in [*differ, *(k for k in state if k not in own)] if not k.startswith(HEAD_PREFIXES)]
    if wrong:
        raise CheckpointError(f"weights do not fit {name}: {', '.join(wrong[:3])} missing or of another shape")
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in differ}, strict=False)
    if differ:
        layers = sorted({k.rsplit(".", 1)[0] for k in differ})
        log.warning("%s: %s not loaded (freshly initialised for %s classes): fine-tune them",
                    src.path.name if src.path else weights, ", ".join(layers), kwargs.get("num_classes", "other"))
    return model
