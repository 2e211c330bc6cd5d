"""ResNet-18/34/50/101/152 (He et al., 2015), v1.5: the stride sits on the 3x3 convolution."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from vggnet.models.classic.backbone import Backbone, level
from vggnet.models.init import init_weights
from vggnet.models.levels import FeatureInfo
from vggnet.models.registry import register_model


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, width, 3, stride)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = _conv_bn(width, width, 3)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, width * self.expansion, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(Backbone, nn.Module):
    trunk = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    classifier_path = "fc"

    def __init__(self, block: type[BasicBlock | Bottleneck], depths: tuple[int, int, int, int],
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        self.feature_info = FeatureInfo([level("act1", "relu", 64, 2)])  # timm's levels and names
        for i, (width, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True), start=1):
            stride = 1 if i == 1 else 2
            cout = width * block.expansion
            downsample = None
            if stride != 1 or cin != cout:
                downsample = nn.Sequential(*_conv_bn(cin, cout, 1, stride))
            blocks = [block(cin, width, stride, downsample)]
            blocks += [block(cout, width) for _ in range(depth - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            self.feature_info.append(level(f"layer{i}", f"layer{i}", cout, 2 ** (i + 1)))
            cin = cout
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)
        self.num_classes, self.num_features = num_classes, cin
        init_weights(self, "kaiming")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool (``pre_logits=True`` stops there), then fc."""
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


for _name, _block, _depths in (
    ("resnet18", BasicBlock, (2, 2, 2, 2)),
    ("resnet34", BasicBlock, (3, 4, 6, 3)),
    ("resnet50", Bottleneck, (3, 4, 6, 3)),
    ("resnet101", Bottleneck, (3, 4, 23, 3)),
    ("resnet152", Bottleneck, (3, 8, 36, 3)),
):
    register_model(_name, partial(ResNet, _block, _depths))
