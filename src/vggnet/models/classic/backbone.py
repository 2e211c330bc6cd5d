"""The timm backbone contract for the classic networks, from three declarations per class.

A class lists its ``trunk`` (the top-level children that make the convolutional trunk, in the
order forward runs them), the path of its last linear layer, and its ``feature_info`` levels; this
mixin turns those into ``forward_features``, ``get_classifier`` and ``reset_classifier``, so
AlexNet, GoogLeNet, ResNet and DenseNet answer the same calls as a VGG (and
``create_model(name, features_only=True)`` works for them). Each class writes its own
``forward_head``: how a map is pooled before the classifier differs from network to network.
"""

from __future__ import annotations

import torch
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models.levels import FeatureInfo
from vggnet.models.vgg import check_input

torch.fx.wrap("check_input")  # the shape check stays one call in traced graphs (fx wraps per module)


def level(name: str, module: str, channels: int, reduction: int) -> dict:
    """One feature level: the layer's name, its module path, its channels and its stride."""
    return {"name": name, "module": module, "num_chs": channels, "reduction": reduction}


class Backbone:
    """Mixin for an ``nn.Module`` that sets ``trunk``, ``classifier_path``, ``feature_info``,
    ``num_features`` and ``num_classes`` (and ``min_side``, the smallest input side it takes)."""

    trunk: tuple[str, ...]
    classifier_path: str
    feature_info: FeatureInfo
    num_features: int
    num_classes: int
    min_side: int = 1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional trunk: (N, 3, H, W) -> the map :meth:`forward_head` pools."""
        x = check_input(x, 3, self.min_side)
        for name in self.trunk:
            x = getattr(self, name)(x)
        return x

    def get_classifier(self) -> nn.Module:
        """The last linear layer."""
        return self.get_submodule(self.classifier_path)  # type: ignore[attr-defined]

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh last linear layer for ``num_classes`` outputs (fine-tuning on another label set);
        0 removes it, so ``forward`` gives the pre-logits embedding, as in timm."""
        if num_classes < 0:
            raise VggnetError(f"num_classes must be >= 0, got {num_classes}")
        parent, _, leaf = self.classifier_path.rpartition(".")
        owner = self.get_submodule(parent) if parent else self  # type: ignore[attr-defined]
        device = self.get_classifier().weight.device
        fc: nn.Module = nn.Linear(self.num_features, num_classes, device=device) if num_classes else nn.Identity()
        if num_classes:
            nn.init.normal_(fc.weight, 0.0, 0.01)
            nn.init.zeros_(fc.bias)
        setattr(owner, leaf, fc)
        self.num_classes = num_classes
        if num_classes and isinstance(getattr(self, "model_kwargs", None), dict):
            self.model_kwargs["num_classes"] = num_classes  # type: ignore[attr-defined]
