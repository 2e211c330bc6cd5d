"""Perceptual (feature) and style (Gram) losses on a frozen VGG.

``PerceptualLoss`` compares two images by the distance between their VGG features at a few paper
named layers (Johnson et al., 2016; super-resolution's "VGG loss"). ``StyleLoss`` compares the
Gram matrices of those features, the channels' correlations with position summed out (Gatys et
al., 2016), normalised by C x H x W so that layers and image sizes weigh alike.

Both take images in a declared ``input_range`` and check every batch against it, normalise them
as the backbone's weights expect, run the trunk only as deep as the deepest layer, keep it frozen
and in eval mode whatever ``.train()`` says, and compute the loss in float32 whatever autocast ran
the trunk in. The target side never gets gradients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.errors import VggnetError
from vggnet.perceptual.backbone import (
    Backbone,
    Normalize,
    RangeCheck,
    check_range,
    frozen_extractor,
    load_backbone,
)

CRITERIA = {"l1": F.l1_loss, "l2": F.mse_loss}

PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
"""Johnson et al.'s layers (relu2_2 alone is their feature-reconstruction loss)."""

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""Gatys et al.'s style layers."""


def _layers(layers: str | Sequence[str]) -> list[str]:
    """One name or several; a bare string is one layer (never its characters)."""
    return [layers] if isinstance(layers, str) else list(layers)


def _layer_weights(layers: Sequence[str], weights: Sequence[float] | Mapping[str, float] | None) -> list[float]:
    """One finite, non-negative weight per layer."""
    if weights is None:
        return [1.0] * len(layers)
    if isinstance(weights, Mapping):
        extra = [k for k in weights if k not in layers]
        if extra:
            raise VggnetError(f"weights name layer(s) {extra} that are not in layers {list(layers)}")
        values = [weights.get(n, 1.0) for n in layers]
    elif isinstance(weights, str | bytes):
        raise VggnetError(f"weights are numbers, one per layer (or a dict by layer name); got {weights!r}")
    else:
        values = list(weights)
        if len(values) != len(layers):
            raise VggnetError(f"{len(values)} weights for {len(layers)} layers; give one per layer")
    try:
        values = [float(w) for w in values]
    except (TypeError, ValueError):
        raise VggnetError(f"weights are numbers; got {weights!r}") from None
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise VggnetError(f"layer weights must be finite and >= 0; got {values}")
    return values


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C): ``F F^T / (C H W)`` per image, in float32."""
    if features.dim() != 4:
        raise VggnetError(f"gram_matrix takes feature maps (N, C, H, W); got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


class _FeatureLoss(nn.Module):
    """What both losses share: the backbone, the range check, the normalisation, the layers."""

    def __init__(self, layers: str | Sequence[str], weights: Sequence[float] | Mapping[str, float] | None,
                 criterion: str, input_range: Sequence[float], backbone: Backbone,
                 normalization: str | dict | None, pooling: str) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise VggnetError(f"criterion is 'l1' or 'l2', got {criterion!r}")
        low, high = check_range(input_range)
        self.layers = _layers(layers)
        self.layer_weights = _layer_weights(self.layers, weights)
        self.criterion = criterion
        self.input_range = (low, high)
        self._check = RangeCheck(low, high, type(self).__name__)
        model, prep = load_backbone(backbone, normalization)
        self.preprocessing = prep
        self.normalize = Normalize((low, high), prep["mean"], prep["std"], bgr=prep["channels"] == "BGR")
        self.extractor = frozen_extractor(model, self.layers, pooling)

    def train(self, mode: bool = True) -> _FeatureLoss:
        """The trunk stays in eval mode (its BatchNorm statistics and dropout are the weights')."""
        super().train(mode)
        self.extractor.eval()
        return self

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """Checked, in the trunk's dtype (float64 or half images from a float32 trunk), normalised."""
        return self.normalize(x.to(self.normalize.scale.dtype))

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The named layers' outputs for images in ``input_range`` (checked), normalised first."""
        self._check(x)
        return self.extractor(self._input(x))

    def _pair(self, x: torch.Tensor, target: torch.Tensor) -> tuple[dict, dict]:
        """Features of both in one pass when the shapes allow (the target detached)."""
        self._check(x)
        self._check(target, "target")
        target = target.detach()
        if x.shape[1:] == target.shape[1:] and x.shape[0] == target.shape[0]:
            both = self.extractor(self._input(torch.cat([x, target])))
            n = x.shape[0]
            return {k: v[:n] for k, v in both.items()}, {k: v[n:] for k, v in both.items()}
        with torch.no_grad():
            y = self.extractor(self._input(target))
        return self.extractor(self._input(x)), y


class PerceptualLoss(_FeatureLoss):
    """Sum over ``layers`` of ``weight * criterion(features(input), features(target))``.

    Args:
        layers: paper layer names (``relu2_2``, ``conv3_3``, ...; see ``model.layer_names``).
        weights: one per layer (a list, or a dict by name; missing names weigh 1).
        criterion: 'l1' or 'l2' (mean squared error), averaged over every element.
        input_range: the range the images are in: (0, 1), (-1, 1) or (0, 255); a batch outside it
            is an error.
        backbone: a weight name (default ``vgg16``: torchvision's, downloaded once), a weight file,
            or a vggnet VGG module.
        normalization: override the weights' preprocessing: 'torchvision' (RGB, ImageNet mean and
            std), 'keras' (BGR minus the Caffe mean pixel), or a dict (mean, std, channels).
        pooling: 'max' (the network's) or 'avg'.
    """

    def __init__(self, layers: str | Sequence[str] = PERCEPTUAL_LAYERS,
                 weights: Sequence[float] | Mapping[str, float] | None = None, criterion: str = "l1",
                 input_range: Sequence[float] = (0.0, 1.0), backbone: Backbone = "vgg16",
                 normalization: str | dict | None = None, pooling: str = "max") -> None:
        super().__init__(layers, weights, criterion, input_range, backbone, normalization, pooling)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape[1:] != target.shape[1:] or target.shape[0] not in (1, input.shape[0]):
            raise VggnetError(f"PerceptualLoss compares images of one shape: input {tuple(input.shape)}, "
                              f"target {tuple(target.shape)}")
        fx, fy = self._pair(input, target)
        loss = CRITERIA[self.criterion]
        return sum(w * loss(fx[n].float(), fy[n].float().expand_as(fx[n]))
                   for n, w in zip(self.layers, self.layer_weights, strict=True))


class StyleLoss(_FeatureLoss):
    """Sum over ``layers`` of ``weight * criterion(gram(input), gram(target))``; a target of batch 1
    (one style image) is compared with every input. Arguments as :class:`PerceptualLoss`'s, with
    Gatys et al.'s layers and the squared error by default."""

    def __init__(self, layers: str | Sequence[str] = STYLE_LAYERS,
                 weights: Sequence[float] | Mapping[str, float] | None = None, criterion: str = "l2",
                 input_range: Sequence[float] = (0.0, 1.0), backbone: Backbone = "vgg16",
                 normalization: str | dict | None = None, pooling: str = "max") -> None:
        super().__init__(layers, weights, criterion, input_range, backbone, normalization, pooling)

    def grams(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each layer's Gram matrix (N, C, C) for images in ``input_range``: a style target to keep."""
        return {n: gram_matrix(f) for n, f in self.features(x).items()}

    def forward(self, input: torch.Tensor, target: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``target``: style images, or their :meth:`grams` computed once."""
        if isinstance(target, Mapping):
            missing = [n for n in self.layers if n not in target]
            if missing:
                raise VggnetError(f"the style targets lack layer(s) {missing}; compute them with grams()")
            gy = {n: target[n].detach() for n in self.layers}
            gx = self.grams(input)
            if any(gy[n].shape[0] not in (1, gx[n].shape[0]) or gy[n].shape[1:] != gx[n].shape[1:]
                   for n in self.layers):
                raise VggnetError("the style targets' Gram matrices do not fit this batch (one style, or one "
                                  "per input, from the same layers)")
        else:
            if input.shape[1] != target.shape[1] or target.shape[0] not in (1, input.shape[0]):
                raise VggnetError(f"StyleLoss needs one style image or one per input: input {tuple(input.shape)}, "
                                  f"target {tuple(target.shape)}")
            fx, fy = self._pair(input, target)
            gx = {n: gram_matrix(f) for n, f in fx.items()}
            gy = {n: gram_matrix(f) for n, f in fy.items()}
        loss = CRITERIA[self.criterion]
        return sum(w * loss(gx[n], gy[n].expand_as(gx[n]))
                   for n, w in zip(self.layers, self.layer_weights, strict=True))
