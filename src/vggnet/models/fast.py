"""``vgg_fast``: a small BatchNorm VGG for 32x32 images, built to reach 94% on CIFAR-10 in few epochs.

It keeps what makes a VGG a VGG -- plain stacks of 3x3 convolutions and max-pools, no residuals --
and changes what the fastest public CIFAR-10 trainers (the DAWNBench entries, airbench) found to
matter when compute is scarce:

- a *whitening* stem: a 2x2 convolution whose filters are the training patches' principal
  components scaled to unit variance (and their negatives, so the GELU after it loses nothing).
  Its filters are set from the data by :meth:`FastVGG.fit_to_data` and never trained; its bias
  is trained (for the first epochs only, in ``cifar-fast``: see ``stem_bias_epochs``);
- three blocks, each ``conv -> pool -> BN -> GELU -> conv -> BN -> GELU`` (pooling right after the
  first conv does the next conv's work at a quarter of the cost), widths 64, 256, 256;
- BatchNorm with a fixed scale of 1 (only its shift is learned) and a short memory;
- a global max-pool and one linear layer whose logits are scaled down, so that the network
  starts nearly uniform and the softmax does not saturate at high learning rates.

The architecture is data (``WIDTHS``), as Table 1 is for the paper's networks.
"""

from __future__ import annotations

import torch
import torch.fx
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models.levels import FeatureInfo
from vggnet.models.registry import register_model
from vggnet.models.vgg import check_input

torch.fx.wrap("check_input")  # the shape check stays one call in traced graphs (fx wraps per module)

WIDTHS: tuple[int, ...] = (64, 256, 256)
"""Output channels of the three conv blocks (each block has two 3x3 convolutions)."""

STEM_PATCH = 2  # the whitening filters see 2x2 patches: 12 dimensions, 24 filters with negatives


def _bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, momentum=0.4, eps=1e-12)
    bn.weight.requires_grad_(False)  # scale fixed at 1: the next conv can rescale, the shift is enough
    return bn


class FastVGG(nn.Module):
    """Whitening stem, three conv blocks of :data:`WIDTHS`, global max-pool, linear classifier.

    Args:
        num_classes: outputs of the classifier.
        head: only 'linear' (accepted so the training loop can build every VGG the same way).
        dropout: dropout before the classifier (0 by default; short runs do not overfit).
        init: 'kaiming': PyTorch's default (He-uniform, a=sqrt(5)) convs whose first filters are
            the identity (a Dirac filter per input channel), so the plain stack starts close to a
            shallower one and each block passes its input through at first; airbench94's init.
        logit_scale: the logits are multiplied by this.
    """

    def __init__(self, num_classes: int = 10, head: str = "linear", dropout: float = 0.0, init: str = "kaiming",
                 in_chans: int = 3, logit_scale: float = 1 / 9) -> None:
        super().__init__()
        if head != "linear":
            raise VggnetError(f"vgg_fast has one head, 'linear'; got {head!r}")
        if init not in ("kaiming",):
            raise VggnetError(f"vgg_fast initialises with 'kaiming' (plus its data-fitted stem); got {init!r}")
        self.in_chans, self.num_classes, self.logit_scale = in_chans, num_classes, logit_scale
        stem_out = 2 * in_chans * STEM_PATCH**2
        stem = nn.Conv2d(in_chans, stem_out, STEM_PATCH, padding=0)
        stem.weight.requires_grad_(False)  # set from data, not learned (the bias learns)
        layers: list[nn.Module] = [stem, nn.GELU()]
        channels = stem_out
        for width in WIDTHS:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.MaxPool2d(2), _bn(width), nn.GELU(),
                       nn.Conv2d(width, width, 3, padding=1, bias=False), _bn(width), nn.GELU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes, bias=False)
        self.num_features = channels
        # Each block's output (its last GELU), in the same shape as VGG's levels (see levels.py).
        self.feature_info = FeatureInfo(
            {"name": f"block{b}", "module": f"features.{1 + 7 * b}", "num_chs": w, "reduction": 2**b}
            for b, w in enumerate(WIDTHS, 1))
        self._init()

    @property
    def stem(self) -> nn.Conv2d:
        """The whitening convolution, ``features.0``."""
        return self.features[0]

    @torch.no_grad()
    def _init(self) -> None:
        for conv in (m for m in self.features if isinstance(m, nn.Conv2d) and m is not self.stem):
            conv.reset_parameters()  # He-uniform with a=sqrt(5): std 1/sqrt(3 fan_in)
            nn.init.dirac_(conv.weight[:conv.in_channels])  # output c starts as input c (c < in_channels)
        self.classifier.reset_parameters()
        # An untrained stem: identity-like random projections until fit_to_data sets the real one.
        nn.init.kaiming_normal_(self.stem.weight)
        nn.init.zeros_(self.stem.bias)

    @torch.no_grad()
    def fit_to_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the stem to whiten 2x2 patches of ``images`` (normalised, N x C x H x W): its filters
        are the patch covariance's eigenvectors divided by sqrt(eigenvalue + eps), and their negatives."""
        p = STEM_PATCH
        patches = images.float().unfold(2, p, 1).unfold(3, p, 1)  # N, C, H', W', p, p
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.in_chans * p * p).double()
        eigval, eigvec = torch.linalg.eigh(torch.cov(patches.T))
        filters = (eigvec.T / (eigval.clamp_min(0) + eps).sqrt().unsqueeze(1)).flip(0)  # largest first
        filters = filters.view(-1, self.in_chans, p, p).to(self.stem.weight)
        self.stem.weight.copy_(torch.cat([filters, -filters]))
        self.stem.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and conv blocks: (N, C, H, W) -> (N, 256, ~H/8, ~W/8), the map :meth:`forward_head` pools."""
        return self.features(check_input(x, self.in_chans, STEM_PATCH * 2**len(WIDTHS)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global max-pool and the scaled linear classifier; ``pre_logits=True`` stops before it."""
        x = self.dropout(torch.flatten(self.pool(x), 1))
        if pre_logits or isinstance(self.classifier, nn.Identity):
            return x
        return self.classifier(x) * self.logit_scale

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` outputs (0: none, ``forward`` gives the pooled features)."""
        if num_classes < 0:
            raise VggnetError(f"num_classes must be >= 0, got {num_classes}")
        if num_classes:
            self.classifier = nn.Linear(self.num_features, num_classes, bias=False, device=self.stem.weight.device)
        else:
            self.classifier = nn.Identity()
        self.num_classes = num_classes
        if num_classes and isinstance(getattr(self, "model_kwargs", None), dict):
            self.model_kwargs["num_classes"] = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


register_model("vgg_fast", FastVGG, recipe_keywords=("head", "dropout", "init"))
