"""LPIPS v0.1 (VGG) against an independent implementation of the published formula.

The reference below builds VGG-16's convolutional part as a plain ``nn.Sequential`` in
torchvision's layout, slices it where the lpips package does (features[0:4], [4:9], [9:16],
[16:23], [23:30]) and applies the paper's steps with the shipped calibration read straight from
the safetensors file: nothing of vggnet's model, feature extraction or loader is reused.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from vggnet.errors import CheckpointError, VggnetError
from vggnet.models import create_model
from vggnet.perceptual import LPIPS, lpips
from vggnet.perceptual.lpips import LINEAR_FILE, LINEAR_KEYS, linear_weights

CFG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
SLICES = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]


def reference_features(state: dict[str, torch.Tensor]) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for v in CFG_D:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=False)]
            channels = v
    net = nn.Sequential(*layers)
    net.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    return net.eval()


def reference_lpips(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> torch.Tensor:
    lins = load_file(str(LINEAR_FILE))
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    hx, hy = (x - shift) / scale, (y - shift) / scale
    total = 0
    for k, (a, b) in enumerate(SLICES):
        hx, hy = net[a:b](hx), net[a:b](hy)
        nx = hx / (torch.sqrt(torch.sum(hx**2, dim=1, keepdim=True)) + 1e-10)
        ny = hy / (torch.sqrt(torch.sum(hy**2, dim=1, keepdim=True)) + 1e-10)
        d = F.conv2d((nx - ny) ** 2, lins[f"lin{k}.model.1.weight"])
        total = total + (F.interpolate(d, size=x.shape[2:], mode="bilinear", align_corners=False) if spatial
                         else d.mean(dim=(2, 3), keepdim=True))
    return total


@pytest.fixture(scope="module")
def metric(vgg16_file):
    return LPIPS(backbone=vgg16_file)


def images(n=2, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1, torch.rand(n, 3, h, w, generator=g) * 2 - 1


def test_matches_the_published_formula(metric, vgg16_file):
    net = reference_features(torch.load(vgg16_file, weights_only=True))
    x, y = images()
    with torch.no_grad():
        ref = reference_lpips(net, x, y).flatten()
        ours = metric(x, y)
    assert ours.shape == (2,)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=0)
    assert ours.min() > 0.01  # random images are far apart: the comparison is not of two zeros


def test_spatial_map_and_per_layer_shares(metric, vgg16_file):
    net = reference_features(torch.load(vgg16_file, weights_only=True))
    x, y = images(1, 40, 56, seed=1)
    spatial = LPIPS(backbone=vgg16_file, spatial=True)
    with torch.no_grad():
        ref = reference_lpips(net, x, y, spatial=True)
        ours, shares = spatial(x, y, per_layer=True)
        total, mean_shares = metric(x, y, per_layer=True)
    assert ours.shape == (1, 1, 40, 56)
    assert torch.allclose(ours, ref, atol=1e-6, rtol=0)
    assert list(shares) == list(lpips.LAYERS)
    assert torch.allclose(sum(mean_shares.values()), total, atol=1e-7)


def test_identity_symmetry_and_ranges(metric):
    x, y = images()
    with torch.no_grad():
        assert metric(x, x).abs().max() < 1e-7
        assert torch.allclose(metric(x, y), metric(y, x), atol=1e-7)
        unit = LPIPS(backbone=metric_backbone(metric), input_range=(0, 1))
        assert torch.allclose(unit((x + 1) / 2, (y + 1) / 2), metric(x, y), atol=1e-6)


def metric_backbone(metric):
    return metric.extractor.model  # a vggnet vgg16 (cut after relu5_3), which LPIPS accepts as a module


def test_refuses_inputs_it_would_score_wrongly(metric):
    x, y = images()
    with pytest.raises(VggnetError, match=r"outside input_range \[-1, 1\]"):
        metric(x * 127.5 + 127.5, y)  # [0, 255] images
    with pytest.raises(VggnetError, match="NaN"):
        metric(x.masked_fill(x > 0.9, float("nan")), y)
    with pytest.raises(VggnetError, match="one size"):
        metric(x, y[..., :32])
    with pytest.raises(VggnetError, match="uint8"):
        metric(((x + 1) * 127).to(torch.uint8), y)


def test_warns_about_unit_range_images_declared_as_signed(metric, caplog):
    x, y = images()
    with caplog.at_level(logging.WARNING, logger="vggnet"), torch.no_grad():
        LPIPS(backbone=metric_backbone(metric))((x + 1) / 2, (y + 1) / 2)
    assert "input_range=(0, 1)" in caplog.text


def test_only_torchvision_vgg16_is_calibrated(tmp_path):
    from vggnet.runs.checkpoint import save_weights

    for model in (create_model("vgg16_bn", head="linear", num_classes=2),
                  create_model("vgg11", head="linear", num_classes=2),
                  create_model("vgg16", head="linear", num_classes=2, width=0.125)):
        with pytest.raises(VggnetError, match="calibrated on torchvision's VGG-16") as err:
            LPIPS(backbone=model)
        assert "\n" not in str(err.value) and len(str(err.value)) < 300  # not the module's repr
    cifar = tmp_path / "cifar-vgg16.safetensors"  # full width, but trained on other input
    meta = {"model": "vgg16", "model_kwargs": {"num_classes": 10, "head": "linear"}, "classes": list("abcdefghij"),
            "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "image_size": 32}
    save_weights(cifar, create_model("vgg16", head="linear", num_classes=10), meta)
    with pytest.raises(VggnetError, match="expect other input"):
        LPIPS(backbone=cifar)


def test_published_pth_loads_on_the_cpu(tmp_path, monkeypatch):
    """The published vgg.pth is a torch pickle saved on a CUDA device: read with map_location='cpu'."""
    shipped = linear_weights()
    path = tmp_path / "vgg.pth"
    torch.save(shipped, path)
    seen = {}
    real_load = torch.load

    def load(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    loaded = linear_weights(path)
    assert seen["map_location"] == "cpu" and seen["weights_only"] is True
    assert all(torch.equal(loaded[k], shipped[k]) for k in LINEAR_KEYS)
    assert [tuple(shipped[k].shape)[1] for k in LINEAR_KEYS] == [64, 128, 256, 512, 512]
    assert all((shipped[k] >= 0).all() for k in LINEAR_KEYS)  # LPIPS clamps its calibration to >= 0


def test_bad_calibration_files(tmp_path, monkeypatch):
    wrong = tmp_path / "wrong.safetensors"
    save_file({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, str(wrong))
    with pytest.raises(CheckpointError, match="not an LPIPS VGG calibration"):
        linear_weights(wrong)
    negative = tmp_path / "negative.safetensors"
    save_file({**linear_weights(), "lin2.model.1.weight": -torch.ones(1, 256, 1, 1)}, str(negative))
    with pytest.raises(CheckpointError, match="negative, NaN"):
        linear_weights(negative)
    monkeypatch.setattr(lpips, "LINEAR_SHA256", "0" * 64)
    with pytest.raises(CheckpointError, match="damaged"):
        linear_weights()
