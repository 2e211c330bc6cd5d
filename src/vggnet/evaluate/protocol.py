"""The paper's test protocol (sections 3.2, 4.2-4.4): centre crop, dense, multi-crop, fusion, ensembles.

Every function takes a batch of normalised images of one size, (N, 3, H, W), and returns class
posteriors (N, classes): softmax outputs averaged over whatever the protocol averages (flips,
scales, crops, models), as the paper averages "soft-max class posteriors".

- centre: rescale the smaller side to Q, take the central crop the net was trained on.
- dense: rescale to Q and run the fully-convolutional net on the whole image; the class score
  map is averaged over its positions; the image and its mirror are averaged.
- multi-crop: a 5x5 grid of crops and their mirrors at every scale (150 crops for 3 scales).
- dense+multi-crop: the average of the two, the paper's best single-model result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models.fully_conv import spatial_average, to_fully_convolutional

PROTOCOLS = ("center", "dense", "multi-crop", "dense+multi-crop")


def paper_scales(scale: int | tuple[int, int]) -> tuple[int, ...]:
    """Test scales Q of section 4.2: {S-32, S, S+32} for a fixed S, {S_min, middle, S_max} if jittered."""
    lo, hi = (scale, scale) if isinstance(scale, int) else scale
    return (lo - 32, lo, lo + 32) if lo == hi else (lo, (lo + hi) // 2, hi)


def rescale(x: torch.Tensor, q: int) -> torch.Tensor:
    """Isotropically rescale a batch so that its smaller side is ``q`` (bilinear)."""
    h, w = x.shape[-2:]
    if min(h, w) == q:
        return x
    size = (q, max(q, round(w * q / h))) if h <= w else (max(q, round(h * q / w)), q)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def crop_grid(x: torch.Tensor, crop: int, grid: int = 5) -> torch.Tensor:
    """A ``grid`` x ``grid`` set of evenly spaced ``crop`` x ``crop`` crops: (N * grid^2, 3, crop, crop)."""
    h, w = x.shape[-2:]
    if min(h, w) < crop:
        raise VggnetError(f"cannot take {crop}x{crop} crops from {h}x{w} images")
    tops = torch.linspace(0, h - crop, grid).round().long().tolist()
    lefts = torch.linspace(0, w - crop, grid).round().long().tolist()
    crops = [x[:, :, t : t + crop, s : s + crop] for t in tops for s in lefts]
    return torch.stack(crops, dim=1).flatten(0, 1)  # image-major: crops of image 0 first


def _views(x: torch.Tensor, flip: bool) -> list[torch.Tensor]:
    return [x, x.flip(-1)] if flip else [x]


@torch.no_grad()
def center_probs(model: nn.Module, x: torch.Tensor, q: int, crop: int) -> torch.Tensor:
    """Posteriors of the central ``crop`` of the image rescaled to ``q``."""
    x = rescale(x, q)
    top, left = (x.shape[-2] - crop) // 2, (x.shape[-1] - crop) // 2
    return model(x[:, :, top : top + crop, left : left + crop]).float().softmax(1)


@torch.no_grad()
def dense_probs(fc_model: nn.Module, x: torch.Tensor, scales: Sequence[int], flip: bool = True) -> torch.Tensor:
    """Dense evaluation with a fully-convolutional net: score maps averaged, then softmax, then mean."""
    probs = [spatial_average(fc_model(v).float()).softmax(1) for q in scales for v in _views(rescale(x, q), flip)]
    return torch.stack(probs).mean(0)


@torch.no_grad()
def multicrop_probs(
    model: nn.Module, x: torch.Tensor, scales: Sequence[int], crop: int, grid: int = 5, flip: bool = True,
    chunk: int = 64,
) -> torch.Tensor:
    """Average posteriors over ``grid``^2 crops (and mirrors) at every scale."""
    n = x.shape[0]
    total, count = None, 0
    for q in scales:
        for v in _views(rescale(x, q), flip):
            crops = crop_grid(v, crop, grid)
            p = torch.cat([model(c).float().softmax(1) for c in crops.split(chunk)])
            p = p.view(n, grid * grid, -1).sum(1)
            total = p if total is None else total + p
            count += grid * grid
    return total / count


def protocol_fn(
    model: nn.Module, protocol: str, scales: Sequence[int], crop: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """images -> posteriors for one model under ``protocol`` (the FC->conv net is built once)."""
    if protocol not in PROTOCOLS:
        raise VggnetError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    model.eval()
    fc_model = to_fully_convolutional(model).eval() if "dense" in protocol else None
    if protocol == "center":
        return lambda x: center_probs(model, x, scales[0], crop)
    if protocol == "dense":
        return lambda x: dense_probs(fc_model, x, scales)
    if protocol == "multi-crop":
        return lambda x: multicrop_probs(model, x, scales, crop)
    return lambda x: (dense_probs(fc_model, x, scales) + multicrop_probs(model, x, scales, crop)) / 2


def ensemble(fns: Sequence[Callable[[torch.Tensor], torch.Tensor]]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Average the posteriors of several models (section 4.4)."""
    if not fns:
        raise VggnetError("an ensemble needs at least one model")
    return lambda x: torch.stack([fn(x) for fn in fns]).mean(0)
