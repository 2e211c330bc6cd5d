"""The paper's preprocessing and augmentation, and CIFAR's, split where each runs fastest.

Per image (PIL, in DataLoader workers, large images only): isotropic rescale of the smaller side
to S (fixed, or jittered in [S_min, S_max]) and a random 224 crop at train time; rescale to Q and
a centre crop at test time. Everything else runs on whole uint8 batches on the training device:
CIFAR's pad-and-crop, horizontal flips, AlexNet's PCA colour shift, and the mean subtraction
(the paper subtracts the training set's mean RGB value and nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image


def rescaled_size(w: int, h: int, side: int) -> tuple[int, int]:
    """The size of a ``w`` x ``h`` image whose smaller side is rescaled to ``side``."""
    scale = side / min(w, h)
    return max(side, round(w * scale)), max(side, round(h * scale))


def to_uint8_chw(img: Image.Image) -> torch.Tensor:
    """A PIL RGB image as a (3, H, W) uint8 tensor."""
    w, h = img.size
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(h, w, 3).permute(2, 0, 1)


class RescaleCrop:
    """Rescale the smaller side to S, then crop ``crop`` x ``crop`` (random or centred).

    ``scale`` is one S, or a range (S_min, S_max) sampled per image: the paper's scale jittering.
    """

    def __init__(self, scale: int | tuple[int, int], crop: int, random: bool) -> None:
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if self.scale[0] < crop:
            raise ValueError(f"scale {self.scale[0]} is smaller than the crop {crop}")
        self.crop, self.random = crop, random

    def __call__(self, img: Image.Image) -> torch.Tensor:
        lo, hi = self.scale
        side = int(torch.randint(lo, hi + 1, ()).item()) if self.random and hi > lo else lo
        w, h = img.size
        width, height = rescaled_size(w, h, side)
        if self.random:
            left = int(torch.randint(0, width - self.crop + 1, ()).item())
            top = int(torch.randint(0, height - self.crop + 1, ()).item())
        else:
            left, top = (width - self.crop) // 2, (height - self.crop) // 2
        # only the crop's window is resampled (the same filter as rescaling the whole image, then
        # cropping): 3x less work for a 224 crop of an image rescaled to 384 x 512
        sx, sy = w / width, h / height
        box = (left * sx, top * sy, (left + self.crop) * sx, (top + self.crop) * sy)
        return to_uint8_chw(img.resize((self.crop, self.crop), Image.BILINEAR, box=box))


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None = None,
                mode: str = "zeros") -> torch.Tensor:
    """Pad a batch by ``pad`` and take one random crop of the original size per image: shifts of
    up to ``pad`` pixels. ``mode`` 'zeros' pads with black; 'reflect' mirrors the border (the
    pixel past the edge is the one inside it), so a shifted image has no black band to learn."""
    n, _, h, w = x.shape
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=generator, device=x.device)
    rows = dy + torch.arange(h, device=x.device).view(1, h, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    if mode == "reflect":  # index the image itself: row -1 is row 1, row h is row h - 2
        rows, cols = _reflect(rows - pad, h), _reflect(cols - pad, w)
        return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # NHWC: one gather per pixel
    return padded[batch, rows, cols].permute(0, 3, 1, 2)  # NCHW view of NHWC memory


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside [0, size) mirrored back inside, without repeating the edge (numpy 'reflect')."""
    period = 2 * (size - 1)
    index = index.remainder(period) if period else index.clamp(0, 0)
    return torch.where(index >= size, period - index, index)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def pca_basis(images: torch.Tensor, max_pixels: int = 1_000_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors (columns) of the RGB covariance of uint8 images, [0, 1] scale."""
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3)
    if len(pixels) > max_pixels:
        pixels = pixels[:: -(-len(pixels) // max_pixels)]  # evenly spaced, at most max_pixels
    eigval, eigvec = torch.linalg.eigh(torch.cov(pixels.double().T / 255))
    return eigval.float(), eigvec.float()


def pca_colour(
    x: torch.Tensor, eigval: torch.Tensor, eigvec: torch.Tensor, std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """AlexNet's colour shift: add sum_i a_i * lambda_i * p_i to every pixel, a_i ~ N(0, std)."""
    alpha = torch.randn(x.shape[0], 3, generator=generator, device=x.device) * std
    shift = (alpha * eigval.to(x.device)) @ eigvec.to(x.device).T  # (N, 3)
    return x + shift.view(-1, 3, 1, 1)


@dataclass
class BatchTransform:
    """uint8 batch -> normalised float batch, with the train-time augmentation on the device.

    ``std`` of 1.0 per channel is the paper's mean subtraction only. ``size`` resizes every batch
    (e.g. CIFAR upsampled to 224, an option some re-implementations take). ``bgr`` reverses the
    channels before normalising (Caffe-trained weights such as Keras's; ``mean`` is then in BGR order).
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_crop: int = 0
    pad_mode: str = "zeros"  # or 'reflect'
    flip: bool = True
    pca_std: float = 0.0
    pca_eigval: torch.Tensor | None = None
    pca_eigvec: torch.Tensor | None = None
    size: int | None = None
    channels_last: bool = True
    bgr: bool = False

    def __call__(self, x: torch.Tensor, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        if train and self.pad_crop:
            x = random_crop(x, self.pad_crop, generator, self.pad_mode)
        if train and self.flip:
            x = random_flip(x, generator)
        x = x.float().div_(255)
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=False)
        if train and self.pca_std > 0 and self.pca_eigval is not None:
            x = pca_colour(x, self.pca_eigval, self.pca_eigvec, self.pca_std, generator)
        if self.bgr:
            x = x.flip(1)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)



def seen_whole(meta: dict, in_memory: bool = False) -> bool:
    """Whether a checkpoint is tested on whole images at its own input size: images small enough
    to be held in memory, or a network that trained on such images (CIFAR-10's 32 pixels; a copy
    stored at 96 or 224 pixels is seen whole at 32, never as a 32-pixel crop of it rescaled to Q;
    a non-square image: its smaller side at 32, the centre square)."""
    return in_memory or meta.get("in_memory", meta["image_size"] <= 64)


def centre_scale(meta: dict, in_memory: bool = False) -> int:
    """Q of the single centre view: the input size for images seen whole, else the test scale."""
    return meta["image_size"] if seen_whole(meta, in_memory) else meta.get("test_scale", 256)


def eval_transform(meta: dict, in_memory: bool) -> BatchTransform:
    """The test-time preprocessing a checkpoint was trained with: normalise (and resize) only.

    ``meta`` is the checkpoint's metadata (mean, std, image_size, optional channels 'RGB'|'BGR');
    in-memory images are resized to the training size, streamed ones arrive already cropped.
    """
    return BatchTransform(mean=tuple(meta["mean"]), std=tuple(meta["std"]), flip=False,
                          size=meta["image_size"] if in_memory else None, bgr=meta.get("channels") == "BGR")
