"""An ONNX file vggnet wrote (``vggnet export`` or ``vggnet quantize``) as a model predict, evaluate and
bench take like any other: an ``nn.Module`` whose forward runs onnxruntime.

The file carries its checkpoint's metadata (classes, preprocessing, network, the run's split) in
its properties, so it is self-describing the way a vggnet checkpoint is. The file is read once,
within the weight-file bound, and handed to onnxruntime as bytes; one whose tensors live in
external files is refused, so a model cannot make the loader read a path it names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vggnet.errors import CheckpointError, MissingDependencyError, one_line

SUFFIX = ".onnx"
META_KEY = "vggnet"  # the property holding the checkpoint metadata as JSON


def _require_onnx() -> None:
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(f"ONNX models need {module}: pip install 'vggnet[onnx]'") from None


def _tensors(message) -> Iterator:  # message: any onnx protobuf message
    """Every TensorProto inside ``message``, found by walking all its fields: initializers, sparse
    tensors' values and indices, node attributes, subgraphs and function bodies alike."""
    import onnx

    if isinstance(message, onnx.TensorProto):
        yield message
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        for item in value if repeated else (value,):
            yield from _tensors(item)


def read_onnx(path: str | os.PathLike[str]) -> tuple[bytes, dict]:
    """The bytes of a vggnet ONNX file and its metadata, checked; one CheckpointError line otherwise."""
    _require_onnx()
    import onnx
    from google.protobuf.message import DecodeError

    from vggnet.files import FileRefused, max_file_bytes, read_regular
    from vggnet.runs.checkpoint import check_meta
    from vggnet.weights.load import MAX_WEIGHT_BYTES

    try:
        data = read_regular(path, max(max_file_bytes(), MAX_WEIGHT_BYTES))
    except FileRefused as err:
        raise CheckpointError(f"{path}: {err}; pass an ONNX file") from None
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror}") from None
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is not an ONNX model ({one_line(err)})") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL or t.external_data for t in _tensors(proto)):
        raise CheckpointError(f"{path} keeps its weights in external files, which vggnet does not follow; "
                              "export it as one file")
    props = {p.key: p.value for p in proto.metadata_props}
    try:
        meta = json.loads(props[META_KEY])
        if not isinstance(meta, dict):
            raise ValueError
    except (KeyError, ValueError):
        raise CheckpointError(f"{path} has no vggnet metadata (classes, preprocessing): only ONNX files "
                              "written by `vggnet export` or `vggnet quantize` can be used here") from None
    check_meta(meta, Path(path))
    if meta.get("fully_convolutional"):
        raise CheckpointError(f"{path} is a fully-convolutional score-map model; classify with the classifier form "
                              "(export without --fully-convolutional)")
    return data, meta


class OnnxClassifier(nn.Module):
    """An ONNX classifier run by onnxruntime on the CPU: (N, 3, S, S) float images to (N, classes)
    logits, returned on the input's device. ``precision`` is 'int8' for a quantized file."""

    def __init__(self, model: bytes, precision: str = "fp32", threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise
        try:
            self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise CheckpointError(f"onnxruntime cannot run this model: {one_line(err)}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.precision = precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            (logits,) = self.session.run(None, {self.input_name: array})
        except Exception as err:  # onnxruntime's own error types are not RuntimeErrors
            raise CheckpointError(f"onnxruntime could not run the model on a {tuple(x.shape)} batch: "
                                  f"{one_line(err)}") from None
        return torch.from_numpy(logits).to(x.device)

    def check(self, meta: dict, path: str | os.PathLike[str]) -> None:
        """The graph takes (N, 3, S, S) and gives (N, classes) as its metadata says, or one line."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        size, classes = meta.get("image_size"), len(meta.get("classes") or ())
        shape_in = inputs[0].shape if len(inputs) == 1 else None
        shape_out = outputs[0].shape if len(outputs) == 1 else None
        fixed = [d for d in (shape_in or [None])[1:] if isinstance(d, int)]
        if shape_in is None or len(shape_in) != 4 or fixed not in ([3, size, size], [3]):
            raise CheckpointError(f"{path} does not take (N, 3, {size}, {size}) images as its metadata says "
                                  f"(its input: {shape_in})")
        if shape_out is None or len(shape_out) != 2 or shape_out[1] != classes:
            raise CheckpointError(f"{path} does not give {classes} class scores as its metadata says "
                                  f"(its output: {shape_out})")


def load_onnx_model(path: str | os.PathLike[str]) -> tuple[OnnxClassifier, dict]:
    """(model, meta) from a vggnet ONNX file: the model runs it, ``meta`` says how to feed it."""
    data, meta = read_onnx(path)
    model = OnnxClassifier(data, meta.get("precision", "fp32"))
    model.check(meta, path)
    return model.eval(), {**meta, "onnx": str(path)}
