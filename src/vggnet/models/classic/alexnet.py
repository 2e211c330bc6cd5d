"""AlexNet (Krizhevsky et al., 2012) in its single-GPU form ("One weird trick", 2014).

This is torchvision's variant (64-192-384-256-256 filters, no LRN): 61,100,840 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from vggnet.models.classic.backbone import Backbone, level
from vggnet.models.init import init_weights
from vggnet.models.levels import FeatureInfo
from vggnet.models.registry import MIN_INPUT_SIZES, register_model

MIN_SIDE = MIN_INPUT_SIZES["alexnet"]


class AlexNet(Backbone, nn.Module):
    trunk = ("features",)
    classifier_path = "classifier.6"
    min_side = MIN_SIDE

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
        self.num_classes, self.num_features = num_classes, 4096
        # One level per stride: the ReLUs after conv1, conv2 and conv5, before their pools.
        self.feature_info = FeatureInfo([level("relu1", "features.1", 64, 4), level("relu2", "features.4", 192, 8),
                                         level("relu5", "features.11", 256, 16)])
        init_weights(self, "kaiming")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool to 6x6, flatten, fc6 and fc7 (``pre_logits=True`` stops there: 4096 wide), then fc8."""
        x = torch.flatten(self.avgpool(x), 1)
        *hidden, last = self.classifier  # the installed submodules, one by one, so torch.fx traces them
        for layer in hidden:
            x = layer(x)
        return x if pre_logits else last(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # the shape check: one line, not a failure in a pool


register_model("alexnet", AlexNet)
