"""vggnet: the VGG networks of Simonyan & Zisserman (2014), exact, analysed, trainable and fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "VGG", "FeatureExtractor", "__version__", "create_model", "init_from_shallower",
    "list_models", "to_fully_convolutional",
]

if TYPE_CHECKING:
    from vggnet.models import (
        VGG,
        FeatureExtractor,
        create_model,
        init_from_shallower,
        list_models,
        to_fully_convolutional,
    )


def __getattr__(name: str) -> object:
    """The public names, imported on first use: ``import vggnet`` (and so ``vggnet --help``) does
    not pay for torch until a model is asked for."""
    if name in __all__:
        value = getattr(importlib.import_module("vggnet.models"), name)
        globals()[name] = value
        return value
    try:  # `vggnet.models` and the like, as an eager package import made them available
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
