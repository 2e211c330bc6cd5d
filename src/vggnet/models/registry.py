"""One registry for every network: ``create_model(name, **kwargs)`` and ``list_models()``.

Names follow torchvision (``vgg16``, ``vgg16_bn``, ``resnet50`` ...); the paper's letters
(``A``, ``A-LRN``, ``B``, ``C``, ``D``, ``E``) are accepted as aliases of the plain VGG names.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from vggnet.configs import BN_VARIANTS, NAME_TO_CONFIG
from vggnet.errors import InputShapeError, UnknownModelError, VggnetError
from vggnet.models.features import FeatureListNet
from vggnet.models.vgg import MIN_INPUT, VGG

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
ALIASES: dict[str, str] = {config: name for name, config in NAME_TO_CONFIG.items()}

MIN_INPUT_SIZES: dict[str, int] = {
    # The smallest image side each network's convolution and pooling arithmetic takes (its last
    # feature map is then 1 pixel); below it the forward pass fails deep inside a layer. Models
    # not named take any size. tests/models/test_min_input.py checks each against a forward pass.
    "alexnet": 63,  # 11x11 stride-4 conv, then three 3x3 stride-2 pools without padding
    "googlenet": 15,
    "densenet121": 29,
    "vgg_fast": 16,  # 2x2 whitening stem, then three 2x2 pools
}


RECIPE_KEYWORDS: dict[str, tuple[str, ...]] = {}
"""The recipe fields a network's builder takes besides ``num_classes`` (its head, dropout and
initialisation), declared at registration: training and benchmarks pass exactly these."""


def register_model(name: str, builder: Callable[..., nn.Module] | None = None, *, min_size: int | None = None,
                   recipe_keywords: tuple[str, ...] = ()):
    """Register ``builder`` under ``name``; usable as a decorator (``@register_model("x")``).
    ``min_size``: the smallest input side it takes (see :data:`MIN_INPUT_SIZES`);
    ``recipe_keywords``: see :data:`RECIPE_KEYWORDS`."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        RECIPE_KEYWORDS[name] = tuple(recipe_keywords)
        if min_size is not None:
            MIN_INPUT_SIZES[name] = min_size
        return fn

    return add(builder) if builder is not None else add


VGG_KEYWORDS = ("head", "dropout", "init", "width")

for _name, _config in NAME_TO_CONFIG.items():
    register_model(_name, partial(VGG, config=_config, batch_norm=False), min_size=MIN_INPUT,
                   recipe_keywords=VGG_KEYWORDS)
    if _name in BN_VARIANTS:
        register_model(f"{_name}_bn", partial(VGG, config=_config, batch_norm=True), min_size=MIN_INPUT,
                       recipe_keywords=VGG_KEYWORDS)


def resolve_name(name: str) -> str:
    """The registered name for ``name`` or a paper alias; a one-line error listing valid names."""
    if name in _REGISTRY:
        return name
    if name.upper() in ALIASES:
        return ALIASES[name.upper()]
    if name.lower() in _REGISTRY:
        return name.lower()
    raise UnknownModelError(
        f"unknown model {name!r}; valid names: {', '.join(list_models())} "
        f"(paper aliases: {', '.join(ALIASES)})"
    )


def recipe_keywords(name: str) -> tuple[str, ...]:
    """The recipe fields ``name``'s builder takes (see :data:`RECIPE_KEYWORDS`)."""
    return RECIPE_KEYWORDS[resolve_name(name)]


def min_input_size(name: str) -> int:
    """The smallest image side ``name`` (a registered name or paper alias) takes."""
    return MIN_INPUT_SIZES.get(resolve_name(name), 1)


def check_input_size(name: str, size: int) -> None:
    """One line naming the minimum, and how to resize, when ``size`` px is too small for ``name``
    (0: not known yet, nothing to check). Called as soon as the images' size is known, before a
    forward pass would fail inside a layer."""
    need = min_input_size(name)
    if 0 < size < need:
        raise InputShapeError(f"{resolve_name(name)} needs images of at least {need} px, got {size} px: resize them "
                              f"with --set image_size={need} (or larger), or choose another model")


def _build(resolved: str, kwargs: dict) -> nn.Module:
    try:
        model = _REGISTRY[resolved](**kwargs)
    except TypeError as err:  # an unexpected keyword: say which model refused it
        raise VggnetError(f"{resolved}: {err}") from None
    model.model_name = resolved
    model.model_kwargs = dict(kwargs)
    return model


def _is_vgg(resolved: str) -> bool:
    builder = _REGISTRY[resolved]
    return isinstance(builder, partial) and builder.func is VGG


def create_model(
    name: str,
    pretrained: bool = False,
    weights: str | os.PathLike[str] | None = None,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    num_classes: int | None = None,
    in_chans: int = 3,
    **kwargs: object,
) -> nn.Module:
    """Build a registered network, as ``timm.create_model`` does.

    ``pretrained=True`` loads the model's default known weights (downloaded once; torchvision's);
    ``weights`` a known name (``vgg16.keras``) or a file (torchvision .pth, .safetensors, Keras
    .h5). With a ``num_classes`` other than the weights' everything but the last classifier layer
    loads, and a warning says so; ``in_chans`` other than 3 adapts the first convolution.
    ``features_only=True`` returns a :class:`FeatureListNet` giving the feature maps at
    ``out_indices`` (default: every level of ``model.feature_info``). Other keywords go to the
    builder (``head``, ``dropout``, ``batch_norm`` ...).

    The returned module carries ``model_name`` and ``model_kwargs`` so it can be rebuilt, e.g.
    from a checkpoint. Build on the meta device (``with torch.device("meta"):``) to inspect a
    network without allocating its weights.
    """
    resolved = resolve_name(name)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_chans != 3:
        kwargs["in_chans"] = in_chans
    if out_indices is not None and not features_only:
        raise VggnetError("out_indices picks feature levels: pass features_only=True with it")
    if pretrained or weights is not None:
        # Lazy: vggnet.weights imports this module, so it is imported only when weights are asked for.
        from vggnet.models import pretrained as loading

        weights = weights if weights is not None else loading.default_weights(resolved)
        if _is_vgg(resolved):
            model = loading.vgg_with_weights(resolved, weights, kwargs)
        else:
            model = loading.other_with_weights(resolved, weights, partial(_build, resolved, kwargs), kwargs)
    else:
        model = _build(resolved, kwargs)
    if features_only:
        return FeatureListNet(model, out_indices, min_input_size(resolved))
    return model


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching a shell-style ``pattern`` (``"vgg*_bn"``), sorted; with
    ``pretrained=True`` only those with known weights (what ``create_model(pretrained=True)`` takes)."""
    names = sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))
    if pretrained:
        from vggnet.models.pretrained import pretrained_names  # lazy: it reads vggnet.weights

        with_weights = set(pretrained_names())
        names = [n for n in names if n in with_weights]
    return names
