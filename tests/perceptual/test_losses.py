"""PerceptualLoss and StyleLoss: the features are FeatureExtractor's, the input is what the weights
expect, the trunk frozen and cut short, and a batch in the wrong range is an error."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models import FeatureExtractor, create_model
from vggnet.perceptual import PerceptualLoss, StyleLoss, gram_matrix

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(2)
    return create_model("vgg11", head="linear", num_classes=3).eval()


def rand(n=2, side=32, seed=0):
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def test_layer_outputs_equal_feature_extractors(vgg):
    layers = ["relu1_1", "conv2_1", "relu3_2"]
    loss = PerceptualLoss(layers, backbone=vgg)
    x = rand()
    ours = loss.features(x)
    ref = FeatureExtractor(vgg, layers)((x - MEAN) / STD)
    assert list(ours) == layers
    for name in layers:
        assert torch.allclose(ours[name], ref[name], atol=1e-5), name
    assert (ref["conv2_1"] < 0).any()  # conv2_1 is the pre-ReLU output, not overwritten in place


def test_loss_value_weights_and_gradients(vgg):
    layers = ["relu1_1", "relu2_1"]
    loss = PerceptualLoss(layers, weights={"relu2_1": 0.5}, criterion="l2", backbone=vgg)
    x, y = rand(seed=1).requires_grad_(), rand(seed=2).requires_grad_()
    value = loss(x, y)
    ref = FeatureExtractor(vgg, layers)
    fx, fy = ref((x - MEAN) / STD), ref((y - MEAN) / STD)
    expected = F.mse_loss(fx["relu1_1"], fy["relu1_1"]) + 0.5 * F.mse_loss(fx["relu2_1"], fy["relu2_1"])
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None  # the target never gets a gradient
    assert not any(p.requires_grad for p in loss.parameters())


def test_l1_batch_one_target_and_zero_at_equality(vgg):
    loss = PerceptualLoss(["relu2_1"], backbone=vgg)
    x = rand(3)
    assert loss(x, x).item() == 0
    one = loss(x, x[:1])
    each = sum(loss(x[i:i + 1], x[:1]) for i in range(3)) / 3
    assert one.item() == pytest.approx(each.item(), rel=1e-5)


def test_stays_in_eval_mode_and_is_cut_after_the_deepest_layer():
    bn = create_model("vgg11_bn", head="linear", num_classes=3)
    loss = PerceptualLoss(["relu2_1"], backbone=bn).train()
    assert not loss.extractor.training and not any(m.training for m in loss.extractor.modules())
    kept = loss.extractor.model.features
    assert [type(m).__name__ for m in kept][-3:] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert len(kept) == int(bn.layer_names["relu2_1"].split(".")[1]) + 1
    assert isinstance(loss.extractor.model.classifier, nn.Identity)
    x = rand()
    stats = bn.features[1].running_mean.clone()
    loss(x, rand(seed=3))
    assert torch.equal(bn.features[1].running_mean, stats)  # the user's module is copied, never changed


def test_range_is_checked_and_suspicious_ranges_warned(vgg, caplog):
    loss = PerceptualLoss(["relu1_1"], backbone=vgg)
    x = rand()
    with pytest.raises(VggnetError, match=r"outside input_range \[0, 1\]; pass input_range=\(-1, 1\)"):
        loss(x * 2 - 1, x)
    with pytest.raises(VggnetError, match=r"input_range=\(0, 255\)"):
        loss(x * 255, x)
    with pytest.raises(VggnetError, match="target"):
        loss(x, x * 255)
    signed = PerceptualLoss(["relu1_1"], input_range=(-1, 1), backbone=vgg)
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        signed(x, x)
    assert "every value is >= 0" in caplog.text
    with pytest.raises(VggnetError, match="low < high"):
        PerceptualLoss(["relu1_1"], input_range=(1, 0), backbone=vgg)
    with pytest.raises(VggnetError, match="unknown layer"):
        PerceptualLoss(["relu9_9"], backbone=vgg)
    with pytest.raises(VggnetError, match="convolutional"):
        PerceptualLoss(["fc6"], backbone=vgg)
    with pytest.raises(VggnetError, match="one per layer"):
        PerceptualLoss(["relu1_1"], weights=[1, 2], backbone=vgg)


def test_input_ranges_map_to_the_same_loss(vgg):
    x, y = rand(seed=4), rand(seed=5)
    unit = PerceptualLoss(["relu2_1"], backbone=vgg)(x, y)
    signed = PerceptualLoss(["relu2_1"], input_range=(-1, 1), backbone=vgg)(x * 2 - 1, y * 2 - 1)
    byte = PerceptualLoss(["relu2_1"], input_range=(0, 255), backbone=vgg)(x * 255, y * 255)
    assert signed.item() == pytest.approx(unit.item(), rel=1e-5)
    assert byte.item() == pytest.approx(unit.item(), rel=1e-5)


def test_keras_weights_get_bgr_minus_the_mean_pixel(vgg):
    loss = PerceptualLoss(["conv1_1"], backbone=vgg, normalization="keras")
    x = rand()
    caffe = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    ref = FeatureExtractor(vgg, ["conv1_1"])(caffe)["conv1_1"]
    assert torch.allclose(loss.features(x)["conv1_1"], ref, atol=1e-3)


def test_average_pooling():
    vgg = create_model("vgg11", head="linear", num_classes=3)
    loss = PerceptualLoss(["relu3_1"], backbone=vgg, pooling="avg")
    kinds = {type(m).__name__ for m in loss.extractor.model.features}
    assert "AvgPool2d" in kinds and "MaxPool2d" not in kinds
    x = rand()
    pooled = F.avg_pool2d(F.relu(vgg.features[0]((x - MEAN) / STD)), 2)
    assert torch.allclose(FeatureExtractor(loss.extractor.model, ["pool1"])((x - MEAN) / STD)["pool1"], pooled,
                          atol=1e-6)


def test_bf16_autocast_and_channels_last(vgg):
    loss = PerceptualLoss(["relu1_1", "relu3_1"], backbone=vgg)
    x, y = rand(seed=6), rand(seed=7)
    ref = loss(x, y)
    last = loss.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last), y)
    assert last.item() == pytest.approx(ref.item(), rel=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss(x, y)
    assert low.dtype == torch.float32
    assert low.item() == pytest.approx(ref.item(), rel=0.05)


def test_gram_matrix_normalisation():
    f = torch.ones(2, 3, 4, 5)
    g = gram_matrix(f)
    assert g.shape == (2, 3, 3)
    assert torch.allclose(g, torch.full((2, 3, 3), 20 / 60))  # each entry sums H*W ones, over C*H*W
    f = torch.randn(1, 4, 6, 6)
    flat = f.view(4, 36)
    assert torch.allclose(gram_matrix(f)[0], flat @ flat.T / (4 * 36), atol=1e-6)


def test_style_loss_against_grams_and_cached_targets(vgg):
    layers = ["relu1_1", "relu2_1"]
    style = StyleLoss(layers, weights=[1.0, 2.0], backbone=vgg)
    x, s = rand(3, seed=8), rand(1, 48, seed=9)  # a style image of another size, one for every input
    value = style(x, s)
    fx, fs = FeatureExtractor(vgg, layers)((x - MEAN) / STD), FeatureExtractor(vgg, layers)((s - MEAN) / STD)
    expected = sum(w * F.mse_loss(gram_matrix(fx[n]), gram_matrix(fs[n]).expand(3, -1, -1))
                   for n, w in zip(layers, [1.0, 2.0], strict=True))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert style(x, style.grams(s)).item() == pytest.approx(value.item(), rel=1e-6)
    assert style(s, s).item() == 0


def test_an_overshoot_is_clamped_never_reinterpreted(vgg):
    """A super-resolution net's [0, 1.02] output must not be told to declare (0, 255): that loss is 400x off."""
    loss = PerceptualLoss(["relu1_1"], backbone=vgg)
    x = rand()
    with pytest.raises(VggnetError, match=r"clamp them into \[0, 1\]") as err:
        loss(x * 1.02, x)
    assert "255" not in str(err.value)
    signed = PerceptualLoss(["relu1_1"], input_range=(-1, 1), backbone=vgg)
    with pytest.raises(VggnetError, match=r"input_range=\(0, 255\)"):
        signed(x * 255, x * 2 - 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"layers": ("relu1_1", "relu1_1")}, "twice"),
    ({"layers": ("relu1_1",), "weights": [float("nan")]}, "finite and >= 0"),
    ({"layers": ("relu1_1",), "weights": [-1.0]}, "finite and >= 0"),
    ({"layers": ("relu1_1", "relu2_1"), "weights": "12"}, "numbers"),
    ({"layers": ("relu1_1",), "normalization": {"mean": [0.5], "std": [0.2]}}, "three"),
    ({"layers": ("relu1_1",), "normalization": {"mean": [0.5] * 3, "std": [0.0] * 3}}, "positive stds"),
    ({"layers": ("relu1_1",), "normalization": {"mean": [0.5] * 3, "std": [0.2] * 3, "channels": "RGBA"}}, "'BGR'"),
    ({"layers": ("relu1_1",), "normalization": {"mean": [0.5] * 3}}, "mean and std"),
])
def test_bad_arguments_are_one_line(vgg, kwargs, message):
    with pytest.raises(VggnetError, match=message):
        PerceptualLoss(backbone=vgg, **kwargs)


def test_inputs_the_trunk_cannot_take_are_converted_or_refused(vgg):
    loss = PerceptualLoss("relu2_1", backbone=vgg)  # one name, not its characters
    assert loss.layers == ["relu2_1"]
    x, y = rand(seed=10), rand(seed=11)
    ref = loss(x, y)
    assert loss(x.double(), y.double()).item() == pytest.approx(ref.item(), rel=1e-5)
    assert loss(x.half(), y.half()).item() == pytest.approx(ref.item(), rel=1e-2)
    for bad, message in ((x[:0], "non-empty"), (x[:, :1], r"\(N, 3, H, W\)"), (x[0], r"\(N, 3, H, W\)")):
        with pytest.raises(VggnetError, match=message):
            loss(bad, bad)
    style = StyleLoss(["relu1_1", "relu2_1"], backbone=vgg)
    with pytest.raises(VggnetError, match="lack layer"):
        style(x, {"relu1_1": style.grams(y)["relu1_1"]})
    with pytest.raises(VggnetError, match="do not fit"):
        style(x, style.grams(rand(3, seed=12)))
    with pytest.raises(VggnetError, match="feature maps"):
        gram_matrix(torch.rand(3, 4, 4))
