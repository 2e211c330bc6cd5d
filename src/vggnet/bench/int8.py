"""int8 for ``bench infer --precision int8``: the benchmarked network quantized as ``vggnet quantize``
does (onnxruntime static QDQ), and the int8 convolution peak measured the same way.

The network has random weights (as every bench model does), calibrated on real photos (the embedded
CIFAR-10 sample's training images, resized): speed does not depend on the weights, and the top-1
agreement with fp32 is measured on other photos, the sample's held-out ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from vggnet.bench.peak import CONV_CHANNELS, CONV_SIDE, best_seconds, conv_flops
from vggnet.bench.workloads import model_kwargs
from vggnet.export import export_model_onnx
from vggnet.models import create_model
from vggnet.quantize.calibration import CalibrationReader
from vggnet.quantize.static import quantize_onnx, reduce_range

CALIBRATION_IMAGES = 32  # enough for ranges that time like the real thing; accuracy is `vggnet quantize`'s job


def real_images(split: str, n: int, size: int) -> torch.Tensor:
    """``n`` photos of the embedded sample's ``split``, resized to ``size`` and standardised."""
    from vggnet.data.datasets import load_data

    images = getattr(load_data("sample", progress=False), split).images[:n]
    x = F.interpolate(images.float().div(255), size=(size, size), mode="bilinear", align_corners=False)
    return (x - x.mean((0, 2, 3), keepdim=True)) / x.std((0, 2, 3), keepdim=True)


def _reader(batches: list[torch.Tensor]) -> CalibrationReader:
    """`vggnet quantize`'s calibration reader over batches already normalised."""
    return CalibrationReader([(b, None) for b in batches], lambda x: x, "image")


def _quantize(net: torch.nn.Module, meta: dict, calibration: torch.Tensor, folder: Path) -> Path:
    fp32 = export_model_onnx(net, meta, folder / "fp32.onnx")
    out = folder / "int8.onnx"
    reader = _reader([calibration[i:i + 8] for i in range(0, len(calibration), 8)])
    quantize_onnx(fp32, out, reader, meta, {"images": len(calibration), "images_are": "embedded sample photos",
                                            "reduce_range": reduce_range()})
    return out


def quantized_model(model_name: str, size: int, folder: Path) -> tuple[Path, torch.nn.Module]:
    """(int8 ONNX file, the fp32 network it came from): the seed-0 network bench's agreement uses."""
    torch.manual_seed(0)
    kwargs = model_kwargs(model_name, size)
    net = create_model(model_name, **kwargs).eval()
    classes = kwargs.get("num_classes", 1000)
    meta = {"model": model_name, "model_kwargs": kwargs, "classes": [str(i) for i in range(classes)],
            "mean": [0.0] * 3, "std": [1.0] * 3, "image_size": size}
    return _quantize(net, meta, real_images("train", CALIBRATION_IMAGES, size), folder), net


class _ConvStack(torch.nn.Module):
    """Three of VGG's conv3 convolutions with ReLUs: int8 stays int8 between them, as in the network."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, 3, padding=1)
                                         for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x))
        return x


def int8_conv_peak(seconds: float = 1.5, batch: int = 8) -> float:
    """Best GFLOPS of VGG's conv3 convolution in onnxruntime int8 (three in a row, 2 threads as torch has)."""
    from vggnet.weights.onnx_model import OnnxClassifier

    torch.manual_seed(0)
    stack = _ConvStack().eval()
    meta = {"model": "conv3", "classes": [], "mean": [0.0] * 3, "std": [1.0] * 3, "image_size": CONV_SIDE}
    x = torch.relu(torch.randn(batch, CONV_CHANNELS, CONV_SIDE, CONV_SIDE))
    with tempfile.TemporaryDirectory(prefix="vggnet-peak-") as tmp:
        onnx = Path(tmp) / "fp32.onnx"
        _export_stack(stack, x, onnx)
        out = Path(tmp) / "int8.onnx"
        quantize_onnx(onnx, out, _reader([x]), meta, {"images": batch, "reduce_range": reduce_range()})
        model = OnnxClassifier(out.read_bytes())
    return 3 * conv_flops(batch) / best_seconds(lambda: model(x), torch.device("cpu"), seconds) / 1e9


def _export_stack(stack: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    from vggnet.export import _quiet

    with _quiet():
        torch.onnx.export(stack, (x,), str(path), input_names=["image"], dynamo=True, external_data=False)
