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
from dataclasses import dataclass, fields

from vggnet.device import PRECISIONS
from vggnet.errors import VggnetError


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a network is trained (the data and the model aside)."""

    name: str
    model: str = ""  # the network trained when none is named ('' : one must be named)
    optimizer: str = "sgd"  # sgd | adam
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
    warmup: float = 0.0  # onecycle: fraction of the steps spent rising to lr
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
    pad_crop: int = 0  # CIFAR-style random crop after zero-padding by this many pixels
    flip: bool = True
    alternate_flip: bool = False  # flip a random half in epoch 1, then each image the other way every epoch
    pca_colour: float = 0.1  # std of AlexNet's PCA colour shift; 0 turns it off
    normalize_std: bool = False  # False: the paper's mean subtraction only
    pixel_range: int = 1  # 1: pixels on [0, 1] (torchvision); 255: on [0, 255], as Caffe fed the paper's nets
    precision: str = "auto"  # auto: bf16 autocast where it is faster (GPU, CPU with AMX), else fp32
    accumulate: int = 1  # micro-batches per step (per process): less memory, the same global batch
    sync_bn: bool = False  # DDP on GPUs: BatchNorm statistics over the global batch, not each share
    grad_checkpointing: bool = False  # recompute each conv block in backward: less memory, ~1/3 more compute
    channels_last: bool = True
    compile: bool = False
    val_fraction: float = 0.1
    train_images: int = 0  # 0: the whole training split; else a fixed class-balanced subset of this many
    val_images: int = 0  # the same for the validation split
    tta: int = 0  # final validation: 0 the image only, 1 + its mirror, 2 + both shifted by a pixel
    workers: int = 4  # DataLoader workers for streamed images

    def replace(self, **changes: object) -> Recipe:
        return dataclasses.replace(self, **changes)


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
        lr=1.0,
        momentum=0.85,
        nesterov=True,
        weight_decay=5e-4,
        batch_size=512,
        epochs=13,  # 28.6 min on the 2-core development CPU (README, Time to accuracy)
        schedule="onecycle",
        warmup=0.2,
        label_smoothing=0.2,
        dropout=0.0,
        head="linear",
        init="kaiming",
        pad_crop=2,
        alternate_flip=True,
        pca_colour=0.0,
        normalize_std=True,
        tta=2,
    ),
}


def _coerce(field: dataclasses.Field, text: str) -> object:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
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
            parts = [int(p) for p in text.replace("-", ",").split(",") if p]
            if len(parts) not in (1, 2):
                raise ValueError(text)
            return (parts[0], parts[-1])
        return text
    except ValueError:
        raise VggnetError(f"recipe field {field.name} ({kind}) cannot be {text!r}") from None


def get_recipe(name: str, overrides: dict[str, object] | None = None) -> Recipe:
    """A preset by name with ``overrides`` applied; strings are parsed to the field's type."""
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


def check_recipe(recipe: Recipe) -> None:
    """Reject values the loop cannot use, with a one-line reason."""
    choices = {"optimizer": ("sgd", "adam"), "schedule": ("plateau", "onecycle", "cosine", "constant")}
    for key, valid in choices.items():
        if getattr(recipe, key) not in valid:
            raise VggnetError(f"recipe {key} must be one of {', '.join(valid)}, got {getattr(recipe, key)!r}")
    if recipe.lr <= 0 or recipe.batch_size < 1 or recipe.epochs < 1:
        raise VggnetError("recipe needs lr > 0, batch_size >= 1 and epochs >= 1")
    if recipe.train_images < 0 or recipe.val_images < 0:
        raise VggnetError("recipe train_images and val_images must be >= 0 (0: the whole split)")
    if recipe.accumulate < 1:
        raise VggnetError(f"recipe accumulate must be >= 1, got {recipe.accumulate}")
    if recipe.bias_lr_scale <= 0:
        raise VggnetError(f"recipe bias_lr_scale must be > 0, got {recipe.bias_lr_scale}")
    if recipe.precision not in PRECISIONS:
        raise VggnetError(f"recipe precision must be one of {', '.join(PRECISIONS)}, got {recipe.precision!r}")
    if recipe.weights and recipe.init_from:
        raise VggnetError("a recipe starts from weights or from a shallower net (init_from), not both")
    if recipe.tta not in (0, 1, 2):
        raise VggnetError(f"recipe tta must be 0 (none), 1 (mirror) or 2 (mirror and shifts), got {recipe.tta}")
    if recipe.pixel_range not in (1, 255):
        raise VggnetError(f"recipe pixel_range must be 1 or 255, got {recipe.pixel_range}")
    if recipe.pixel_range != 1 and recipe.normalize_std:
        raise VggnetError("pixel_range applies to mean subtraction only; set normalize_std=false to use it")
    if not 0 <= recipe.dropout < 1:
        raise VggnetError(f"dropout must be in [0, 1), got {recipe.dropout}")
