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

AUX_WEIGHT = 0.3
"""Weight of each auxiliary classifier's loss (GoogLeNet's two; Szegedy et al. 2014, section 5)."""


def classification_loss(output: torch.Tensor | tuple[torch.Tensor, ...], labels: torch.Tensor,
                        label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(objective, main loss, main logits) of a forward pass. A network with auxiliary heads
    returns a tuple in training mode, main logits first (GoogLeNet's ``(logits, aux2, aux1)``):
    the objective adds each auxiliary loss at :data:`AUX_WEIGHT`, as the paper trained it; the
    main loss alone is reported, so it compares with the validation loss."""
    main, *aux = (output,) if isinstance(output, torch.Tensor) else output
    loss = F.cross_entropy(main.float(), labels, label_smoothing=label_smoothing)
    objective = loss
    for logits in aux:
        objective = objective + AUX_WEIGHT * F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    return objective, loss, main


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
                output = model(xs)
            objective, loss, logits = classification_loss(output, ys, label_smoothing)
            (objective if len(pieces) == 1 else objective * (len(ys) / len(labels))).backward()
        losses.append(loss.detach())
        outputs.append(logits.detach())
    optimizer.step()
    if len(pieces) == 1:
        return losses[0], outputs[0]
    mean = sum(loss * len(ys) for loss, (_, ys) in zip(losses, pieces, strict=True)) / len(labels)
    return mean, torch.cat(outputs)
