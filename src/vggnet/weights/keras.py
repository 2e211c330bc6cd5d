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

Only data stored in the file itself is read: external storage, virtual datasets, external links
and soft links are refused (one line), and every dataset's declared shape is checked against the
network before it is read, so a file cannot make vggnet copy another file or allocate by a shape.
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


MAX_DENSE = 7 * 7 * 512 * 4096
"""Elements of the largest VGG Dense kernel (fc1 of the ImageNet head): a bound for any other."""
_KERNELS = "a Conv2D kernel (3, 3, in, out) or a Dense kernel (in, out)"


def _node(group: object, name: str, path: object) -> object:
    """``group[name]`` through hard links only. External links, soft links and user-defined links
    are refused, not followed: a soft link could lead to any object of the file and an external one
    to another file, so every object read is one the layer's own path names."""
    import h5py

    node, parts = group, [p for p in name.split("/") if p not in ("", ".")]
    base = [group.name.strip("/")] if group.name.strip("/") else []  # type: ignore[attr-defined]
    for i, part in enumerate(parts):
        link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
        where = "/".join(base + parts[: i + 1])
        if link is None:
            raise CheckpointError(f"cannot read Keras weights {path}: no object {where!r}")
        if not isinstance(link, h5py.HardLink):
            kind = "an external link (to another file)" if isinstance(link, h5py.ExternalLink) else "a soft link"
            raise CheckpointError(f"{path}: {where} is {kind}; vggnet reads only data stored in the .h5 itself")
        node = node[part]
    return node


def _dataset(group: object, name: str, path: object) -> object:
    """A weight dataset whose data is stored in the file itself, as floats."""
    import h5py

    ds = _node(group, name, path)
    where = f"{group.name.strip('/')}/{name}"  # type: ignore[attr-defined]
    if not isinstance(ds, h5py.Dataset):
        raise CheckpointError(f"{path}: {where} is not a dataset")
    if ds.is_virtual or ds.external:
        kind = "a virtual dataset" if ds.is_virtual else "stored in an external file"
        raise CheckpointError(f"{path}: dataset {where} is {kind} (its data lies in other files); "
                              "vggnet reads only data stored in the .h5 itself")
    if ds.dtype.kind != "f" or ds.shape is None:
        raise CheckpointError(f"{path}: dataset {where} holds {ds.dtype}, not floating-point weights")
    return ds


def _expect(where: str, shape: tuple, want: tuple | str, fits: bool, name: str, path: object) -> None:
    if not fits:
        raise CheckpointError(f"{path}: dataset {where} has shape {shape}, expected {want} for {name}")


def check_shapes(layers: list[tuple[str, list[tuple[str, tuple]]]], path: object) -> None:
    """Check the datasets' declared shapes ``[(layer, [(kernel name, shape), (bias name, shape)])]``
    against the VGG network they must be, before anything is read: a file's shapes say how much
    memory reading takes. Convolutions are exact; Dense layers chain and stay within :data:`MAX_DENSE`."""
    from vggnet.models import create_model

    for layer, arrays in layers:
        if len(arrays) != 2:
            raise CheckpointError("not a Keras VGG file: expected Conv2D and Dense layers with a kernel and a bias "
                                  "each")
        (kname, kernel) = arrays[0]
        if len(kernel) not in (2, 4):
            raise CheckpointError(f"{path}: dataset {layer}/{kname} has shape {kernel}, expected {_KERNELS}")
    n_conv = sum(len(a[0][1]) == 4 for _, a in layers)
    if n_conv not in KERAS_MODELS or len(layers) - n_conv not in (0, 3):
        raise CheckpointError(f"not a Keras VGG16/VGG19 file: {n_conv} conv and {len(layers) - n_conv} dense layers")
    name = KERAS_MODELS[n_conv]
    with torch.device("meta"):
        convs = [tuple(m.weight.shape) for m in create_model(name).features if isinstance(m, nn.Conv2d)]
    rows: int | str = "k*k*512"  # the first Dense layer takes the last 512-channel map, flattened
    for i, (layer, [(kname, kernel), (bname, bias)]) in enumerate(layers):
        if i < n_conv:
            out, cin, kh, kw = convs[i]
            _expect(f"{layer}/{kname}", kernel, (kh, kw, cin, out), kernel == (kh, kw, cin, out), name, path)
        else:
            if isinstance(rows, str) and len(kernel) == 2 and kernel[0] % 512 == 0:
                rows = kernel[0] if math.isqrt(kernel[0] // 512) ** 2 == kernel[0] // 512 else rows
            fits = len(kernel) == 2 and kernel[0] == rows and math.prod(kernel) <= MAX_DENSE
            _expect(f"{layer}/{kname}", kernel, f"({rows}, n) of at most {MAX_DENSE:,} elements", fits, name, path)
            rows = kernel[-1]
        _expect(f"{layer}/{bname}", bias, kernel[-1:], bias == kernel[-1:], name, path)


def read_keras_h5(path: str | os.PathLike[str]) -> Layers:
    """``[(layer name, [kernel, bias]), ...]`` in the file's layer order; layers without weights
    (pooling, flatten) are left out. Only data stored in the file itself is read, through hard
    links (see :func:`_node`), and only once every shape fits the network (:func:`check_shapes`)."""
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("reading Keras .h5 weights needs h5py: pip install 'vggnet[keras]'") from None
    try:
        with h5py.File(path, "r") as f:
            nested = f.get("model_weights", getlink=True) is not None  # a whole saved model nests them
            root = _node(f, "model_weights", path) if nested else f
            if "layer_names" not in root.attrs:
                raise CheckpointError(f"{path} is HDF5 but not a Keras weight file (no layer_names)")
            found = []
            for name in map(_text, root.attrs["layer_names"]):
                group = _node(root, name, path)
                found.append((name, [(_text(w), _dataset(group, _text(w), path))
                                     for w in group.attrs.get("weight_names", [])]))
            found = [(n, a) for n, a in found if a]
            check_shapes([(n, [(w, tuple(d.shape)) for w, d in a]) for n, a in found], path)
            layers = [(n, [_read(d, f"{n}/{w}", path) for w, d in a]) for n, a in found]
    except CheckpointError:
        raise
    except Exception as err:  # not HDF5, truncated, a missing dataset: one line, never a traceback
        raise CheckpointError(f"cannot read Keras weights {path}: {one_line(err)}") from None
    return layers


def _read(ds: object, where: str, path: object) -> np.ndarray:
    """A dataset's data as float32 (HDF5 converts float16/float64 as it reads)."""
    if ds.size and ds.id.get_storage_size() == 0:  # type: ignore[attr-defined]
        raise CheckpointError(f"{path}: dataset {where} was never written (it holds no data)")
    out = np.empty(ds.shape, np.float32)  # type: ignore[attr-defined]
    if out.size:
        ds.read_direct(out)  # type: ignore[attr-defined]
    return out


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
