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


def single_filters(blocks: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """Each block's stack of n 3x3 convolutions as one (2n+1)x(2n+1) convolution: the same
    receptive field and output width, one non-linearity instead of n (section 2.3's argument)."""
    out = []
    for block in blocks:
        convs = [parse_layer(t) for t in block]
        if not all(isinstance(c, ConvSpec) and c.kernel == 3 for c in convs):
            raise ValueError(f"single_filters needs blocks of 3x3 convolutions only, got {block}")
        out.append((f"conv{2 * len(convs) + 1}-{convs[-1].channels}",))
    return tuple(out)

# Model names follow torchvision (so its weight files load as-is); C has no torchvision
# counterpart and is named after what distinguishes it from D.
NAME_TO_CONFIG: dict[str, str] = {
    "vgg11": "A",
    "vgg11_lrn": "A-LRN",
    "vgg13": "B",
    "vgg16_conv1": "C",
    "vgg16": "D",
    "vgg19": "E",
    "vgg13_5x5": "B-5x5",
    "vgg16_large": "D-large",
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
    derived = {k.lower(): k for k in DERIVED}
    if key.lower() in derived:
        return derived[key.lower()]
    valid = ", ".join(list(TABLE_1) + list(DERIVED) + list(NAME_TO_CONFIG))
    raise UnknownModelError(f"unknown VGG configuration {config!r}; valid: {valid}")


def config_blocks(config: str) -> tuple[tuple[str, ...], ...]:
    """The blocks of a Table 1 or derived configuration."""
    key = resolve_config(config)
    return TABLE_1[key] if key in TABLE_1 else DERIVED[key]


def weight_layers(config: str) -> int:
    """Number of weight layers (the '11' of VGG-11): convolutions plus three FC layers."""
    blocks = config_blocks(config)
    return sum(isinstance(parse_layer(t), ConvSpec) for block in blocks for t in block) + 3


# The paper's ablation of section 4.1 (B against "a shallow net with five 5x5 conv. layers", 7%
# worse in top-1) and the same change to D (5x5 for its pairs, 7x7 for its triples). Not Table 1,
# so kept apart from it; built by the same builder.
DERIVED: dict[str, tuple[tuple[str, ...], ...]] = {
    "B-5x5": single_filters(TABLE_1["B"]),
    "D-large": single_filters(TABLE_1["D"]),
}
