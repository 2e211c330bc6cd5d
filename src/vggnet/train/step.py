"""One optimisation step: augment on the device, forward (autocast where it pays), loss, backward,
update. The training loop and ``vggnet bench train`` both call this, so what is measured is
what trains."""

from __future__ import annotations

import contextlib
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
    accumulate: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``images`` -> (loss, logits), both detached; ``dtype`` None is fp32.

    ``accumulate`` > 1 runs the batch as that many micro-batches (less activation memory) and
    steps once: the gradient is the whole batch's mean, as in one pass. Under DDP the gradients
    are all-reduced only after the last micro-batch (``no_sync`` before it).
    """
    x = transform(images, train=True, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    pieces = list(zip(x.chunk(accumulate), labels.chunk(accumulate), strict=True))
    losses, outputs = [], []
    for i, (xs, ys) in enumerate(pieces):
        last = i == len(pieces) - 1
        with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
            with autocast(xs.device.type, dtype):
                logits = model(xs)
            loss = F.cross_entropy(logits.float(), ys, label_smoothing=label_smoothing)
            (loss if len(pieces) == 1 else loss * (len(ys) / len(labels))).backward()
        losses.append(loss.detach())
        outputs.append(logits.detach())
    optimizer.step()
    if len(pieces) == 1:
        return losses[0], outputs[0]
    mean = sum(loss * len(ys) for loss, (_, ys) in zip(losses, pieces, strict=True)) / len(labels)
    return mean, torch.cat(outputs)
