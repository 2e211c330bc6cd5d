"""AlexNet (Krizhevsky et al., 2012) in its single-GPU form ("One weird trick", 2014).

This is torchvision's variant (64-192-384-256-256 filters, no LRN): 61,100,840 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from vggnet.models.init import init_weights
from vggnet.models.registry import MIN_INPUT_SIZES, register_model
from vggnet.models.vgg import check_input

torch.fx.wrap("check_input")  # the shape check stays one call in traced graphs (fx wraps per module)
MIN_SIDE = MIN_INPUT_SIZES["alexnet"]


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        init_weights(self, "kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_input(x, 3, MIN_SIDE)  # one line, not a failure inside the third pool
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


register_model("alexnet", AlexNet)
