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
    # precision=auto without the speed probe (fp32, channels_last): results do not depend on which CPU
    # runs the suite; tests/test_fastpath.py tests the probe and its decision.
    monkeypatch.setenv("VGGNET_PROBE", "off")


@pytest.fixture(scope="session")
def vgg11_file(tmp_path_factory: pytest.TempPathFactory):
    """vgg11 with random weights (1000 ImageNet classes), saved as torchvision saves its files."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("torchvision") / "vgg11-random.pth"
    torch.save(create_model("vgg11").state_dict(), path)
    torch.set_rng_state(generator_state)
    return path


@pytest.fixture(scope="session")
def vgg16_file(tmp_path_factory):  # tests/perceptual, tests/cli: LPIPS's backbone
    """A random VGG-16 saved as torchvision saves its files (a linear head: LPIPS never uses it)."""
    generator_state = torch.get_rng_state()
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("torchvision") / "vgg16-random.pth"
    torch.save(create_model("vgg16", head="linear", num_classes=2).state_dict(), path)
    torch.set_rng_state(generator_state)
    return path


@pytest.fixture(scope="session")
def quantized(tmp_path_factory):  # tests/quantize, tests/cli
    """A vgg11_bn trained on a flat folder (a quarter held out), quantized with 16 training images."""
    from tests.helpers import colour_folders
    from vggnet.quantize import quantize_model
    from vggnet.train.loop import train
    from vggnet.train.recipes import get_recipe

    root = tmp_path_factory.mktemp("quant")
    mp = pytest.MonkeyPatch()  # session fixtures start before the autouse ones: set what they would
    try:
        mp.setenv("VGGNET_HOME", str(root / "cache"))
        mp.setenv("VGGNET_PROBE", "off")
        torch.manual_seed(0)
        data = colour_folders(root / "colours", per_class=24)
        recipe = get_recipe("cifar", {"epochs": "3", "batch_size": "16", "lr": "0.01", "val_fraction": "0.25"})
        train("vgg11_bn", data, recipe, root / "run", progress=False)
        out = root / "run" / "model-int8.onnx"
        result = quantize_model(root / "run", data, out, images=16, batch_size=8, progress=False)
        yield root, data, out, result
    finally:
        mp.undo()
