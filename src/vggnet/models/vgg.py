"""The VGG family: one builder for every configuration of Table 1.

Module names and indices follow torchvision (``features.N``, ``avgpool``, ``classifier.0/3/6``),
so a torchvision state dict loads without renaming. Every layer also has its paper name
(``conv1_1`` ... ``pool5``, ``fc6`` ... ``fc8``) in :attr:`VGG.layer_names`, which the feature
extractor and the analysis use.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.fx
from torch import nn

from vggnet.configs import LRN_PARAMS, ConvSpec, config_blocks, parse_layer, resolve_config
from vggnet.errors import InputShapeError, VggnetError
from vggnet.models.init import init_weights
from vggnet.models.levels import FeatureInfo

MAX_WIDTH = 4.0
"""The widest multiplier built: 4x Table 1 is 2048 channels in the last blocks, already ~16x the
paper's compute; beyond it a typo (``width=14``) would allocate tens of GB before any step."""

MIN_INPUT = 32
"""Five 2x2 max-pools halve the input five times, so 32 pixels is the smallest usable side."""


@dataclass(frozen=True)
class Head:
    """A classifier head: average-pool the features to ``pool`` x ``pool``, then FC layers."""

    pool: int
    hidden: tuple[int, ...]


HEADS: dict[str, Head] = {
    # The paper's head: FC-4096, FC-4096, FC-classes on the 7x7x512 map of a 224 input.
    "imagenet": Head(pool=7, hidden=(4096, 4096)),
    # For 32x32 inputs the last feature map is 1x1x512. This keeps the paper's three FC layers
    # (so init-from-A and fc6..fc8 names still apply) at width 512, the common CIFAR reading.
    "small": Head(pool=1, hidden=(512, 512)),
    # Global average pool and one FC layer: fewest parameters, a good fit for fast CIFAR runs.
    "linear": Head(pool=1, hidden=()),
}


@contextlib.contextmanager
def _keep_bn_stats(block: nn.Module) -> Iterator[None]:
    """Recomputing a block in backward must not count its batch twice in BatchNorm's running
    statistics: save them before the recomputation and put them back after."""
    norms = [m for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [[b.clone() for b in m.buffers()] for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(norms, saved, strict=True):
                for b, old in zip(m.buffers(), buffers, strict=True):
                    b.copy_(old)


@torch.fx.wrap
def check_input(x: torch.Tensor, in_chans: int, min_side: int = MIN_INPUT) -> torch.Tensor:
    """Reject inputs the network cannot take, with a one-line reason (wrapped so fx keeps it)."""
    if x.dim() != 4 or x.shape[1] != in_chans or min(x.shape[-2:]) < min_side:
        raise InputShapeError(
            f"expected a batch of shape (N, {in_chans}, H, W) with H, W >= {min_side}; "
            f"got {tuple(x.shape)}"
        )
    return x


class VGG(nn.Module):
    """A VGG network of Table 1 with a choice of head.

    Args:
        config: paper letter ('A', 'A-LRN', 'B', 'C', 'D', 'E') or model name ('vgg16').
        num_classes: outputs of the last FC layer.
        batch_norm: insert BatchNorm after every convolution (torchvision's ``_bn`` models).
        head: 'imagenet' (7x7 pool, FC-4096 x2), 'small' (1x1 pool, FC-512 x2) or 'linear'.
        dropout: dropout probability after the hidden FC layers (0.5 in the paper).
        init: weight initialisation scheme, see :mod:`vggnet.models.init`.
        in_chans: input channels (3 for RGB).
        width: a multiplier on every layer's width (Table 1's conv channels and the head's
            hidden FC layers), rounded, at least 1; 1 is the paper's network. Thinner nets keep
            the depth and layout, so a study can compare the paper's configurations at a
            budget a CPU trains to convergence (``--budget medium``). Known weights fit width 1 only.
    """

    def __init__(
        self,
        config: str = "D",
        num_classes: int = 1000,
        batch_norm: bool = False,
        head: str = "imagenet",
        dropout: float = 0.5,
        init: str = "kaiming",
        in_chans: int = 3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if not (math.isfinite(width) and 0 < width <= MAX_WIDTH):
            raise VggnetError(f"width multiplies the layers' channels: it must be in (0, {MAX_WIDTH}], got {width}")
        if head not in HEADS:
            raise VggnetError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
        if num_classes < 1:
            raise VggnetError(f"num_classes must be >= 1, got {num_classes}")
        self.config = resolve_config(config)
        self.in_chans, self.width = in_chans, width
        self.layer_names: dict[str, str] = {}
        # The conv blocks' outputs before their max-pool, as timm defines VGG's levels (see levels.py).
        self.feature_info = FeatureInfo()
        self.features = self._make_features(config_blocks(self.config), batch_norm, in_chans)
        spec = HEADS[head]
        self.avgpool = nn.AdaptiveAvgPool2d((spec.pool, spec.pool))
        self.layer_names["avgpool"] = "avgpool"
        channels = self.feature_info[-1]["num_chs"]
        hidden = tuple(self._scaled(h) for h in spec.hidden)
        self.classifier = self._make_classifier(channels * spec.pool**2, hidden, num_classes, dropout)
        self.num_classes = num_classes
        self.num_features = self.classifier[-1].in_features  # what forward_head(pre_logits=True) returns
        self.grad_checkpointing = False
        init_weights(self, init)

    def _scaled(self, channels: int) -> int:
        return max(1, round(channels * self.width))

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Keep only each conv block's input in training and recompute the block in backward
        (timm's switch): activation memory falls to about the largest block's, for roughly a
        third more compute. See ``vggnet bench train --grad-checkpointing``."""
        self.grad_checkpointing = enable

    def _checkpointed_features(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        block: list[nn.Module] = []
        for module in self.features:
            block.append(module)
            if isinstance(module, nn.MaxPool2d):  # a block ends at its pool
                seq = nn.Sequential(*block)
                x = checkpoint(seq, x, use_reentrant=False,
                               context_fn=lambda seq=seq: (contextlib.nullcontext(), _keep_bn_stats(seq)))
                block = []
        return x

    def _make_features(
        self, blocks: tuple[tuple[str, ...], ...], batch_norm: bool, channels: int
    ) -> nn.Sequential:
        layers: list[nn.Module] = []

        def add(name: str, module: nn.Module) -> None:
            self.layer_names[name] = f"features.{len(layers)}"
            layers.append(module)

        for b, block in enumerate(blocks, start=1):
            i = 0
            for token in block:
                layer = parse_layer(token)
                if isinstance(layer, ConvSpec):
                    i += 1
                    out = self._scaled(layer.channels)
                    add(f"conv{b}_{i}", nn.Conv2d(channels, out, layer.kernel, padding=layer.padding))
                    if batch_norm:
                        add(f"bn{b}_{i}", nn.BatchNorm2d(out))
                    add(f"relu{b}_{i}", nn.ReLU(inplace=True))
                    channels = out
                else:
                    # PyTorch's LocalResponseNorm divides alpha by the window size, as Caffe
                    # (which the authors' code was derived from) does; see docs/architecture.md.
                    add(f"lrn{b}", nn.LocalResponseNorm(**LRN_PARAMS))
            self.feature_info.append(
                {"name": f"relu{b}_{i}", "module": self.layer_names[f"relu{b}_{i}"],
                 "num_chs": channels, "reduction": 2 ** (b - 1)}
            )
            add(f"pool{b}", nn.MaxPool2d(kernel_size=2, stride=2))
        return nn.Sequential(*layers)

    def _make_classifier(
        self, in_features: int, hidden: tuple[int, ...], num_classes: int, dropout: float
    ) -> nn.Sequential:
        layers: list[nn.Module] = []
        for n, width in enumerate(hidden, start=6):
            for prefix, module in (
                ("fc", nn.Linear(in_features, width)),
                ("relu", nn.ReLU(inplace=True)),
                ("drop", nn.Dropout(p=dropout)),
            ):
                self.layer_names[f"{prefix}{n}"] = f"classifier.{len(layers)}"
                layers.append(module)
            in_features = width
        self.layer_names[f"fc{6 + len(hidden)}"] = f"classifier.{len(layers)}"
        layers.append(nn.Linear(in_features, num_classes))
        return nn.Sequential(*layers)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutional trunk, pool5 included: (N, C, H, W) -> (N, 512 x width, H/32, W/32). With
        :meth:`forward_head` it is ``forward``; a backbone for other tasks uses it (or
        ``features_only=True`` for every block's map) and drops the head."""
        x = check_input(x, self.in_chans)
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return self._checkpointed_features(x)
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, flatten and classify a map from :meth:`forward_features`. ``pre_logits=True``
        stops before the last FC layer: the ``num_features``-wide embedding (fc7's, after its
        ReLU and dropout), for retrieval or a new linear probe."""
        x = torch.flatten(self.avgpool(x), 1)
        *hidden, last = self.classifier  # the installed submodules, one by one, so torch.fx traces them
        for layer in hidden:
            x = layer(x)
        return x if pre_logits else last(x)

    def get_classifier(self) -> nn.Module:
        """The last FC layer (fc8 of the paper's head)."""
        return self.classifier[-1]

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh last FC layer for ``num_classes`` outputs (fine-tuning on another label set);
        0 removes it, so ``forward`` gives the pre-logits embedding, as in timm."""
        if num_classes < 0:
            raise VggnetError(f"num_classes must be >= 0, got {num_classes}")
        device = self.features[0].weight.device
        fc = nn.Linear(self.num_features, num_classes, device=device) if num_classes else nn.Identity()
        if num_classes:
            nn.init.normal_(fc.weight, 0.0, 0.01)
            nn.init.zeros_(fc.bias)
        self.classifier[-1] = fc
        self.num_classes = num_classes
        if num_classes and isinstance(getattr(self, "model_kwargs", None), dict):
            self.model_kwargs["num_classes"] = num_classes  # a checkpoint rebuilds the new head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
