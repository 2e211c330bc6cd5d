"""LPIPS v0.1 with VGG-16 (Zhang et al., CVPR 2018), the published formula and calibration.

For images ``x`` and ``y`` in [-1, 1]:

1. the fixed scaling layer ``(x - shift) / scale`` (shift -0.030, -0.088, -0.188; scale 0.458,
   0.448, 0.450: ImageNet's mean and std on the [-1, 1] scale, rounded as published);
2. VGG-16's features at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 of both images;
3. each feature vector divided by its norm over channels (plus 1e-10);
4. the squared difference, weighted per channel by the layer's published 1x1 linear layer
   (non-negative weights, no bias), which gives one value per position;
5. the mean over positions, and the sum over the five layers.

Images are used at their own size (both of one size). ``spatial=True`` gives the map instead of
the mean: each layer's values upsampled bilinearly to the image size, then summed. The linear
weights ship with vggnet (``lpips_vgg-v0.1.safetensors``, BSD licence in ``LICENSE-LPIPS.txt``),
checked by sha256; the published ``vgg.pth`` (saved on a CUDA device) is read on the CPU too.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.errors import CheckpointError, VggnetError
from vggnet.perceptual.backbone import Backbone, RangeCheck, check_range, frozen_extractor, load_backbone

LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
CHANNELS = (64, 128, 256, 512, 512)
LINEAR_KEYS = tuple(f"lin{k}.model.1.weight" for k in range(len(LAYERS)))
LINEAR_FILE = Path(__file__).parent / "lpips_vgg-v0.1.safetensors"
LINEAR_SHA256 = "eee89febd10809d038e20bbc10b7c010c590bbfabef5b43e2d7628c41445ea35"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
MAX_PIXELS = 2048 * 2048
"""The largest image LPIPS takes: relu1_2 of a 2048 x 2048 image is 1.1 GB in float32, and both
images' maps are held at once (a few GB at the peak); larger images are compared in crops or tiles."""


def linear_weights(path: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """The five (1, C, 1, 1) calibration layers: the shipped file (sha256-checked), or ``path``: a
    file in the published layout (``lin0.model.1.weight`` ...), .pth or .safetensors, on any device."""
    from safetensors.torch import load_file

    from vggnet.data.download import file_digest
    from vggnet.weights.load import check_weight_file

    file = Path(path) if path is not None else LINEAR_FILE
    if path is None and (not file.is_file() or file_digest(file, "sha256") != LINEAR_SHA256):
        raise CheckpointError(f"{file} is missing or damaged (its sha256 differs from the record); reinstall vggnet")
    check_weight_file(file)
    try:
        state = load_file(file) if file.suffix == ".safetensors" else torch.load(file, map_location="cpu",
                                                                                  weights_only=True)
    except Exception as err:
        raise CheckpointError(f"cannot read LPIPS linear weights {file}: {str(err).splitlines()[0]}") from None
    if not isinstance(state, dict) or any(k not in state for k in LINEAR_KEYS):
        raise CheckpointError(f"{file} is not an LPIPS VGG calibration: it needs {', '.join(LINEAR_KEYS)}")
    for key, channels in zip(LINEAR_KEYS, CHANNELS, strict=True):
        if tuple(state[key].shape) != (1, channels, 1, 1):
            raise CheckpointError(f"{file}: {key} has shape {tuple(state[key].shape)}, expected (1, {channels}, 1, 1)")
        if not state[key].is_floating_point() or not bool((state[key].float() >= 0).all()):
            raise CheckpointError(f"{file}: {key} holds negative, NaN or non-float weights; LPIPS's are >= 0")
    return {k: state[k].float().cpu() for k in LINEAR_KEYS}


def _calibrated_for(model: nn.Module, prep: dict) -> str | None:
    """Why the published calibration does not fit this backbone, or None: it was fitted to
    torchvision's VGG-16, full width, RGB, fed ImageNet's normalisation by the scaling layer."""
    from vggnet.weights.hub import PREPROCESSING

    name = getattr(model, "model_name", type(model).__name__)
    if getattr(model, "config", None) != "D" or any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return f"it is {name}"
    width, chans = getattr(model, "width", 1.0), getattr(model, "in_chans", 3)
    if width != 1.0 or chans != 3:
        return f"it is {name} at width {width:g} with {chans} input channels"
    torchvision = PREPROCESSING["torchvision"]
    if prep["channels"] != "RGB" or any(abs(a - b) > 1e-3 for a, b in zip(
            [*prep["mean"], *prep["std"]], [*torchvision["mean"], *torchvision["std"]], strict=True)):
        return (f"its weights expect other input ({prep['channels']}, mean {prep['mean']}, std {prep['std']}), "
                "not ImageNet's normalisation, which LPIPS's scaling layer gives")
    return None


class LPIPS(nn.Module):
    """The LPIPS v0.1 distance with VGG-16: ``LPIPS()(x, y)`` is one value per image pair.

    Args:
        backbone: torchvision-layout VGG-16 weights (default ``vgg16``, torchvision's file,
            downloaded once), a file, or a vggnet ``vgg16`` module. The calibration was fitted
            to torchvision's VGG-16; another network's features would be weighed wrongly.
        linear: the calibration file; default: the published one, shipped with vggnet.
        input_range: the images' range: (-1, 1) as published, or (0, 1) / (0, 255), mapped to it.
        spatial: return the (N, 1, H, W) map instead of its mean.
    """

    def __init__(self, backbone: Backbone = "vgg16", linear: str | os.PathLike[str] | None = None,
                 input_range: tuple[float, float] = (-1.0, 1.0), spatial: bool = False) -> None:
        super().__init__()
        low, high = check_range(input_range)
        self.input_range, self.spatial = (low, high), spatial
        self._check = RangeCheck(low, high, "LPIPS")
        model, prep = load_backbone(backbone, "torchvision" if isinstance(backbone, nn.Module) else None)
        why = _calibrated_for(model, prep)
        if why:
            shown = "the module" if isinstance(backbone, nn.Module) else str(backbone)
            raise VggnetError(f"LPIPS v0.1 is calibrated on torchvision's VGG-16 (RGB, no BatchNorm); {shown}: "
                              f"{why}; pass vgg16 or a torchvision-layout VGG-16 file")
        self.extractor = frozen_extractor(model, LAYERS)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        state = linear_weights(linear)
        with torch.no_grad():
            for conv, key in zip(self.lins, LINEAR_KEYS, strict=True):
                conv.weight.copy_(state[key])
        self.requires_grad_(False)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Always in eval mode: the trunk's and the calibration's weights are fixed."""
        return super().train(False)

    def _scaled(self, x: torch.Tensor, name: str) -> torch.Tensor:
        self._check(x, name)
        if x.shape[-2] * x.shape[-1] > MAX_PIXELS:
            raise VggnetError(f"LPIPS: {name} is {x.shape[-1]} x {x.shape[-2]} pixels, over the {MAX_PIXELS:,} it "
                              "takes; compare crops or tiles")
        low, high = self.input_range
        x = x.to(self.shift.dtype)  # float64 or half images, a float32 network
        x = (x - low) * (2 / (high - low)) - 1  # to [-1, 1]: the identity for the published range
        return (x - self.shift) / self.scale

    def forward(self, x: torch.Tensor, y: torch.Tensor, per_layer: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N,) distances (``spatial``: (N, 1, H, W) maps); ``per_layer=True`` also returns each
        layer's share, in the same shape, by layer name. A batch of 1 is compared with every image."""
        if x.shape[1:] != y.shape[1:] or (x.shape[0] != y.shape[0] and 1 not in (x.shape[0], y.shape[0])):
            raise VggnetError(f"LPIPS compares images of one size: {tuple(x.shape)} and {tuple(y.shape)}")
        fx = self.extractor(self._scaled(x, "the first image"))
        fy = self.extractor(self._scaled(y, "the second image"))
        shares: dict[str, torch.Tensor] = {}
        for name, lin in zip(LAYERS, self.lins, strict=True):
            a, b = _unit(fx[name].float()), _unit(fy[name].float())
            value = lin((a - b) ** 2)  # (N, 1, h, w)
            if self.spatial:
                shares[name] = F.interpolate(value, size=x.shape[-2:], mode="bilinear", align_corners=False)
            else:
                shares[name] = value.mean(dim=(1, 2, 3))
        total = sum(shares.values())
        return (total, shares) if per_layer else total


def _unit(f: torch.Tensor) -> torch.Tensor:
    """Each position's feature vector divided by its length over channels (LPIPS's normalize_tensor)."""
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
