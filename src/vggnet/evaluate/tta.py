"""Test-time augmentation for small images: average the logits of mirrored and shifted views.

The paper averages the softmax of an image and its mirror (Section 3.2); fast CIFAR trainers add
copies shifted by one pixel, which undo part of the translation the network learned to ignore.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TestTimeAugment(nn.Module):
    """``model`` seen through ``level`` 0 (the image), 1 (+ its mirror) or 2 (+ both shifted one
    pixel up-left and down-right; reflected borders): the mean logits of the views."""

    __test__ = False  # a model, not a pytest class, despite the name

    def __init__(self, model: nn.Module, level: int = 2) -> None:
        super().__init__()
        if level not in (0, 1, 2):
            raise ValueError(f"test-time augmentation level must be 0, 1 or 2, got {level}")
        self.model, self.level = model, level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        views = [x] if self.level == 0 else [x, x.flip(3)]
        logits = sum(self.model(v) for v in views) / len(views)
        if self.level < 2:
            return logits
        h, w = x.shape[-2:]
        shifted = []
        for v in views:
            padded = F.pad(v, (1, 1, 1, 1), mode="reflect")
            shifted += [padded[..., :h, :w], padded[..., 2:, 2:]]
        return 0.5 * logits + 0.5 * sum(self.model(v) for v in shifted) / len(shifted)
