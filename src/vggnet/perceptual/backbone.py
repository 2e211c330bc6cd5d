"""A frozen VGG trunk for losses and metrics, and the input it expects.

Most wrong perceptual losses are wrong silently: images in [-1, 1] fed to a network trained on
ImageNet-normalised [0, 1] RGB, or RGB fed to Caffe/Keras weights that want BGR minus the mean
pixel. Here the caller states the range its images are in (``input_range``) and every batch is
checked against it; the normalisation comes from where the weights came from (the file's source,
or a vggnet checkpoint's own metadata), never from a guess.

The trunk is a copy of the network's convolutional part cut after the deepest layer asked for
(a loss at ``relu2_2`` runs 2 of 13 convolutions and holds 0.2% of VGG-16's weights), its
parameters frozen and always in eval mode; ``pooling='avg'`` swaps the max-pools for average
pools, as Gatys et al.'s style transfer does.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models.features import FeatureExtractor

log = logging.getLogger("vggnet")

Backbone = str | os.PathLike[str] | nn.Module
"""A known weight name (``vgg16``, ``vgg19.keras``), a weight file, or a vggnet VGG module."""

POOLINGS = ("max", "avg")


def check_range(value: Sequence[float]) -> tuple[float, float]:
    """``input_range`` as a (low, high) pair of finite numbers with low < high."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise VggnetError(f"input_range is a pair (low, high) such as (0, 1) or (-1, 1); got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise VggnetError(f"input_range needs finite low < high; got ({lo}, {hi})")
    return lo, hi


class RangeCheck:
    """Stops a batch that is not images in the declared range (not float, not 3 channels, empty,
    NaN, or outside the range), and warns (once) about a batch whose values all sit where another
    common range would put them: [0, 1] images declared as [-1, 1] pass the bounds but give a
    silently wrong loss."""

    def __init__(self, low: float, high: float, owner: str) -> None:
        self.low, self.high, self.owner = low, high, owner
        self.slack = 1e-3 * (high - low)  # rounding (bf16, a resize) may overshoot by a hair
        self.warned = False

    def __call__(self, x: torch.Tensor, name: str = "input") -> None:
        if not x.is_floating_point():
            raise VggnetError(f"{self.owner}: {name} is {str(x.dtype).removeprefix('torch.')}; pass float images "
                              f"in [{self.low:g}, {self.high:g}] (e.g. uint8 / 255 with input_range=(0, 1))")
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[0] == 0:
            raise VggnetError(f"{self.owner}: {name} has shape {tuple(x.shape)}; pass a non-empty batch of RGB "
                              "images, (N, 3, H, W)")
        lo, hi = (float(v) for v in torch.aminmax(x.detach().float()))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise VggnetError(f"{self.owner}: {name} holds NaN or infinite values")
        if lo < self.low - self.slack or hi > self.high + self.slack:
            raise VggnetError(f"{self.owner}: {name} has values in [{lo:.4g}, {hi:.4g}], outside input_range "
                              f"[{self.low:g}, {self.high:g}]; {_hint(lo, hi, self.low, self.high)}")
        if not self.warned and x.numel() > 1:
            suspect = _suspect(lo, hi, self.low, self.high)
            if suspect:
                self.warned = True
                log.warning("%s: %s; if so, pass input_range=%s", self.owner, suspect[0], suspect[1])


def _hint(lo: float, hi: float, low: float, high: float) -> str:
    """What to do: another declared range only where the values clearly come from it (a [0, 255]
    image has values far above 1, a [-1, 1] image clearly negative ones); an overshoot of up to a
    tenth of the range (an upsampler's, an unclamped network's) is clamped, never reinterpreted."""
    span = high - low
    if lo >= low - 0.1 * span and hi <= high + 0.1 * span:
        return f"clamp them into [{low:g}, {high:g}] first (an overshoot, e.g. from resampling)"
    if lo >= -1e-3 and 2 < hi <= 255.5 and (low, high) != (0.0, 255.0):
        return "pass input_range=(0, 255) if that is your images' range"
    if -1.001 <= lo < -0.1 and hi <= 1.001 and (low, high) != (-1.0, 1.0):
        return "pass input_range=(-1, 1) if that is your images' range"
    return "rescale the images into input_range"


def _suspect(lo: float, hi: float, low: float, high: float) -> tuple[str, str] | None:
    """A range whose images would look like this batch, when it is not the declared one."""
    if (low, high) == (-1.0, 1.0) and lo >= 0.0 and hi > 0.05:
        return "every value is >= 0, as [0, 1] images are", "(0, 1)"
    if (low, high) == (0.0, 255.0) and hi <= 1.0:
        return "every value is <= 1, as [0, 1] images are", "(0, 1)"
    return None


class Normalize(nn.Module):
    """Images in ``input_range`` to what the weights were trained on: [0, 1], the channel order
    (RGB, or BGR for Caffe/Keras weights), then ``(x - mean) / std`` on the [0, 1] scale."""

    def __init__(self, input_range: tuple[float, float], mean: Sequence[float], std: Sequence[float],
                 bgr: bool = False) -> None:
        super().__init__()
        lo, hi = input_range
        self.bgr = bgr
        mean_t, std_t = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        # one affine map per channel: ((x - lo) / (hi - lo) - mean) / std = x * scale + shift
        self.register_buffer("scale", (1 / ((hi - lo) * std_t)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", (-(lo / (hi - lo)) / std_t - mean_t / std_t).view(1, -1, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bgr:
            x = x.flip(1)
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def preprocessing_of(source: str, meta: dict | None = None) -> dict:
    """The channel order, mean and std of weights from ``source`` ('torchvision', 'keras') or of a
    vggnet checkpoint (its metadata), checked: three finite means, three positive stds, RGB or BGR."""
    from vggnet.weights.hub import PREPROCESSING

    if meta and ("mean" in meta or "std" in meta):
        prep = {"channels": str(meta.get("channels", "RGB")).upper(), "mean": meta.get("mean"),
                "std": meta.get("std")}
    elif source in PREPROCESSING:
        prep = dict(PREPROCESSING[source])
    else:
        raise VggnetError(f"unknown normalization {source!r}; valid: {', '.join(PREPROCESSING)}, or a dict "
                          "with mean, std and channels")
    try:
        mean, std = [float(v) for v in prep["mean"]], [float(v) for v in prep["std"]]
    except (TypeError, ValueError):
        raise VggnetError(f"normalization needs mean and std, three numbers each; got {prep}") from None
    if (len(mean), len(std)) != (3, 3) or not all(math.isfinite(v) for v in mean) or \
            not all(math.isfinite(v) and v > 0 for v in std) or prep["channels"] not in ("RGB", "BGR"):
        raise VggnetError("normalization needs three finite means, three positive stds and channels 'RGB' "
                          f"or 'BGR'; got {prep}")
    return {"channels": prep["channels"], "mean": mean, "std": std}


def load_backbone(backbone: Backbone, normalization: str | dict | None = None) -> tuple[nn.Module, dict]:
    """A VGG with weights and the preprocessing those weights expect. A module is used as given
    (copied, never changed), its preprocessing ``normalization`` (default torchvision's)."""
    if isinstance(backbone, nn.Module):
        if not hasattr(backbone, "layer_names"):
            raise VggnetError(f"{type(backbone).__name__} has no paper layer names; pass a vggnet VGG "
                              "(vggnet.create_model('vgg16', pretrained=True)) or a weight file")
        model = copy.deepcopy(backbone)
        source, meta = "torchvision", None
    else:
        from vggnet.weights.load import pretrained_model, read_weights

        src = read_weights(backbone)
        model, _ = pretrained_model(None, src, warn=False)  # a no-top file: the head is not used here
        if not hasattr(model, "layer_names"):
            raise VggnetError(f"{backbone} holds {getattr(model, 'model_name', 'a network')}, not a VGG of the paper")
        source, meta = src.source, src.meta
    if isinstance(normalization, dict):
        prep = preprocessing_of("", {"mean": None, "std": None, **normalization})
    else:
        prep = preprocessing_of(normalization or source, None if normalization else meta)
    return model, prep


def frozen_extractor(model: nn.Module, layers: Sequence[str], pooling: str = "max") -> FeatureExtractor:
    """A :class:`FeatureExtractor` for ``layers`` over ``model``'s trunk cut after the deepest of
    them, frozen, in eval mode; ``pooling='avg'`` replaces the max-pools by 2x2 average pools."""
    if pooling not in POOLINGS:
        raise VggnetError(f"pooling is 'max' or 'avg', got {pooling!r}")
    if len(set(layers)) != len(layers):
        raise VggnetError(f"layers {list(layers)} name a layer twice; give each once (weights= weighs them)")
    names: dict[str, str] = model.layer_names
    unknown = [n for n in layers if n not in names]
    if unknown or not layers:
        raise VggnetError(f"unknown layer name(s) {unknown}; valid: {', '.join(names)}")
    if any(not names[n].startswith("features.") for n in layers):
        raise VggnetError(f"perceptual layers are convolutional ({', '.join(n for n in names if 'conv' in n)}, "
                          f"...); got {', '.join(n for n in layers if not names[n].startswith('features.'))}")
    deepest = max(int(names[n].split(".")[1]) for n in layers)
    model.features = model.features[: deepest + 1]  # a slice keeps the children's names (features.N)
    model.avgpool, model.classifier = nn.Identity(), nn.Identity()
    if pooling == "avg":
        for key, module in model.features.named_children():
            if isinstance(module, nn.MaxPool2d):
                setattr(model.features, key, nn.AvgPool2d(module.kernel_size, module.stride))
    model.requires_grad_(False)
    return FeatureExtractor(model.eval(), list(layers))
