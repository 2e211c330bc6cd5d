import math

import pytest
import torch
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models import create_model, init_from_shallower, init_weights


def conv(model: nn.Module, name: str) -> nn.Conv2d:
    return model.get_submodule(model.layer_names[name])


@pytest.mark.parametrize(("scheme", "std"), [("paper", 0.1), ("normal001", 0.01)])
def test_normal_schemes_have_the_stated_std(scheme: str, std: float) -> None:
    model = create_model("vgg11", head="linear", num_classes=10, init=scheme)
    w = conv(model, "conv5_2").weight  # 2.4M samples
    assert abs(w.std().item() - std) / std < 0.01
    assert abs(w.mean().item()) < std * 0.01
    biases = [m.bias.detach() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(float(b.abs().max()) == 0 for b in biases)


def test_glorot_and_kaiming() -> None:
    glorot = create_model("vgg11", head="linear", num_classes=10, init="glorot")
    w = conv(glorot, "conv4_1").weight
    bound = math.sqrt(6 / (256 * 9 + 512 * 9))
    assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound
    kaiming = create_model("vgg11", head="linear", num_classes=10, init="kaiming")
    w = conv(kaiming, "conv5_2").weight
    assert abs(w.std().item() - math.sqrt(2 / (512 * 9))) / math.sqrt(2 / (512 * 9)) < 0.01


def test_batchnorm_starts_as_identity() -> None:
    model = create_model("vgg11_bn", head="linear", num_classes=10, init="paper")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((b.weight == 1).all()) and bool((b.bias == 0).all()) for b in bns)


def test_unknown_init_is_refused() -> None:
    with pytest.raises(VggnetError, match="unknown init 'xavier'; valid: paper, normal001, glorot, kaiming"):
        init_weights(nn.Linear(2, 2), "xavier")


@pytest.mark.parametrize("deep", ["vgg13", "vgg16_conv1", "vgg16", "vgg19"])
def test_init_from_a_copies_exactly_the_named_tensors(deep: str) -> None:
    torch.manual_seed(1)
    source = create_model("A", head="small", num_classes=10)
    torch.manual_seed(2)
    model = create_model(deep, head="small", num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copied = init_from_shallower(model, source)

    names = ["conv1_1", "conv2_1", "conv3_1", "conv3_2", "fc6", "fc7", "fc8"]
    expected = {f"{model.layer_names[n]}.{p}" for n in names for p in ("weight", "bias")}
    assert set(copied) == expected
    paths = {model.layer_names[n]: source.layer_names[n] for n in names}  # target -> source module
    src_state = source.state_dict()
    for key, value in model.state_dict().items():
        module, tensor = key.rsplit(".", 1)
        if module in paths:
            assert torch.equal(value, src_state[f"{paths[module]}.{tensor}"]), key
        else:
            assert torch.equal(value, before[key]), f"{key} should keep its random init"


def test_init_from_a_with_batchnorm_copies_bn_too() -> None:
    source, model = create_model("vgg11_bn", head="linear", num_classes=4), create_model("vgg16_bn", head="linear",
                                                                                         num_classes=4)
    copied = init_from_shallower(model, source, fc_layers=1)
    assert f"{model.layer_names['bn3_2']}.running_var" in copied
    assert f"{model.layer_names['bn3_3']}.weight" not in copied


def test_init_from_a_refuses_mismatched_shapes() -> None:
    source = create_model("A", head="small", num_classes=10)
    model = create_model("D", head="small", num_classes=100)
    with pytest.raises(VggnetError, match="cannot copy fc8"):
        init_from_shallower(model, source)


def test_init_from_a_with_a_linear_head_copies_the_one_fc_layer() -> None:
    source, model = create_model("A", head="linear", num_classes=10), create_model("E", head="linear", num_classes=10)
    copied = init_from_shallower(model, source)  # the default asks for three FC layers; both heads have one
    assert copied[-2:] == [f"{model.layer_names['fc6']}.weight", f"{model.layer_names['fc6']}.bias"]
    assert torch.equal(model.classifier[0].weight, source.classifier[0].weight)
    with pytest.raises(VggnetError, match="cannot copy 3 FC layers: source has 1, target 3"):
        init_from_shallower(create_model("D", head="small", num_classes=10), source)
