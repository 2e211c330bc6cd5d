"""Optimizer and learning-rate schedule from a :class:`~vggnet.train.recipes.Recipe`.

``plateau`` is the paper's: divide the rate by 10 when validation accuracy stops improving, at most
three times (ReduceLROnPlateau with a floor of lr * 0.1**3). The others change the rate every step:
``onecycle`` rises linearly over the warm-up fraction then falls linearly to 0, ``cosine`` does the
same with a cosine fall, ``constant`` keeps it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vggnet.train.recipes import Recipe


def param_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """One group, or two when ``recipe.bias_lr_scale`` is set: the BatchNorm shifts then learn that
    many times faster, with their weight decay divided by as much so the decay per step is unchanged
    (a BN shift moves slowly at the rate that suits the conv weights; airbench measured the gain)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.bias_lr_scale == 1:
        return [{"params": params}]
    norm = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
            for p in m.parameters() if p.requires_grad}
    scale = recipe.bias_lr_scale
    return [{"params": [p for p in params if id(p) not in norm]},
            {"params": [p for p in params if id(p) in norm], "lr": recipe.lr * scale,
             "weight_decay": recipe.weight_decay / scale}]


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = param_groups(model, recipe)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0,
        weight_decay=recipe.weight_decay,
    )


def lr_factor(step: int, total: int, warmup: float, shape: str) -> float:
    """The fraction of the peak rate at ``step`` of ``total`` for the per-step schedules."""
    if shape == "constant":
        return 1.0
    rise = warmup * total
    if step < rise:
        return (step + 1) / rise
    t = (step - rise) / max(1.0, total - rise)
    return max(0.0, 1.0 - t) if shape == "onecycle" else 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    """A scheduler; ``per_step`` on it says whether to step it after each batch or each epoch."""
    if recipe.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=recipe.lr_drop_factor, patience=recipe.lr_drop_patience,
            min_lr=recipe.lr * recipe.lr_drop_factor**recipe.max_lr_drops * (1 - 1e-6),
        )
        sched.per_step = False
        return sched
    total = recipe.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, recipe.warmup, recipe.schedule)
    )
    sched.per_step = True
    return sched
