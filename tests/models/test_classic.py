import pytest
import torch

from tests.conftest import meta_model, n_params
from vggnet.models import create_model

TORCHVISION_COUNTS = {
    "alexnet": 61_100_840, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "densenet121": 7_978_856, "googlenet": 13_004_888,
}


@pytest.mark.parametrize(("name", "count"), TORCHVISION_COUNTS.items())
def test_counts_equal_torchvision(name: str, count: int) -> None:
    assert n_params(meta_model(name)) == count


def test_googlenet_without_aux_heads() -> None:
    assert n_params(meta_model("googlenet", aux_logits=False)) == 6_624_904


def test_googlenet_returns_aux_logits_only_in_training() -> None:
    model = create_model("googlenet", num_classes=7)
    x = torch.randn(2, 3, 96, 96)
    out = model.train()(x)
    assert [t.shape for t in out] == [(2, 7)] * 3
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 7)


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "resnet50", "densenet121"])
def test_forward_and_backward(name: str) -> None:
    model = create_model(name, num_classes=5)
    out = model(torch.randn(2, 3, 64, 64) if name != "alexnet" else torch.randn(2, 3, 96, 96))
    out.sum().backward()
    assert out.shape == (2, 5)
    assert all(p.grad is not None for p in model.parameters())


def test_torchvision_key_names() -> None:
    keys = {n: set(meta_model(n).state_dict()) for n in ("resnet50", "densenet121", "googlenet")}
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var", "fc.bias"} <= keys["resnet50"]
    assert {"features.denseblock1.denselayer1.norm1.weight", "features.transition3.conv.weight",
            "features.norm5.bias", "classifier.weight"} <= keys["densenet121"]
    assert {"inception3a.branch2.1.conv.weight", "aux1.fc2.weight", "inception5b.branch4.1.bn.running_mean"} \
        <= keys["googlenet"]
