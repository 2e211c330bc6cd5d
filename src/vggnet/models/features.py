"""Feature extraction by the paper's layer names, for backbones and perceptual losses.

Hooks on a VGG are a trap: the ReLUs run in place, so a forward hook on ``conv3_3`` returns a
tensor that ReLU overwrites a moment later, and you silently get ``relu3_3`` instead. This module
runs the layers itself and keeps a copy only where a requested output would be overwritten, and
stops after the deepest requested layer.

:class:`FeatureListNet` is the timm-style form (``create_model(..., features_only=True)``): a list of
the feature maps at the levels of ``model.feature_info``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models.levels import FeatureInfo
from vggnet.models.vgg import MIN_INPUT, check_input


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
        # the smallest side that leaves the deepest requested map at least 1x1 (relu2_2: 2 pixels);
        # past the trunk, the head's own minimum
        trunk = [m for p, m in self._steps[: self._last + 1] if p.startswith("features.")]
        pools = sum(isinstance(m, nn.MaxPool2d | nn.AvgPool2d) for m in trunk)
        self.min_side = 2**pools if len(trunk) == self._last + 1 else MIN_INPUT

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = check_input(x, getattr(self.model, "in_chans", x.shape[1]), self.min_side)
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


class FeatureListNet(nn.Module):
    """The backbone of a model, returning the feature maps at ``out_indices`` (``features_only=True``).

    Built by ``create_model(name, features_only=True, out_indices=...)``. It keeps the model's trunk
    (``model.trunk``, the top-level modules forward runs before the head; a VGG's is ``features``) up
    to the deepest level asked for, under the same names, so the weights and state-dict keys are the
    model's (``features.N``, ``layer1.0.conv1`` ...), and drops the head. ``feature_info`` describes
    the returned maps, in order.
    """

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None, min_side: int = 1) -> None:
        super().__init__()
        info = getattr(model, "feature_info", None)
        self.model_name = getattr(model, "model_name", type(model).__name__)
        if not info:
            raise VggnetError(f"{self.model_name} has no feature levels, so features_only cannot pick any")
        self.out_indices, self.feature_info = FeatureInfo(info).select(out_indices)
        taps = self.feature_info.module_name()
        steps = _trunk_steps(model, taps)
        deepest = max(steps.index(path) for path in taps)
        self._steps, self._taps = steps[: deepest + 1], list(taps)
        for name in getattr(model, "trunk", ("features",)):  # the kept modules, under the model's names
            kept = [path for path in self._steps if path == name or path.startswith(name + ".")]
            if kept == [name]:
                self.add_module(name, getattr(model, name))
            elif kept:  # a Sequential cut after its last needed child, its children's names kept
                children = dict(getattr(model, name).named_children())
                self.add_module(name, nn.Sequential(OrderedDict((p.split(".", 1)[1], children[p.split(".", 1)[1]])
                                                                for p in kept)))
        self.in_chans = getattr(model, "in_chans", 3)
        self.min_side = min_side

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = check_input(x, self.in_chans, self.min_side)
        maps: dict[str, torch.Tensor] = {}
        modules = [self.get_submodule(path) for path in self._steps]
        for index, (path, module) in enumerate(zip(self._steps, modules, strict=True)):
            x = module(x)
            if path in self._taps:  # a copy only where the next layer would overwrite it in place
                nxt = modules[index + 1] if index + 1 < len(modules) else None
                maps[path] = x.clone() if getattr(nxt, "inplace", False) else x
        return [maps[path] for path in self._taps]


def _trunk_steps(model: nn.Module, taps: Sequence[str]) -> list[str]:
    """The module paths forward runs through the trunk, in order: each trunk module, or, where a
    level sits inside one (``features.3``), that Sequential's children one by one."""
    steps: list[str] = []
    for name in getattr(model, "trunk", ("features",)):
        module = getattr(model, name)
        if isinstance(module, nn.Sequential) and any(t.startswith(name + ".") for t in taps):
            steps += [f"{name}.{child}" for child, _ in module.named_children()]
        else:
            steps.append(name)
    missing = [t for t in taps if t not in steps]
    if missing:
        raise VggnetError(f"{getattr(model, 'model_name', type(model).__name__)}: feature level(s) {missing} "
                          "are not on its trunk")
    return steps
