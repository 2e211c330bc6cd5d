"""The paper's test-time network (section 3.2): FC layers turned into convolutions.

The first FC layer sees the pooled k x k x 512 map, so it becomes a k x k convolution; the
others become 1x1 convolutions. The weights are the same numbers, reshaped. At the training
resolution the score map is 1x1 and equals the original logits; a larger image gives a map of
class scores, one per position of a sliding window with stride 32.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from vggnet.errors import InputShapeError, VggnetError
from vggnet.models.vgg import VGG, check_input


class FullyConvolutionalVGG(nn.Module):
    """VGG whose classifier is convolutional: (N, 3, H, W) -> (N, classes, H', W') score map."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, in_chans: int,
                 layer_names: dict[str, str]) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.in_chans = in_chans
        self.layer_names = dict(layer_names)
        self.layer_names.pop("avgpool", None)
        first = classifier[0]
        assert isinstance(first, nn.Conv2d)
        self.window = first.kernel_size[0]
        self.min_input = 32 * self.window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans, self.min_input)
        return self.classifier(self.features(x))


def to_fully_convolutional(model: VGG) -> FullyConvolutionalVGG:
    """Return a fully-convolutional copy of ``model`` (the original is left unchanged).

    The adaptive average pool is dropped: at the training resolution it is the identity, and the
    point of the dense net is to slide over larger inputs instead of pooling them away.
    """
    if not isinstance(model, VGG):
        raise VggnetError(f"the dense (fully-convolutional) test net is built from a VGG of Table 1, whose head "
                          f"is fully connected; {type(model).__name__} is not one: use --protocol center or multi-crop")
    pool = model.avgpool.output_size
    window = pool[0] if isinstance(pool, tuple) else pool
    channels = 512
    layers: list[nn.Module] = []
    for module in model.classifier:
        if isinstance(module, nn.Linear):
            conv = nn.Conv2d(channels, module.out_features, kernel_size=window,
                             device=module.weight.device, dtype=module.weight.dtype)
            with torch.no_grad():
                # Linear weights act on a (C, k, k) flatten, which is exactly the conv's OIHW layout.
                conv.weight.copy_(module.weight.reshape(module.out_features, channels, window, window))
                conv.bias.copy_(module.bias)
            layers.append(conv)
            channels, window = module.out_features, 1
        else:
            layers.append(copy.deepcopy(module))
    return FullyConvolutionalVGG(copy.deepcopy(model.features), nn.Sequential(*layers),
                                 model.in_chans, model.layer_names)


def spatial_average(score_map: torch.Tensor) -> torch.Tensor:
    """Average a class score map over its positions: (N, C, H, W) -> (N, C)."""
    if score_map.dim() != 4:
        raise InputShapeError(f"expected a score map (N, C, H, W), got {tuple(score_map.shape)}")
    return score_map.mean(dim=(2, 3))
