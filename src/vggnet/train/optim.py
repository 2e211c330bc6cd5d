"""Optimizer and learning-rate schedule from a :class:`~vggnet.train.recipes.Recipe`.

``plateau`` is the paper's: divide the rate by 10 when validation accuracy stops improving, at most
three times (ReduceLROnPlateau with a floor of lr * 0.1**3). The others change the rate every step:
``onecycle`` rises linearly over the warm-up fraction (from ``lr_start`` of the rate) then falls
linearly to ``lr_end`` of it, ``cosine`` does the same with a cosine fall, ``constant`` keeps it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vggnet.train.muon import Muon
from vggnet.train.recipes import Recipe


def stem_bias(model: nn.Module) -> nn.Parameter | None:
    """A data-fitted stem's bias (vgg_fast's whitening conv), which trains only for the first epochs."""
    stem = getattr(model, "stem", None) if hasattr(model, "fit_to_data") else None
    bias = getattr(stem, "bias", None)
    return bias if isinstance(bias, nn.Parameter) and bias.requires_grad else None


def param_groups(model: nn.Module, recipe: Recipe) -> list[dict]:
    """The parameters in groups by how they learn:

    - the BatchNorm shifts learn ``recipe.bias_lr_scale`` times faster, their weight decay divided
      by as much so the decay per step is unchanged (a BN shift moves slowly at the rate that suits
      the conv weights; airbench measured the gain);
    - a data-fitted stem's bias learns for ``stem_bias_epochs`` (its group says so; the schedule
      then holds its rate at 0) and not at all when that is 0;
    - with ``optimizer=muon`` the conv filters form a group of their own (``orthogonal``).
    """
    stem = stem_bias(model)
    params = [p for p in model.parameters() if p.requires_grad and p is not stem]
    norm = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
            for p in m.parameters() if p.requires_grad}
    scale = recipe.bias_lr_scale
    groups = [{"params": [p for p in params if id(p) not in norm or scale == 1]}]
    if scale != 1:
        groups.append({"params": [p for p in params if id(p) in norm], "lr": recipe.lr * scale,
                       "weight_decay": recipe.weight_decay / scale})
    if stem is not None and recipe.stem_bias_epochs:
        groups.append({"params": [stem], "train_epochs": recipe.stem_bias_epochs})
    if recipe.optimizer == "muon":
        filters = [p for p in groups[0]["params"] if p.ndim == 4]
        groups[0]["params"] = [p for p in groups[0]["params"] if p.ndim != 4]
        groups.append({"params": filters, "orthogonal": True, "lr": recipe.muon_lr,
                       "momentum": recipe.muon_momentum, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    params = param_groups(model, recipe)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    kind = Muon if recipe.optimizer == "muon" else torch.optim.SGD
    return kind(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0,
                weight_decay=recipe.weight_decay)


def freeze_finished(optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Stop computing gradients for the groups whose ``train_epochs`` ended before ``epoch`` (the
    schedule already holds their rate at 0): vgg_fast's stem bias then costs no backward pass
    through the first block, about 4% of a step."""
    for group in optimizer.param_groups:
        if group.get("train_epochs"):
            for p in group["params"]:
                p.requires_grad_(epoch <= group["train_epochs"])


def lr_factor(step: int, total: int, warmup: float, shape: str, start: float = 0.0, end: float = 0.0) -> float:
    """The fraction of the peak rate at ``step`` of ``total`` for the per-step schedules: a linear
    rise from ``start`` over the first ``warmup`` of the steps, then a fall to ``end``."""
    if shape == "constant":
        return 1.0
    rise = warmup * total
    if step < rise:
        return start + (1.0 - start) * (step + 1) / rise
    t = min(1.0, (step - rise) / max(1.0, total - rise))
    fall = 1.0 - t if shape == "onecycle" else 0.5 * (1.0 + math.cos(math.pi * t))
    return end + (1.0 - end) * fall


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

    def factor_for(group: dict):
        until = group.get("train_epochs", 0) * steps_per_epoch  # a stem bias: frozen from this step

        def factor(step: int) -> float:
            held = until and step >= until
            return 0.0 if held else lr_factor(step, total, recipe.warmup, recipe.schedule, recipe.lr_start,
                                              recipe.lr_end)
        return factor

    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, [factor_for(g) for g in optimizer.param_groups])
    sched.per_step = True
    return sched
