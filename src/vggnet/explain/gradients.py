"""Where a classifier looks: Grad-CAM, Grad-CAM++, gradient saliency and guided backpropagation.

- **Grad-CAM** (Selvaraju et al., 2017): the class score's gradient with respect to a layer's
  maps, averaged over positions, weighs the maps; their positive sum, upsampled to the image,
  shows where the evidence for the class lies.
- **Grad-CAM++** (Chattopadhay et al., 2018): the same with per-position weights
  ``a = g^2 / (2 g^2 + sum(A) g^3)`` over the positive gradients, better for several instances.
- **Saliency** (Simonyan et al., 2014, by the same Oxford group): ``|d score / d pixel|``, the
  largest over the colour channels.
- **Guided backpropagation** (Springenberg et al., 2015): the input gradient with only positive
  gradients let back through each ReLU (and GELU); times the Grad-CAM map it is guided Grad-CAM.

Layers are named as the paper names them (``conv5_3``), by a feature level (``block3``) or by
module path (``features.28``), never by a bare index. The usual trap is avoided by construction:
a VGG's ReLUs run in place, so a hook on ``conv5_3`` would see its output overwritten by
``relu5_3`` and a backward hook would fail; here every in-place activation is switched off while
the maps are computed and restored afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.errors import VggnetError

ACTIVATIONS = (nn.ReLU, nn.GELU)


def layer_choices(model: nn.Module) -> dict[str, str]:
    """Every layer name a user may pass, and its module path: paper names, then feature levels."""
    names = dict(getattr(model, "layer_names", {}))
    for level in getattr(model, "feature_info", None) or []:
        names.setdefault(level["name"], level["module"])
    return names


def default_layer(model: nn.Module) -> str:
    """The ReLU after a paper VGG's last convolution (relu5_3 for D, relu5_4 for E), else the deepest
    feature level: the rectified maps of the finest class-specific layer, as Grad-CAM's authors use."""
    names = getattr(model, "layer_names", {})
    convs = [n for n in names if n.startswith("conv")]
    if convs:
        relu = "relu" + convs[-1].removeprefix("conv")
        return relu if relu in names else convs[-1]
    levels = getattr(model, "feature_info", None) or []
    if not levels:
        raise VggnetError(f"{type(model).__name__} has no named layers; pass --layer as a module path")
    return levels[-1]["name"]


def layer_path(model: nn.Module, layer: str | None) -> tuple[str, str]:
    """(name, module path) for a paper name, a feature level or a module path of the convolutional
    part; None: :func:`default_layer`. A bare index, an empty name or a layer of the head is refused."""
    layer = default_layer(model) if layer is None else layer
    choices = layer_choices(model)
    path = choices.get(layer, layer)
    if not layer.strip() or path not in dict(model.named_modules()) or path == "":
        raise VggnetError(f"unknown layer {layer!r}; valid: {', '.join(choices) or 'module paths'}")
    if not any(path.startswith(t + ".") or path == t for t in getattr(model, "trunk", ("features",))):
        raise VggnetError(f"{layer} is not a spatial layer; pass one of the convolutional part "
                          f"({default_layer(model)}, ...)")
    return layer, path


def resolve_layer(model: nn.Module, layer: str | None) -> tuple[str, nn.Module]:
    """(name, module) for :func:`layer_path`'s layer."""
    name, path = layer_path(model, layer)
    return name, model.get_submodule(path)


@contextlib.contextmanager
def out_of_place(model: nn.Module) -> Iterator[None]:
    """Every in-place activation computes out of place for the duration (hooks then see true values)."""
    switched = [m for m in model.modules() if getattr(m, "inplace", False)]
    for m in switched:
        m.inplace = False
    try:
        yield
    finally:
        for m in switched:
            m.inplace = True


@contextlib.contextmanager
def recording(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """A list that receives ``module``'s output at each forward call for the duration."""
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        yield seen
    finally:
        handle.remove()


@contextlib.contextmanager
def guided(model: nn.Module) -> Iterator[None]:
    """Guided backpropagation: each activation passes back only positive gradients."""
    hooks = [m.register_full_backward_hook(lambda _m, grad_in, _out: (grad_in[0].clamp(min=0),))
             for m in model.modules() if isinstance(m, ACTIVATIONS)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


@dataclass
class ClassMaps:
    """One image's pictures for one class, each at the input's size; maps scaled to [0, 1]."""

    index: int
    probability: float
    gradcam: torch.Tensor  # (H, W)
    gradcam_pp: torch.Tensor  # (H, W)
    saliency: torch.Tensor  # (H, W)
    guided: torch.Tensor  # (3, H, W), signed, scaled so that the largest magnitude is 1
    guided_gradcam: torch.Tensor  # (3, H, W), guided backprop times the Grad-CAM map


def _unit(m: torch.Tensor) -> torch.Tensor:
    top = m.max()
    return m / top if top > 0 else m


def _signed_unit(m: torch.Tensor) -> torch.Tensor:
    top = m.abs().max()
    return m / top if top > 0 else m


def _cams(acts: torch.Tensor, grads: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM and Grad-CAM++ from one image's maps (C, h, w) and their gradients, upsampled."""
    cam = F.relu((grads.mean(dim=(1, 2), keepdim=True) * acts).sum(0))
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + acts.sum(dim=(1, 2), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    cam_pp = F.relu(((alpha * F.relu(grads)).sum(dim=(1, 2), keepdim=True) * acts).sum(0))
    up = F.interpolate(torch.stack([cam, cam_pp])[None], size=size, mode="bilinear", align_corners=False)[0]
    return _unit(up[0]), _unit(up[1])


def class_maps(model: nn.Module, x: torch.Tensor, classes: list[int], layer: str | None = None,
               std: Sequence[float] | None = None) -> list[ClassMaps]:
    """Grad-CAM, Grad-CAM++, saliency and guided backprop of ``classes`` for one image ``x``
    (1, C, H, W), normalised as the model expects, at ``layer`` (default: :func:`default_layer`).
    ``std``: the normalisation's per-channel std, so that the gradients are per pixel value, not per
    normalised unit. The model is run in eval mode and left as it was found."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise VggnetError(f"class_maps explains one image at a time, shape (1, C, H, W); got {tuple(x.shape)}")
    _, module = resolve_layer(model, layer)
    training = model.training
    model.eval()
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        maps = _maps(model, module, x.float().detach(), classes, std)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(training)
    return maps


def _maps(model: nn.Module, module: nn.Module, x: torch.Tensor, classes: list[int],
          std: Sequence[float] | None) -> list[ClassMaps]:
    size = (x.shape[-2], x.shape[-1])
    with out_of_place(model):
        with recording(module) as seen:
            x_in = x.clone().requires_grad_(True)
            logits = model(x_in)
        if logits.dim() != 2 or not all(0 <= k < logits.shape[1] for k in classes):
            raise VggnetError(f"class index out of range: the model has {logits.shape[-1]} classes")
        probs = logits.detach().softmax(1)[0]
        plain = []
        for k in classes:
            g_act, g_in = torch.autograd.grad(logits[0, k], [seen[0], x_in], retain_graph=True)
            plain.append((g_act[0], g_in[0]))
        with guided(model):
            x_g = x.clone().requires_grad_(True)
            logits_g = model(x_g)
            guided_grads = [torch.autograd.grad(logits_g[0, k], x_g, retain_graph=True)[0][0] for k in classes]
    acts = seen[0].detach()[0]
    per_pixel = 1 / torch.tensor(std, dtype=x.dtype).view(-1, 1, 1) if std is not None else 1.0  # d/dx = d/dx_n / std
    out = []
    for k, (g_act, g_in), g_guided in zip(classes, plain, guided_grads, strict=True):
        cam, cam_pp = _cams(acts, g_act, size)
        g_in, g_guided = g_in * per_pixel, g_guided * per_pixel
        gb = _signed_unit(g_guided)
        out.append(ClassMaps(k, float(probs[k]), cam, cam_pp, _unit(g_in.abs().amax(0)), gb,
                             _signed_unit(gb * cam)))
    return out
