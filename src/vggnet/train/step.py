"""One optimisation step: augment on the device, forward (autocast where it pays), loss, backward,
update. The training loop and ``vggnet bench train`` both call this, so what is measured is
what trains."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vggnet.device import autocast


def train_step(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    transform: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    dtype: torch.dtype | None = None,
    label_smoothing: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``images`` -> (loss, logits), both detached; ``dtype`` None is fp32."""
    x = transform(images, train=True, generator=generator)
    with autocast(x.device.type, dtype):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()
