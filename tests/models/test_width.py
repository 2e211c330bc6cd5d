"""The width multiplier: every layer thinned alike, the paper's network at width 1, bad widths refused."""

import itertools
import math

import pytest
import torch

from vggnet.errors import VggnetError
from vggnet.models import create_model
from vggnet.train.distributed import DistInfo
from vggnet.train.recipes import get_recipe
from vggnet.train.setup import checked_model, model_kwargs_for


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_a_quarter_width_vgg11_has_the_hand_counted_parameters():
    model = create_model("vgg11", width=0.25, head="linear", num_classes=10)
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64, 128, 128, 128, 128]
    # 3x3 convs (weights + biases) of Table 1's A at 1/4 width, then a 128 -> 10 linear layer
    chans = [3, 16, 32, 64, 64, 128, 128, 128, 128]
    convs_count = sum(9 * cin * cout + cout for cin, cout in itertools.pairwise(chans))
    assert convs_count == 578_410 - 1_290
    assert _params(model) == 578_410
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.feature_info.channels() == [16, 32, 64, 128, 128]


def test_width_1_is_the_paper_network_and_other_widths_scale_the_head_too():
    paper, default = create_model("vgg16", num_classes=1000), create_model("vgg16", width=1.0, num_classes=1000)
    assert _params(paper) == _params(default) == 138_357_544  # torchvision's vgg16
    half = create_model("vgg16_bn", width=0.5, head="small", num_classes=10)
    assert [m.out_features for m in half.classifier if isinstance(m, torch.nn.Linear)] == [256, 256, 10]
    assert half.classifier[0].in_features == 256 and half.num_features == 256
    tiny = create_model("vgg11", width=0.001, head="linear", num_classes=3)  # every layer keeps one channel
    assert {m.out_channels for m in tiny.features if isinstance(m, torch.nn.Conv2d)} == {1}


@pytest.mark.parametrize("width", [0, -0.5, 4.5, math.nan, math.inf])
def test_a_width_outside_the_range_is_one_line(width):
    with pytest.raises(VggnetError, match=r"width multiplies the layers' channels: it must be in \(0, 4"):
        create_model("vgg11", width=width)


def test_the_recipe_passes_width_to_vggs_and_refuses_it_for_other_networks(tmp_path):
    recipe = get_recipe("cifar", {"width": "0.25"})
    assert model_kwargs_for("vgg13_bn", recipe, 10, 32)["width"] == 0.25
    assert "width" not in model_kwargs_for("resnet18", get_recipe("cifar"), 10, 32)
    with pytest.raises(VggnetError, match=r"recipe width must be in \(0, 4\]"):
        get_recipe("cifar", {"width": "0"})
    with pytest.raises(VggnetError, match=r"vgg_fast has no width multiplier \(width=0.5\)"):
        checked_model("vgg_fast", tmp_path, get_recipe("cifar", {"width": "0.5"}), DistInfo())
    assert checked_model("vgg11", tmp_path, recipe, DistInfo()) == "vgg11"


def test_full_width_weights_refuse_a_thin_net(tmp_path):
    from safetensors.torch import save_file

    from vggnet.weights.load import pretrained_model

    wide = create_model("vgg11", head="linear", num_classes=10)
    save_file(wide.state_dict(), tmp_path / "wide.safetensors")
    with pytest.raises(VggnetError, match="weights do not fit vgg11"):
        pretrained_model("vgg11", tmp_path / "wide.safetensors", width=0.25)
