"""Lookahead-style weight averaging, as airbench94 uses it.

Every ``every`` steps the weights (and BatchNorm's running statistics) move to a running average
of themselves, ``avg = decay * avg + (1 - decay) * weights; weights = avg``; the decay rises with
the cube of the progress through training, from 0 (the average is the weights) to 0.95**every.
At the end the net is set to the average. Early on it changes nothing; late, when the rate is
small and the steps are noise around a minimum, it averages the noise away.
"""

from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    """The running average of ``model``'s floating-point state, pulled in every ``every`` steps of ``total``."""

    def __init__(self, model: nn.Module, every: int, total: int) -> None:
        self.model, self.every, self.total = model, every, max(1, total)
        self.average = {k: v.detach().clone() for k, v in self._state().items()}

    def _state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        return 0.95**self.every * (min(step, self.total) / self.total) ** 3

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Called after optimizer step ``step`` (counted from 1); pulls every ``every`` steps, and at the
        last sets the net to the average as it stands (airbench94 first pulls once more when the last
        step is a multiple of ``every``, which moves the average a little further at the lowest rate)."""
        if step >= self.total:
            if self.total > self.every:  # else the average never moved from the starting weights: keep the net
                self.pull(1.0)
        elif step % self.every == 0:
            self.pull(self.decay(step))

    @torch.no_grad()
    def pull(self, decay: float) -> None:
        for key, value in self._state().items():
            avg = self.average[key]
            avg.lerp_(value, 1.0 - decay)
            value.copy_(avg)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.average)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key, value in state.items():
            self.average[key].copy_(value)
