"""Training recipes as data: one frozen dataclass, four named presets, every field overridable.

``paper`` is Section 3.1 of Simonyan & Zisserman; ``adam`` is the re-implementation most
tutorials use; ``cifar`` is a short one-cycle SGD schedule for any BatchNorm VGG on 32x32 images
(Nesterov SGD, linear warm-up then linear decay, label smoothing, pad-crop + flip, no dropout);
``cifar-fast`` is the time-to-accuracy recipe: ``vgg_fast`` (a small BN VGG with a whitening
stem) at a high rate, with flips that alternate per image from epoch to epoch and mirrored +
shifted test-time views, the ingredients of the fastest public CIFAR-10 runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

from vggnet.errors import VggnetError
from vggnet.models.init import INIT_SCHEMES
from vggnet.models.vgg import HEADS
from vggnet.names import MEMORY_FORMATS, PRECISIONS


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a network is trained (the data and the model aside)."""

    name: str
    model: str = ""  # the network trained when none is named ('' : one must be named)
    optimizer: str = "sgd"  # sgd | adam | muon (orthogonalised momentum for conv filters, SGD for the rest)
    lr: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    batch_size: int = 256
    epochs: int = 74  # the paper stops after 370K iterations (74 epochs)
    schedule: str = "plateau"  # plateau | onecycle | cosine | constant
    lr_drop_factor: float = 0.1
    lr_drop_patience: int = 2  # epochs without a val top-1 gain before the lr drops
    max_lr_drops: int = 3
    warmup: float = 0.0  # onecycle/cosine: fraction of the steps spent rising to lr
    lr_start: float = 0.0  # onecycle/cosine: the rise starts from this fraction of lr
    lr_end: float = 0.0  # onecycle/cosine: the fall ends at this fraction of lr
    lookahead: int = 0  # every this many steps pull the weights towards their running average (0: off)
    muon_lr: float = 0.24  # optimizer muon: the conv filters' rate (a step of orthogonalised momentum)
    muon_momentum: float = 0.6  # optimizer muon: the conv filters' Nesterov momentum
    width: float = 1.0  # a VGG's channels times this (Table 1's at 1); the studies' medium budget thins every arm alike
    stem_bias_epochs: int = 0  # a data-fitted stem's bias (vgg_fast) learns this many epochs, then freezes
    label_smoothing: float = 0.0
    bias_lr_scale: float = 1.0  # BatchNorm shifts learn this many times faster (their decay per step kept)
    dropout: float = 0.5  # after fc6 and fc7
    head: str = "auto"  # auto: imagenet for inputs >= 224, small below
    init: str = "normal001"  # N(0, 0.01): the paper's "10^-2" read as a std, see vggnet.models.init
    init_from: str = ""  # a checkpoint of a shallower net (the paper initialises D, E from A)
    weights: str = ""  # fine-tune: pretrained weights (a known name or a file) loaded before training
    image_size: int = 0  # 0: native size in memory (32 for CIFAR), 224 for streamed images
    scale: tuple[int, int] = (256, 512)  # S (or S_min, S_max) for streamed training images
    test_scale: int = 256  # Q: test images are rescaled to Q and centre-cropped
    pad_crop: int = 0  # CIFAR-style random crop after padding by this many pixels
    pad_mode: str = "zeros"  # the pad of pad_crop: zeros, or reflect (mirror the border)
    flip: bool = True
    alternate_flip: bool = False  # flip a random half in epoch 1, then each image the other way every epoch
    pca_colour: float = 0.1  # std of AlexNet's PCA colour shift; 0 turns it off
    normalize_std: bool = False  # False: the paper's mean subtraction only
    pixel_range: int = 1  # 1: pixels on [0, 1] (torchvision); 255: on [0, 255], as Caffe fed the paper's nets
    precision: str = "auto"  # auto: what vggnet.fastpath measured fastest on this device (fp32 or bf16 autocast)
    accumulate: int = 1  # micro-batches per step (per process): less memory, the same global batch
    sync_bn: bool = False  # DDP on GPUs: BatchNorm statistics over the global batch, not each share
    grad_checkpointing: bool = False  # recompute each conv block in backward: less memory, ~1/3 more compute
    memory_format: str = "auto"  # auto: channels_last or contiguous, whichever vggnet.fastpath measured faster
    compile: bool = False
    val_fraction: float = 0.1
    train_images: int = 0  # 0: the whole training split; else a fixed class-balanced subset of this many
    val_images: int = 0  # the same for the validation split
    tta: int = 0  # final validation: 0 the image only, 1 + its mirror, 2 + both shifted by a pixel
    workers: int = 4  # DataLoader workers for streamed images

    def replace(self, **changes: object) -> Recipe:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Bound:
    """The values a numeric recipe field takes: finite, in [low, high] (an end marked open excluded)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    why: str = ""

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e7 else f"{x:g}"


MAX_IMAGE_SIZE = 1024
"""Largest crop side trained on: twice the paper's largest scale (S_max 512). Memory grows with its
square: VGG's first layer alone holds 64 x side^2 floats per image, 268 MB at 1024 px (25.6 GB at
10000 px, which would fail only after the data is read, inside the first allocation)."""
MAX_SCALE = 2048  # S and Q: twice the crop bound, room for the paper's S >= crop rescaling
STREAMED_CROP = 224  # the crop of streamed images when image_size is 0

# Every numeric field's range, checked by check_recipe before any data is read. Where torch
# itself has a limit (label smoothing, momentum, weight decay, workers) it would otherwise fail
# only in the first step, with the data loaded and the run directory made.
BOUNDS: dict[str, Bound] = {
    "lr": Bound(0, 1e12, low_open=True, why="a finite rate; a huge one is a valid way to see a run diverge"),
    "momentum": Bound(0, 1, high_open=True, why="at 1 or more SGD never forgets a step"),
    "weight_decay": Bound(0, 1, why="an L2 penalty per step: negative grows the weights"),
    "batch_size": Bound(1, 65536),
    "epochs": Bound(1, 100_000),
    "lr_drop_factor": Bound(0, 1, low_open=True, high_open=True, why="the plateau schedule multiplies the rate by it"),
    "lr_drop_patience": Bound(0, 1000),
    "max_lr_drops": Bound(0, 100),
    "warmup": Bound(0, 1, why="a fraction of the steps"),
    "lr_start": Bound(0, 1, why="a fraction of lr"),
    "lr_end": Bound(0, 1, why="a fraction of lr"),
    "lookahead": Bound(0, 10_000, why="steps between averages; 0 turns it off"),
    "muon_lr": Bound(0, 1e12, low_open=True),
    "muon_momentum": Bound(0, 1, high_open=True),
    "stem_bias_epochs": Bound(0, 100_000),
    "label_smoothing": Bound(0, 1, high_open=True, why="at 1 every target would be uniform"),
    "bias_lr_scale": Bound(0, 1000, low_open=True),
    "dropout": Bound(0, 1, high_open=True),
    "width": Bound(0, 4, low_open=True, why="a multiplier on the VGG's channels; 1 is the paper's network"),
    "image_size": Bound(0, MAX_IMAGE_SIZE, why="0: the data's own size"),
    "scale": Bound(1, MAX_SCALE),
    "test_scale": Bound(1, MAX_SCALE),
    "pad_crop": Bound(0, 64),
    "pca_colour": Bound(0, 1, why="a std on the [0, 1] pixel scale; AlexNet's is 0.1"),
    "accumulate": Bound(1, 1024),
    "val_fraction": Bound(0, 1, high_open=True, why="0: train on every image, hold none out"),
    "train_images": Bound(0, 10**9, why="0: the whole split"),
    "val_images": Bound(0, 10**9, why="0: the whole split"),
    "workers": Bound(0, 256),
}
CHOICES: dict[str, tuple[object, ...]] = {
    "optimizer": ("sgd", "adam", "muon"),
    "pad_mode": ("zeros", "reflect"),
    "schedule": ("plateau", "onecycle", "cosine", "constant"),
    "precision": PRECISIONS,
    "memory_format": MEMORY_FORMATS,
    "head": ("auto", *HEADS),
    "init": tuple(INIT_SCHEMES),
    "tta": (0, 1, 2),  # none, + mirror, + mirror and one-pixel shifts
    "pixel_range": (1, 255),
}


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(name="paper", pixel_range=255),  # Caffe's [0, 255] pixels: N(0, 0.01) nets learn from them
    "adam": Recipe(
        name="adam", optimizer="adam", lr=1e-4, weight_decay=0.0, schedule="constant", epochs=30, init="kaiming"
    ),
    "cifar": Recipe(
        name="cifar",
        lr=0.02,  # 0.1 (batch 128), common for 200-epoch runs, diverges in the first epochs of short ones
        nesterov=True,
        weight_decay=5e-4,
        batch_size=128,
        epochs=20,
        schedule="onecycle",
        warmup=0.2,
        label_smoothing=0.1,
        dropout=0.0,
        head="linear",
        init="kaiming",
        pad_crop=4,
        pca_colour=0.0,
        normalize_std=True,
    ),
    "cifar-fast": Recipe(
        name="cifar-fast",
        model="vgg_fast",
        lr=11.5 / (1 + 1 / 0.15),  # 1.5: airbench94's 11.5 per 1024 images (docs/training.md, cifar-fast)
        momentum=0.85,
        nesterov=True,
        weight_decay=0.002 / 1.5,  # 0.2% decay per step at the peak rate (airbench94's 0.0153 per 1024 images: 0.1996%)
        bias_lr_scale=64.0,
        batch_size=1024,
        epochs=10,
        schedule="onecycle",
        warmup=0.23,
        lr_start=0.2,
        lr_end=0.07,
        lookahead=5,
        stem_bias_epochs=3,
        label_smoothing=0.2,
        dropout=0.0,
        head="linear",
        init="kaiming",
        pad_crop=2,
        pad_mode="reflect",
        alternate_flip=True,
        pca_colour=0.0,
        normalize_std=True,
        tta=2,
    ),
}


_KINDS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "text",
          "tuple[int, int]": "one integer or two (S_min-S_max)"}


def _kind(field: dataclasses.Field) -> str:
    return field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _has_type(value: object, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return _is_int(value)
    if kind == "float":
        return _is_int(value) or isinstance(value, float)
    if kind.startswith("tuple"):
        return isinstance(value, tuple) and len(value) == 2 and all(_is_int(v) for v in value)
    return isinstance(value, str)


def _coerce(field: dataclasses.Field, text: str) -> object:
    kind = _kind(field)
    try:
        if kind == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind.startswith("tuple"):
            parts = [int(p) for p in text.replace("-", ",").split(",")]  # "256", "256-512" or "256,512"
            if len(parts) not in (1, 2):
                raise ValueError(text)
            return (parts[0], parts[-1])
        return text
    except ValueError:
        raise VggnetError(f"recipe field {field.name} ({kind}) cannot be {text!r}: it takes "
                          f"{_KINDS.get(kind, kind)}") from None


def get_recipe(name: str, overrides: dict[str, object] | None = None) -> Recipe:
    """A preset by name with ``overrides`` applied; strings are parsed to the field's type, and the
    result is checked (:func:`check_recipe`), so a bad value stops here with one line."""
    if name not in RECIPES:
        raise VggnetError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    known = {f.name: f for f in fields(Recipe)}
    changes = {}
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in known or key == "name":
            raise VggnetError(f"unknown recipe field {key!r}; valid: {', '.join(k for k in known if k != 'name')}")
        changes[key] = _coerce(known[key], value) if isinstance(value, str) else value
    recipe = RECIPES[name].replace(**changes)
    check_recipe(recipe)
    return recipe


def _check_values(recipe: Recipe) -> None:
    """Each field on its own: its type, then its choices or its declared range."""
    for field in fields(Recipe):
        value, kind = getattr(recipe, field.name), _kind(field)
        if not _has_type(value, kind):
            raise VggnetError(f"recipe {field.name} must be {_KINDS.get(kind, kind)}, got {value!r}")
        if field.name in CHOICES and value not in CHOICES[field.name]:
            valid = ", ".join(str(c) for c in CHOICES[field.name])
            raise VggnetError(f"recipe {field.name} must be one of {valid}, got {value!r}")
        bound = BOUNDS.get(field.name)
        for v in (value if isinstance(value, tuple) else (value,)) if bound else ():
            if not bound.holds(v):
                why = f" ({bound.why})" if bound.why else ""
                raise VggnetError(f"recipe {field.name} must be in {bound}, got {v!r}{why}")


def check_recipe(recipe: Recipe) -> None:
    """Reject values the loop cannot use, with a one-line reason. The train loop calls this before
    any data is read, so nothing fails later inside torch (or after the run directory is made)."""
    _check_values(recipe)
    crop = recipe.image_size or STREAMED_CROP
    if recipe.scale[0] > recipe.scale[1]:
        raise VggnetError(f"recipe scale is S_min-S_max with S_min <= S_max, got {recipe.scale[0]}-{recipe.scale[1]}")
    for name, side in (("scale", recipe.scale[0]), ("test_scale", recipe.test_scale)):
        if side < crop:
            raise VggnetError(f"recipe {name} {side} is below the crop size {crop}: images are rescaled to it, then "
                              f"cropped (image_size {recipe.image_size or '0 crops streamed images at 224'})")
    if recipe.stem_bias_epochs and recipe.schedule == "plateau":
        raise VggnetError("stem_bias_epochs freezes the stem's bias through the per-step schedule: use schedule="
                          "onecycle, cosine or constant with it, or stem_bias_epochs=0")
    if recipe.weights and recipe.init_from:
        raise VggnetError("a recipe starts from weights or from a shallower net (init_from), not both")
    if recipe.pixel_range != 1 and recipe.normalize_std:
        raise VggnetError("pixel_range applies to mean subtraction only; set normalize_std=false to use it")
    if recipe.model:
        from vggnet.models.registry import check_input_size

        check_input_size(recipe.model, recipe.image_size)
