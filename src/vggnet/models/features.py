"""Feature extraction by the paper's layer names, for backbones and perceptual losses.

Hooks on a VGG are a trap: the ReLUs run in place, so a forward hook on ``conv3_3`` returns a
tensor that ReLU overwrites a moment later, and you silently get ``relu3_3`` instead. This module
runs the layers itself and keeps a copy only where a requested output would be overwritten, and
stops after the deepest requested layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models.vgg import check_input


class FeatureExtractor(nn.Module):
    """Return ``{name: tensor}`` for the named layers of a vggnet VGG (shares its weights).

    Example: ``FeatureExtractor(create_model("vgg16"), ["relu1_2", "relu2_2", "relu3_3"])``.
    Names: ``conv{b}_{i}``, ``bn{b}_{i}``, ``relu{b}_{i}``, ``lrn1``, ``pool{b}``, ``avgpool``,
    ``fc6``, ``relu6``, ``drop6``, ``fc7`` ... ``fc8`` (see ``model.layer_names``).
    """

    def __init__(self, model: nn.Module, layers: Sequence[str]) -> None:
        super().__init__()
        names: dict[str, str] | None = getattr(model, "layer_names", None)
        if names is None:
            raise VggnetError(f"{type(model).__name__} has no paper layer names; expected a vggnet VGG")
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise VggnetError(f"unknown layer name(s) {unknown}; valid: {', '.join(names)}")
        self.model = model
        # The whole network as one ordered list of (path, module), in execution order.
        self._path_to_name = {path: name for name, path in names.items()}
        self._steps = [(p, m) for p, m in model.named_modules() if p in self._path_to_name]
        self.layers = list(layers)
        order = [p for p, _ in self._steps]
        self._last = max(order.index(names[n]) for n in layers)
        self._wanted = {names[n] for n in layers}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = check_input(x, getattr(self.model, "in_chans", x.shape[1]))
        out: dict[str, torch.Tensor] = {}
        for index, (path, module) in enumerate(self._steps[: self._last + 1]):
            if isinstance(module, nn.Linear) and x.dim() == 4:
                x = torch.flatten(x, 1)
            x = module(x)
            if path in self._wanted:
                nxt = self._steps[index + 1][1] if index + 1 < len(self._steps) else None
                overwritten = nxt is not None and getattr(nxt, "inplace", False) and index < self._last
                out[self._path_to_name[path]] = x.clone() if overwritten else x
        return {name: out[name] for name in self.layers}
