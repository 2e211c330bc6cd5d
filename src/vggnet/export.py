"""Export a checkpoint or pretrained weights to ONNX, with a dynamic batch dimension.

The classifier form takes (N, 3, S, S) at the training size S and gives (N, classes) logits.
The fully-convolutional form (the paper's test net, :func:`vggnet.models.to_fully_convolutional`)
takes any (N, 3, H, W) with H, W >= its window and gives an (N, classes, H', W') score map; average
it over H', W' for the paper's dense evaluation. The file's metadata carries the class names and
the preprocessing (channel order, mean, std on [0, 1], resize and crop) the weights expect.

Needs the ``onnx`` extra (onnx, onnxscript; onnxruntime to verify): ``pip install 'vggnet[onnx]'``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from vggnet.atomic import atomic_path
from vggnet.errors import MissingDependencyError, VggnetError, one_line
from vggnet.models import FullyConvolutionalVGG, to_fully_convolutional

FORMATS = ("onnx",)


def require(module: str) -> None:
    """Fail with one line naming the extra to install when ``module`` is missing."""
    try:
        __import__(module)
    except ImportError:
        raise MissingDependencyError(f"ONNX export needs {module}: pip install 'vggnet[onnx]'") from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter prints its steps and warns about torchvision ops it does not need."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    weights: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fully_convolutional: bool = False,
    model_name: str | None = None,
    opset: int | None = None,
) -> Path:
    """Write ``weights`` (a run dir, checkpoint, known name or weight file) as an ONNX file, atomically."""
    from vggnet.weights.load import model_for_inference

    for module in ("onnx", "onnxscript"):  # before the weights are read
        require(module)
    model, meta = model_for_inference(weights, model_name)
    net = to_fully_convolutional(model).eval() if fully_convolutional else model
    return export_model_onnx(net, meta, out, opset=opset)


def export_model_onnx(net: torch.nn.Module, meta: dict, out: str | os.PathLike[str], *,
                      opset: int | None = None) -> Path:
    """Write a loaded ``net`` (a VGG in eval mode, or its fully-convolutional form) as ONNX, with
    ``meta`` (its checkpoint metadata: classes, preprocessing) in the file's properties."""
    for module in ("onnx", "onnxscript"):
        require(module)
    import onnx

    fully_convolutional = isinstance(net, FullyConvolutionalVGG)
    size = meta["image_size"]
    batch = torch.export.Dim("batch", min=1)
    dims = {0: batch}
    if fully_convolutional:
        side = net.min_input
        dims |= {2: torch.export.Dim("height", min=side), 3: torch.export.Dim("width", min=side)}
    example = torch.zeros(2, 3, size, size)  # batch 2: a batch of 1 would be specialised to 1
    out = Path(out)
    with atomic_path(out) as tmp:
        try:
            with _quiet():
                torch.onnx.export(net, (example,), tmp, input_names=["image"],
                                  output_names=["score_map" if fully_convolutional else "logits"],
                                  dynamic_shapes=(dims,), dynamo=True, external_data=False, opset_version=opset)
        except Exception as err:
            raise VggnetError(f"ONNX export of {meta['model']} failed: {one_line(err)}") from None
        proto = onnx.load(str(tmp))
        props = {"model": meta["model"], "classes": json.dumps(meta["classes"]), "mean": json.dumps(meta["mean"]),
                 "std": json.dumps(meta["std"]), "channels": meta.get("channels", "RGB"),
                 "image_size": str(size), "test_scale": str(meta.get("test_scale", size)),
                 "fully_convolutional": str(fully_convolutional).lower(),
                 "vggnet": json.dumps({**meta, "fully_convolutional": fully_convolutional})}
        onnx.helper.set_model_props(proto, props)
        onnx.save(proto, str(tmp))
    return out


def verify_onnx(path: str | os.PathLike[str], net: torch.nn.Module, x: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime's output for ``x`` and ``net``'s."""
    require("onnxruntime")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(None, {"image": x.numpy()})
    with torch.inference_mode():
        reference = net(x).float()
    return float((torch.from_numpy(ours) - reference).abs().max())
