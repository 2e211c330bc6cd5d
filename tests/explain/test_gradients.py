"""Grad-CAM and friends where the answer is known, against a hand computation, and without
leaving a trace on the model (in-place ReLUs, frozen parameters, eval mode all restored)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vggnet.errors import VggnetError
from vggnet.explain import class_maps, default_layer, resolve_layer, unit_field
from vggnet.models import create_model

QUADRANTS = {"top-left": (0, 0), "top-right": (0, 1), "bottom-left": (1, 0), "bottom-right": (1, 1)}


def pass_through_vgg() -> nn.Module:
    """A thin VGG-11 whose convolutions copy their input channels (Dirac filters, no bias), whose
    class 0 reads the red channel and class 1 the blue one: the evidence for each class is exactly
    where that colour is in the image."""
    model = create_model("vgg11", head="linear", num_classes=2, width=0.125)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
                nn.init.dirac_(m.weight[: min(m.in_channels, m.out_channels)])
                m.bias.zero_()
        fc = model.get_classifier()
        fc.weight.zero_()
        fc.bias.zero_()
        fc.weight[0, 0] = 1.0  # red
        fc.weight[1, 2] = 1.0  # blue
    return model.eval()


def blobs(red: tuple[int, int], blue: tuple[int, int], side: int = 64) -> torch.Tensor:
    """A black image with a red square in quadrant ``red`` and a blue one in quadrant ``blue``."""
    x = torch.zeros(1, 3, side, side)
    half, size = side // 2, side // 4
    for channel, (qy, qx) in ((0, red), (2, blue)):
        top, left = qy * half + half // 4, qx * half + half // 4
        x[0, channel, top:top + size, left:left + size] = 1.0
    return x


def quadrant_of_peak(m: torch.Tensor) -> tuple[int, int]:
    h, w = m.shape[-2:]
    flat = int(m.reshape(-1, h * w).sum(0).argmax()) if m.dim() == 3 else int(m.argmax())
    return (flat // w) // (h // 2), (flat % w) // (w // 2)


@pytest.mark.parametrize("red_at", list(QUADRANTS))
def test_every_map_peaks_where_the_class_evidence_is(red_at):
    model = pass_through_vgg()
    red = QUADRANTS[red_at]
    blue = (1 - red[0], 1 - red[1])  # the opposite quadrant
    maps = class_maps(model, blobs(red, blue), [0, 1], layer="conv4_2")
    for m, where in zip(maps, (red, blue), strict=True):
        for method in ("gradcam", "gradcam_pp", "saliency"):
            picture = getattr(m, method)
            assert picture.shape == (64, 64)
            assert quadrant_of_peak(picture) == where, (method, m.index)
            assert picture.max() == pytest.approx(1.0)
        assert quadrant_of_peak(m.guided.abs()) == where
    assert maps[0].probability == pytest.approx(0.5, abs=0.2)


def test_gradcam_equals_a_hand_computation():
    torch.manual_seed(1)
    model = create_model("vgg11_bn", head="small", num_classes=5, width=0.25).eval()
    x = torch.randn(1, 3, 48, 48)
    layer = "conv3_2"
    index = int(model.layer_names[layer].split(".")[1])
    acts = model.features[: index + 1](x)  # the conv's output, before its BatchNorm and in-place ReLU
    logits = model.forward_head(model.features[index + 1:](acts.clone()))
    grads = torch.autograd.grad(logits[0, 3], acts)[0]
    cam = F.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(48, 48), mode="bilinear", align_corners=False)[0, 0]
    expected = cam / cam.max()
    ours = class_maps(model, x, [3], layer=layer)[0]
    assert torch.allclose(ours.gradcam, expected.detach(), atol=1e-5)
    assert ours.probability == pytest.approx(float(logits.detach().softmax(1)[0, 3]), abs=1e-6)
    saliency = torch.autograd.functional.jacobian(lambda t: model(t)[0, 3], x)[0].abs().amax(0)
    assert torch.allclose(ours.saliency, saliency / saliency.max(), atol=1e-5)


def test_model_is_left_as_it_was():
    model = create_model("vgg11", head="linear", num_classes=3, width=0.125).eval()
    model.features[0].weight.requires_grad_(False)  # a user's frozen layer stays frozen
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    class_maps(model, torch.rand(1, 3, 32, 32), [0, 2])
    assert all(m.inplace for m in model.modules() if isinstance(m, nn.ReLU))
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert not any(p.grad is not None for p in model.parameters())
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())


def test_layers_by_paper_name_level_or_path_never_by_bare_index():
    vgg = create_model("vgg16", head="linear", num_classes=2, width=0.125)
    assert default_layer(vgg) == "relu5_3"  # the rectified maps, as Grad-CAM's authors take them
    assert resolve_layer(vgg, "relu4_2")[1] is vgg.features[int(vgg.layer_names["relu4_2"].split(".")[1])]
    assert resolve_layer(vgg, "features.28")[1] is vgg.features[28]
    with pytest.raises(VggnetError, match="unknown layer '35'"):
        resolve_layer(vgg, "35")
    with pytest.raises(VggnetError, match="not a spatial layer"):
        resolve_layer(vgg, "fc6")
    fast = create_model("vgg_fast")
    assert default_layer(fast) == "block3"
    with pytest.raises(VggnetError, match="one image at a time"):
        class_maps(vgg, torch.rand(2, 3, 32, 32), [0])
    with pytest.raises(VggnetError, match="out of range"):
        class_maps(vgg, torch.rand(1, 3, 32, 32), [5])


def test_receptive_field_of_a_unit_from_the_trace():
    with torch.device("meta"):
        vgg16 = create_model("vgg16")
    rows, cols, unit = unit_field(vgg16, "conv5_3", (224, 224), (7, 7))
    assert rows == cols == (22, 217) and rows[1] - rows[0] + 1 == 196  # the paper's 196-pixel field
    rows, cols, unit = unit_field(vgg16, "conv5_3", (224, 160), None)  # the centre of a 14 x 10 map
    assert unit == (7, 5) and cols == (16 * 5 - 90, 16 * 5 + 105)
    assert unit_field(vgg16, "conv1_1", (32, 32), (0, 0))[:2] == ((-1, 1), (-1, 1))
    with pytest.raises(VggnetError, match="outside conv5_3's 14 x 14 map"):
        unit_field(vgg16, "conv5_3", (224, 224), (14, 0))


def test_pixel_gradients_and_training_mode_restored():
    model = create_model("vgg11", head="linear", num_classes=3, width=0.125).train()
    x = torch.rand(1, 3, 32, 32)
    plain = class_maps(model, x, [1])[0]
    assert model.training  # put back as it was found
    std = [0.5, 0.25, 0.125]
    scaled = class_maps(model, x, [1], std=std)[0]
    assert torch.allclose(scaled.gradcam, plain.gradcam)
    raw = torch.autograd.functional.jacobian(lambda t: model.eval()(t)[0, 1], x)[0]
    per_pixel = (raw / torch.tensor(std).view(3, 1, 1)).abs().amax(0)
    assert torch.allclose(scaled.saliency, per_pixel / per_pixel.max(), atol=1e-5)
