import pytest
import torch
import torch.nn.functional as F

from vggnet.errors import VggnetError
from vggnet.models import FeatureExtractor, create_model


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("vgg11", head="small", num_classes=10).eval()


def test_hooks_on_an_inplace_relu_net_are_a_trap(model: torch.nn.Module) -> None:
    # What the extractor exists to avoid: a forward hook on conv1_1 sees the ReLU's output.
    grabbed = {}
    handle = model.features[0].register_forward_hook(lambda m, i, o: grabbed.setdefault("conv1_1", o))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    handle.remove()
    assert grabbed["conv1_1"].min() >= 0


def test_pre_relu_outputs_are_not_overwritten(model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = FeatureExtractor(model, ["conv1_1", "relu1_1", "pool1"])(x)
    conv = model.features[0]
    expected = F.conv2d(x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(out["conv1_1"], expected)
    assert out["conv1_1"].min() < 0
    torch.testing.assert_close(out["relu1_1"], expected.clamp(min=0))
    torch.testing.assert_close(out["pool1"], F.max_pool2d(expected.clamp(min=0), 2))


def test_fc_layers_and_order(model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = FeatureExtractor(model, ["fc7", "conv5_2"])(x)
        expected_fc7 = model.classifier[:4](torch.flatten(model.avgpool(model.features(x)), 1))
    assert list(out) == ["fc7", "conv5_2"]
    torch.testing.assert_close(out["fc7"], expected_fc7)
    assert out["conv5_2"].shape == (2, 512, 2, 2)


def test_unknown_layer_lists_valid_names(model: torch.nn.Module) -> None:
    with pytest.raises(VggnetError, match=r"unknown layer name\(s\) \['conv6_1'\]; valid: conv1_1, relu1_1"):
        FeatureExtractor(model, ["conv6_1"])
