"""Keras applications VGG16/VGG19 weight files (HDF5), converted to the torchvision layout.

The published files (``vgg16_weights_tf_dim_ordering_tf_kernels.h5`` and ``..._notop.h5``) are
Keras's legacy weight format: the root lists ``layer_names``, each layer group lists its
``weight_names``. Two things differ from PyTorch:

- kernels are HWIO (height, width, in, out) where PyTorch wants OIHW, and Dense kernels are
  (in, out) where ``nn.Linear`` holds (out, in);
- Keras flattens the last 7x7x512 map channels-last (index ``(h*7 + w)*512 + c``), PyTorch
  channels-first (``c*49 + h*7 + w``), so the rows of the first FC kernel are reordered.

The weights came from Caffe and expect BGR input with the Caffe mean subtracted (see
:data:`vggnet.weights.hub.PREPROCESSING`). Reading needs ``h5py`` (``pip install 'vggnet[keras]'``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn

from vggnet.errors import CheckpointError, MissingDependencyError, one_line

KERAS_MODELS = {13: "vgg16", 16: "vgg19"}
"""Number of 3x3 convolutions -> the network (Keras ships VGG16 = D and VGG19 = E only)."""

Layers = list[tuple[str, list[np.ndarray]]]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path: str | os.PathLike[str]) -> Layers:
    """``[(layer name, [kernel, bias]), ...]`` in the file's layer order; layers without weights
    (pooling, flatten) are left out."""
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("reading Keras .h5 weights needs h5py: pip install 'vggnet[keras]'") from None
    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)  # a whole saved model nests its weights
            if "layer_names" not in root.attrs:
                raise CheckpointError(f"{path} is HDF5 but not a Keras weight file (no layer_names)")
            layers = []
            for name in map(_text, root.attrs["layer_names"]):
                group = root[name]
                arrays = [np.asarray(group[_text(w)], dtype=np.float32) for w in group.attrs.get("weight_names", [])]
                if arrays:
                    layers.append((name, arrays))
    except CheckpointError:
        raise
    except Exception as err:  # not HDF5, truncated, a missing dataset: one line, never a traceback
        raise CheckpointError(f"cannot read Keras weights {path}: {one_line(err)}") from None
    return layers


def conv_kernel(hwio: np.ndarray) -> torch.Tensor:
    """Keras (H, W, in, out) -> PyTorch (out, in, H, W). Both frameworks cross-correlate, so no flip."""
    return torch.from_numpy(hwio).permute(3, 2, 0, 1).contiguous()


def first_fc_kernel(kernel: np.ndarray, channels: int) -> torch.Tensor:
    """Keras (k*k*C, out) over a channels-last flatten -> PyTorch (out, C*k*k) over a channels-first one."""
    rows, out = kernel.shape
    side = math.isqrt(rows // channels)
    if side * side * channels != rows:
        raise CheckpointError(f"first Dense layer has {rows} inputs, not k*k*{channels}")
    hwco = torch.from_numpy(kernel).reshape(side, side, channels, out)
    return hwco.permute(3, 2, 0, 1).reshape(out, rows).contiguous()


def keras_to_torchvision(layers: Layers) -> tuple[dict[str, torch.Tensor], str]:
    """Convert :func:`read_keras_h5`'s layers to a torchvision-named state dict; also returns the
    model name. A ``_notop`` file gives the ``features.*`` tensors only."""
    from vggnet.models import create_model

    convs = [(n, a) for n, a in layers if a[0].ndim == 4]
    dense = [(n, a) for n, a in layers if a[0].ndim == 2]
    if len(convs) + len(dense) != len(layers) or any(len(a) != 2 for _, a in layers):
        raise CheckpointError("not a Keras VGG file: expected Conv2D and Dense layers with a kernel and a bias each")
    if len(convs) not in KERAS_MODELS or len(dense) not in (0, 3):
        raise CheckpointError(f"not a Keras VGG16/VGG19 file: {len(convs)} conv and {len(dense)} dense layers")
    name = KERAS_MODELS[len(convs)]
    with torch.device("meta"):  # only the module names are needed
        model = create_model(name)
    conv_names = [n for n, m in model.features.named_modules() if isinstance(m, nn.Conv2d)]
    fc_names = [n for n, m in model.classifier.named_modules() if isinstance(m, nn.Linear)]
    state: dict[str, torch.Tensor] = {}
    for module, (_, (kernel, bias)) in zip(conv_names, convs, strict=True):
        state[f"features.{module}.weight"] = conv_kernel(kernel)
        state[f"features.{module}.bias"] = torch.from_numpy(bias)
    if dense:
        channels = convs[-1][1][0].shape[3]
        for i, (module, (_, (kernel, bias))) in enumerate(zip(fc_names, dense, strict=True)):
            weight = first_fc_kernel(kernel, channels) if i == 0 else torch.from_numpy(kernel).t().contiguous()
            state[f"classifier.{module}.weight"] = weight
            state[f"classifier.{module}.bias"] = torch.from_numpy(bias)
    return state, name
