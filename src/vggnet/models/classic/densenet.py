"""DenseNet-121 (Huang et al., 2017): growth rate 32, blocks of 6/12/24/16 layers, 7,978,856 params."""

from __future__ import annotations

import torch
from torch import nn

from vggnet.models.classic.backbone import Backbone, level
from vggnet.models.init import init_weights
from vggnet.models.levels import FeatureInfo
from vggnet.models.registry import MIN_INPUT_SIZES, register_model

MIN_SIDE = MIN_INPUT_SIZES["densenet121"]


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (to 4 x growth channels), BN-ReLU-conv3x3 (to growth channels)."""

    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class DenseNet(Backbone, nn.Module):
    trunk = ("features", "relu")
    classifier_path = "classifier"
    min_side = MIN_SIDE

    def __init__(self, blocks: tuple[int, ...] = (6, 12, 24, 16), growth: int = 32, init_features: int = 64,
                 bn_size: int = 4, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, init_features, 7, stride=2, padding=3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        channels = init_features
        # timm's levels: the stem's activation, each dense block but the last (before its transition),
        # and the final normalised, activated map.
        self.feature_info = FeatureInfo([level("act0", "features.relu0", channels, 2)])
        for i, layers in enumerate(blocks, start=1):
            self.features.add_module(f"denseblock{i}", DenseBlock(layers, channels, growth, bn_size))
            channels += layers * growth
            if i < len(blocks):
                self.feature_info.append(level(f"denseblock{i}", f"features.denseblock{i}", channels, 2 ** (i + 1)))
            if i < len(blocks):
                self.features.add_module(f"transition{i}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(channels, num_classes)
        self.feature_info.append(level("act5", "relu", channels, 2 ** (len(blocks) + 1)))
        self.num_classes, self.num_features = num_classes, channels
        init_weights(self, "kaiming")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool (``pre_logits=True`` stops there), then the classifier."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


register_model("densenet121", DenseNet)
