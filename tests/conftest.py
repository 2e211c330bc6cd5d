"""Shared helpers: networks built on the meta device cost nothing to count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vggnet.models import create_model


def meta_model(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's cache (~/.cache/vggnet); tests that need their own set it again."""
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path_factory.getbasetemp() / "vggnet-home"))
