"""Table 1 of Simonyan & Zisserman (2014) as data.

Every VGG network in the project is built from this one table; nothing else restates the
architecture. Each configuration is five blocks of layers written with the paper's own tokens:
``conv3-64`` is a 3x3 convolution with 64 output channels, ``conv1-256`` a 1x1 convolution and
``LRN`` a local response normalisation layer. A 2x2 max-pool closes every block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vggnet.errors import UnknownModelError

TABLE_1: dict[str, tuple[tuple[str, ...], ...]] = {
    "A": (
        ("conv3-64",),
        ("conv3-128",),
        ("conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512"),
    ),
    "A-LRN": (
        ("conv3-64", "LRN"),
        ("conv3-128",),
        ("conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512"),
    ),
    "B": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512"),
    ),
    "C": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256", "conv1-256"),
        ("conv3-512", "conv3-512", "conv1-512"),
        ("conv3-512", "conv3-512", "conv1-512"),
    ),
    "D": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512", "conv3-512"),
    ),
    "E": (
        ("conv3-64", "conv3-64"),
        ("conv3-128", "conv3-128"),
        ("conv3-256", "conv3-256", "conv3-256", "conv3-256"),
        ("conv3-512", "conv3-512", "conv3-512", "conv3-512"),
        ("conv3-512", "conv3-512", "conv3-512", "conv3-512"),
    ),
}

# Model names follow torchvision (so its weight files load as-is); C has no torchvision
# counterpart and is named after what distinguishes it from D.
NAME_TO_CONFIG: dict[str, str] = {
    "vgg11": "A",
    "vgg11_lrn": "A-LRN",
    "vgg13": "B",
    "vgg16_conv1": "C",
    "vgg16": "D",
    "vgg19": "E",
}
CONFIG_TO_NAME: dict[str, str] = {v: k for k, v in NAME_TO_CONFIG.items()}

# The LRN layer of A-LRN is the only one whose position matters for BatchNorm: the paper has
# no BatchNorm at all, and a BN variant of A-LRN would stack two normalisations, so none exists.
BN_VARIANTS: tuple[str, ...] = tuple(n for n, c in NAME_TO_CONFIG.items() if "LRN" not in c)

LRN_PARAMS = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
"""LRN settings of the paper (section 2.1, taken from Krizhevsky et al., 2012)."""

_CONV = re.compile(r"^conv(\d+)-(\d+)$")


@dataclass(frozen=True)
class ConvSpec:
    """One ``convK-C`` token: a KxK convolution, stride 1, 'same' padding, C filters."""

    kernel: int
    channels: int

    @property
    def padding(self) -> int:
        return self.kernel // 2


def parse_layer(token: str) -> ConvSpec | str:
    """Turn a Table 1 token into a :class:`ConvSpec`, or return ``"LRN"`` unchanged."""
    if token == "LRN":
        return token
    match = _CONV.match(token)
    if match is None:
        raise ValueError(f"not a Table 1 layer token: {token!r} (expected 'convK-C' or 'LRN')")
    return ConvSpec(kernel=int(match.group(1)), channels=int(match.group(2)))


def resolve_config(config: str) -> str:
    """Accept a paper letter ('D'), an alias in any case ('a-lrn') or a model name ('vgg16')."""
    key = config.strip()
    if key.upper() in TABLE_1:
        return key.upper()
    if key.lower() in NAME_TO_CONFIG:
        return NAME_TO_CONFIG[key.lower()]
    valid = ", ".join(list(TABLE_1) + list(NAME_TO_CONFIG))
    raise UnknownModelError(f"unknown VGG configuration {config!r}; valid: {valid}")


def weight_layers(config: str) -> int:
    """Number of weight layers (the '11' of VGG-11): convolutions plus three FC layers."""
    blocks = TABLE_1[resolve_config(config)]
    return sum(isinstance(parse_layer(t), ConvSpec) for block in blocks for t in block) + 3
