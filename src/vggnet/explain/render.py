"""The pictures: heat maps over the image, filter grids, activation grids, a unit's receptive field.

Every picture shows the image as the network saw it (resized and cropped, before normalisation),
titled with what it shows, so a PNG read on its own says what it is. Small images (CIFAR's 32
pixels) are drawn with nearest-neighbour pixels, never smoothed into something the net never saw.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from vggnet.explain.gradients import ClassMaps
from vggnet.plotting import pyplot, save_figure

METHODS = {
    "gradcam": "Grad-CAM",
    "gradcam_pp": "Grad-CAM++",
    "saliency": "saliency |d score / d pixel|",
    "guided": "guided backprop",
    "guided_gradcam": "guided Grad-CAM",
}


def _rgb(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) uint8 or [0, 1] float -> (H, W, 3) float in [0, 1] for imshow."""
    x = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    return x.clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def _signed_rgb(m: torch.Tensor) -> np.ndarray:
    """A signed (3, H, W) gradient in [-1, 1] as an image: 0 is grey."""
    return (0.5 + 0.5 * m.clamp(-1, 1)).permute(1, 2, 0).cpu().numpy()


def draw_method(ax, image: torch.Tensor, maps: ClassMaps, method: str) -> None:
    """One method's picture on ``ax``: heat maps blended over the image, gradients as images."""
    interp = "nearest" if max(image.shape[-2:]) <= 64 else "bilinear"
    if method in ("guided", "guided_gradcam"):
        ax.imshow(_signed_rgb(getattr(maps, method)), interpolation=interp)
    else:
        ax.imshow(_rgb(image), interpolation=interp)
        cmap = "inferno" if method == "saliency" else "jet"
        ax.imshow(getattr(maps, method).cpu().numpy(), cmap=cmap, alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])


def _label(maps: ClassMaps, classes: list[str]) -> str:
    return f"{classes[maps.index]} ({maps.probability:.1%})"


def method_figure(image: torch.Tensor, maps: ClassMaps, method: str, classes: list[str], layer: str,
                  path: str | os.PathLike[str]) -> Path:
    """One PNG: ``method`` for one class over the image, titled with class, probability and layer."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 4.3))
    draw_method(ax, image, maps, method)
    where = f" at {layer}" if "gradcam" in method else ""
    ax.set_title(f"{_label(maps, classes)}\n{METHODS[method]}{where}", fontsize=10)
    return save_figure(fig, path)


def summary_figure(image: torch.Tensor, all_maps: list[ClassMaps], classes: list[str], layer: str, title: str,
                   path: str | os.PathLike[str]) -> Path:
    """One row per class: the image, then every method."""
    plt = pyplot()
    rows, cols = len(all_maps), 1 + len(METHODS)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.5 * rows + 0.4), squeeze=False)
    for r, maps in enumerate(all_maps):
        axes[r][0].imshow(_rgb(image), interpolation="nearest" if max(image.shape[-2:]) <= 64 else "bilinear")
        axes[r][0].set_xticks([])
        axes[r][0].set_yticks([])
        axes[r][0].set_ylabel(_label(maps, classes), fontsize=9)
        for c, method in enumerate(METHODS, start=1):
            draw_method(axes[r][c], image, maps, method)
            if r == 0:
                axes[r][c].set_title(METHODS[method].split(" |")[0], fontsize=9)
    axes[0][0].set_title("input as the net sees it", fontsize=9)
    fig.suptitle(f"{title}  (Grad-CAM at {layer})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def filter_figure(weight: torch.Tensor, title: str, path: str | os.PathLike[str], bgr: bool = False) -> Path:
    """First-layer filters (out, 3, k, k) as small RGB images, each scaled to its own range (the
    usual way: the colours and orientations are what matter, not the absolute size)."""
    plt = pyplot()
    w = weight.detach().float().cpu()
    if bgr:
        w = w.flip(1)
    n = w.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.7, rows * 0.7 + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            f = w[i]
            f = (f - f.min()) / (f.max() - f.min() + 1e-12)
            ax.imshow(f.permute(1, 2, 0).numpy() if f.shape[0] == 3 else f[0].numpy(), interpolation="nearest",
                      cmap=None if f.shape[0] == 3 else "gray")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def activation_figure(image: torch.Tensor, act: torch.Tensor, channels: list[int], title: str,
                      path: str | os.PathLike[str]) -> Path:
    """The image, then the maps of ``channels`` (one image's (C, h, w) activations), each on the
    layer's common scale so that bright means strong across the grid."""
    plt = pyplot()
    n = len(channels) + 1
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.7 + 0.5), squeeze=False)
    top = float(act[channels].max()) or 1.0
    low = min(0.0, float(act[channels].min()))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i == 0:
            ax.imshow(_rgb(image), interpolation="nearest" if max(image.shape[-2:]) <= 64 else "bilinear")
            ax.set_title("input", fontsize=8)
        elif i < n:
            c = channels[i - 1]
            ax.imshow(act[c].cpu().numpy(), cmap="viridis", vmin=low, vmax=top, interpolation="nearest")
            ax.set_title(f"ch {c}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def field_figure(image: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], unit: tuple[int, int],
                 title: str, path: str | os.PathLike[str]) -> Path:
    """The image with one unit's receptive field drawn: the pixels it sees (solid, clipped to the
    image) and its full extent into the zero padding (dashed) where that reaches past the edges."""
    from matplotlib.patches import Rectangle

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5.4))
    h, w = image.shape[-2:]
    ax.imshow(_rgb(image), interpolation="nearest" if max(h, w) <= 64 else "bilinear")
    (top, bottom), (left, right) = rows, cols
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                           ls="--", lw=1.2, ec="white"))
    ct, cb, cl, cr = max(top, 0), min(bottom, h - 1), max(left, 0), min(right, w - 1)
    ax.add_patch(Rectangle((cl - 0.5, ct - 0.5), cr - cl + 1, cb - ct + 1, fill=True, alpha=0.25, lw=2, ec="red",
                           fc="red"))
    ax.plot([(left + right) / 2], [(top + bottom) / 2], "r+", ms=12, mew=2)
    ax.set_xlim(min(-0.5, left - 1.5), max(w - 0.5, right + 1.5))
    ax.set_ylim(max(h - 0.5, bottom + 1.5), min(-0.5, top - 1.5))
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
