import pytest
import torch

from vggnet.analysis.trace import trace
from vggnet.errors import InputShapeError, VggnetError
from vggnet.models import create_model
from vggnet.models.fast import WIDTHS


def _conv_macs(cin: int, cout: int, k: int, side: int) -> int:
    return cin * cout * k * k * side * side


def test_parameters_and_macs_match_the_arithmetic():
    # stem 2x2 (3->24) on 32x32 -> 31x31; each block: conv at the incoming side, pool, conv at half
    stem = 24 * 3 * 4 + 24
    convs = 24 * 64 * 9 + 64 * 64 * 9 + 64 * 256 * 9 + 256 * 256 * 9 + 2 * 256 * 256 * 9
    bn = 2 * 2 * (64 + 256 + 256)
    model = create_model("vgg_fast", num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == stem + convs + bn + 256 * 10 == 1_972_792
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == convs + bn // 2 + 256 * 10 + 24  # the stem's filters and the BN scales are fixed
    macs = 31 * 31 * 24 * 12 + 256 * 10
    cin, side = 24, 31
    for width in WIDTHS:
        macs += _conv_macs(cin, width, 3, side) + _conv_macs(width, width, 3, side // 2)
        cin, side = width, side // 2
    assert trace("vgg_fast", 32, num_classes=10).macs == macs == 118_147_360


def test_stem_whitens_the_patches_it_was_fitted_on():
    torch.manual_seed(0)
    mix = torch.randn(3, 3)
    x = torch.einsum("dc,nchw->ndhw", mix, torch.randn(64, 3, 32, 32))
    x = x + 0.5 * x.roll(1, dims=3)  # correlated channels and neighbours
    model = create_model("vgg_fast", num_classes=10)
    model.fit_to_data(x, eps=1e-6)
    out = model.stem(x)[:, :12]  # the first half; the second is its negative
    cov = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1))
    assert torch.allclose(cov, torch.eye(12), atol=2e-3)
    assert torch.equal(model.stem(x)[:, 12:], -out)
    assert not model.stem.weight.requires_grad and model.stem.bias.requires_grad  # filters fixed, bias learns
    assert torch.equal(model.stem.bias, torch.zeros(24))


def test_every_conv_starts_by_passing_its_input_channels_through():
    model = create_model("vgg_fast", num_classes=10)
    x = torch.randn(2, 64, 8, 8)
    for conv in [m for m in model.features if isinstance(m, torch.nn.Conv2d)][1:]:
        n = conv.in_channels
        assert torch.equal(conv.weight[:n], torch.nn.init.dirac_(torch.empty_like(conv.weight[:n])))
        rest = conv.weight[n:]  # the other filters: PyTorch's default, std 1/sqrt(3 fan_in)
        assert rest.numel() == 0 or abs(rest.std().item() * (3 * n * 9) ** 0.5 - 1) < 0.1
        if n == 64:
            assert torch.allclose(conv(x)[:, :64], x, atol=1e-6)


def test_bad_arguments_and_inputs_are_one_line_errors():
    with pytest.raises(VggnetError, match="vgg_fast has one head"):
        create_model("vgg_fast", head="imagenet")
    with pytest.raises(VggnetError, match="initialises with 'kaiming'"):
        create_model("vgg_fast", init="paper")
    with pytest.raises(InputShapeError, match=r"\(N, 3, H, W\) with H, W >= 16"):
        create_model("vgg_fast")(torch.zeros(1, 3, 8, 8))
