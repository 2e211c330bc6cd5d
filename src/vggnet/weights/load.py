"""Load a weight file into a model: as it is, into another number of classes (fine-tuning), or
ready for inference with the preprocessing its source expects.

A file is a known name (``vgg16``, ``vgg16.keras``; fetched into the cache) or a path: a
torchvision-layout state dict (.pth/.pt or .safetensors), a Keras .h5, or a vggnet checkpoint.
The network is read from the file where it says (Keras, vggnet) and otherwise recognised from the
tensors' names and shapes; ``model_name`` is needed only when that fails.

A weight file must be a regular file (a FIFO or a device is refused before it is opened) within
the size bound; float16/bfloat16/float64 tensors load as the float32 the model holds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vggnet.errors import CheckpointError, VggnetError, one_line
from vggnet.models import HEADS, create_model, list_models, resolve_name

log = logging.getLogger("vggnet")


@dataclass
class WeightSource:
    """A state dict in torchvision's names, with what the file says about itself."""

    state: dict[str, torch.Tensor]
    source: str  # 'torchvision' | 'keras' | 'vggnet'
    model: str | None = None  # the network, where the file says
    meta: dict = field(default_factory=dict)  # a vggnet checkpoint's metadata
    path: Path | None = None


def _vggnet_meta(path: Path) -> dict:
    """A vggnet checkpoint's metadata; empty for another safetensors file or an unreadable one."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            return json.loads((f.metadata() or {}).get("vggnet", "{}"))
    except Exception:  # reading it as weights gives the error message
        return {}


MAX_WEIGHT_BYTES = 2 << 30
"""VGG19 in float64 is 1.15 GB: a weight file may be this large whatever ``$VGGNET_MAX_FILE_MB`` says."""


def check_weight_file(path: Path) -> None:
    """A weight file must be a regular file within the bound, checked by ``os.stat`` before any
    reader opens it: a FIFO would hang the reader, a device such as /dev/zero never ends."""
    from vggnet.files import FileRefused, max_file_bytes, stat_regular

    try:
        stat_regular(path, max(max_file_bytes(), MAX_WEIGHT_BYTES))
    except FileRefused as err:
        raise CheckpointError(f"{path}: {err}; pass a weight file") from None
    except OSError as err:
        raise CheckpointError(f"cannot read weights {path}: {err.strerror}") from None


def _torch_load_error(path: Path, err: Exception) -> CheckpointError:
    """torch's weights_only failure in one line, without its advice to load unsafely."""
    text = str(err)
    if "weights_only" not in text and "WeightsUnpickler" not in text:
        return CheckpointError(f"cannot read weights {path}: {one_line(err)}")
    found = re.search(r"GLOBAL (\S+)", text)
    what = f" (it names {found.group(1)})" if found else ""
    return CheckpointError(f"cannot read weights {path}: it is not a torch file of plain tensors{what}; vggnet reads "
                           "only plain tensors (weights_only) for safety: save model.state_dict(), or .safetensors")


def float_state(state: object, path: Path) -> dict[str, torch.Tensor]:
    """A state dict of real tensors with floating parameters as float32, as the model holds them
    (float16/bfloat16/float64 files load as torchvision and timm users expect). Tensors without
    data (the meta device) and non-float tensors where a parameter belongs are one line."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    out = {}
    for key, value in state.items():
        if value.is_meta or value.layout != torch.strided:
            kind = "no data (saved from the meta device)" if value.is_meta else f"a {value.layout} layout"
            raise CheckpointError(f"{path}: tensor {key} has {kind}; save the state_dict of a model with real weights")
        if key.endswith("num_batches_tracked"):  # batch norm's counter, an integer in every file
            out[key] = value
        elif not value.is_floating_point():
            raise CheckpointError(f"{path}: tensor {key} is {str(value.dtype).removeprefix('torch.')}, "
                                  "but weights are floating point: not a weight file")
        else:
            out[key] = value.float()
    return out


def read_weights(weights: str | os.PathLike[str]) -> WeightSource:
    """Read a known weight name (downloading it once) or a weight file."""
    from vggnet.weights.hub import fetch_weights, weight_file

    path = Path(weights)
    known = None
    if not path.exists():
        if path.suffix in (".pth", ".pt", ".h5", ".hdf5", ".safetensors", ".bin") or len(path.parts) > 1:
            raise CheckpointError(f"no weight file {path}")
        known = weight_file(str(weights))  # an unknown name fails here, listing the known ones
        path = fetch_weights(str(weights))
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass a weight file, or a run as --checkpoint")
    check_weight_file(path)
    try:
        if path.suffix in (".h5", ".hdf5"):
            from vggnet.weights.keras import keras_to_torchvision, read_keras_h5

            state, model = keras_to_torchvision(read_keras_h5(path))
            return WeightSource(state, "keras", model, path=path)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            meta = _vggnet_meta(path)
            return WeightSource(float_state(load_file(path), path), "vggnet" if meta else "torchvision",
                                meta.get("model"), meta, path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except VggnetError:
        raise
    except Exception as err:
        raise _torch_load_error(path, err) from None
    return WeightSource(float_state(state, path), "torchvision", known.model if known else None, path=path)


def infer_network(state: dict[str, torch.Tensor]) -> str:
    """The VGG network whose convolutional part has exactly these tensor names and shapes."""
    features = {k: tuple(v.shape) for k, v in state.items() if k.startswith("features.")}
    names = []
    for name in list_models("vgg*"):
        with torch.device("meta"):  # names and shapes only, nothing allocated
            candidate = create_model(name, head="linear", num_classes=1)
        if {f"features.{k}": tuple(v.shape) for k, v in candidate.features.state_dict().items()} == features:
            names.append(name)
    if len(names) != 1:
        raise CheckpointError("cannot tell which VGG network these weights are for; pass the model name")
    return names[0]


def infer_head(state: dict[str, torch.Tensor], channels: int = 512) -> dict:
    """``{'num_classes', 'head'}`` from the classifier's shapes; empty for a file without one."""
    keys = sorted((k for k in state if k.startswith("classifier.") and k.endswith(".weight")),
                  key=lambda k: int(k.split(".")[1]))
    shapes = [tuple(state[k].shape) for k in keys]
    if not shapes:
        return {}
    pool = math.isqrt(shapes[0][1] // channels)
    hidden = tuple(out for out, _ in shapes[:-1])
    head = next((h for h, spec in HEADS.items() if spec.pool == pool and spec.hidden == hidden), None)
    if head is None:
        raise CheckpointError(f"classifier shapes {shapes} match no vggnet head ({', '.join(HEADS)})")
    return {"num_classes": shapes[-1][0], "head": head}


def plan_load(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Which of ``model``'s keys load from ``state`` and which stay as initialised (works on the
    meta device). The convolutional part must match exactly. The classifier loads where its shapes
    match: a different ``num_classes`` leaves the last layer out; another head (or none in the
    file, like Keras's ``_notop``) leaves the whole classifier out."""
    name = getattr(model, "model_name", type(model).__name__)
    own = model.state_dict()
    body = [k for k in own if not k.startswith("classifier.")]
    missing = sorted(set(body) - set(state))
    unexpected = sorted(k for k in set(state) - set(own) if not k.startswith("classifier."))
    wrong = [k for k in body if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"weights do not fit {name}: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                              f"other shapes {wrong[:3]}")
    head = [k for k in own if k.startswith("classifier.")]
    fits: list[str] = []
    if {k for k in state if k.startswith("classifier.")} == set(head):
        differ = {k for k in head if state[k].shape != own[k].shape}
        if differ <= set(head[-2:]):  # at most the last layer (weight, bias) differs
            fits = [k for k in head if k not in differ]
    return [*body, *fits], [k for k in head if k not in fits]


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy into ``model`` what fits of ``state`` (see :func:`plan_load`); returns the keys left
    as the model initialised them."""
    keys, skipped = plan_load(model, state)
    model.load_state_dict({k: state[k] for k in keys}, strict=False)
    return skipped


def describe_skipped(skipped: list[str], model: nn.Module) -> str:
    """One line for the user: which layers were left at their initialisation, and why."""
    layers = sorted({k.rsplit(".", 1)[0] for k in skipped}, key=lambda k: int(k.split(".")[1]))
    classes = getattr(model, "model_kwargs", {}).get("num_classes", 1000)
    return f"{', '.join(layers)} not loaded (freshly initialised for {classes} classes): fine-tune them"


def pretrained_model(
    model_name: str | None,
    weights: str | os.PathLike[str] | WeightSource,
    num_classes: int | None = None,
    *,
    warn: bool = True,
    **kwargs: object,
) -> tuple[nn.Module, list[str]]:
    """Build ``model_name`` (None: the network the file holds) and load ``weights`` into it.

    ``num_classes`` and ``kwargs`` (``head``, ``dropout``, ...) default to the file's. Where they
    differ, everything that still fits loads and a warning names the layers left initialised
    (fine-tuning). Returns the model and the keys that were not loaded.
    """
    src = weights if isinstance(weights, WeightSource) else read_weights(weights)
    if model_name and src.model and resolve_name(model_name) != resolve_name(src.model):
        raise VggnetError(f"{src.path or weights} holds {src.model}, not {model_name}")
    name = model_name or src.model or infer_network(src.state)
    build = {**(src.meta.get("model_kwargs") or infer_head(src.state)), **kwargs}
    if num_classes is not None:
        build["num_classes"] = num_classes
    with torch.device("meta"):  # no time spent initialising weights that the file replaces
        model = create_model(name, **build)
    keys, skipped = plan_load(model, src.state)
    if not skipped:
        model.load_state_dict(src.state, assign=True)
        return model, skipped
    model = create_model(name, **build)  # some layers keep an initialisation: build for real
    model.load_state_dict({k: src.state[k] for k in keys}, strict=False)
    if warn:
        log.warning("%s: %s", src.path.name if src.path else weights, describe_skipped(skipped, model))
    return model, skipped


def model_for_inference(
    weights: str | os.PathLike[str], model_name: str | None = None
) -> tuple[nn.Module, dict]:
    """A model in eval mode and the metadata that says how to feed it (classes, mean/std, channel
    order, sizes), from a vggnet checkpoint or run dir, a known weight name, a weight file, or an
    ONNX file vggnet wrote (run by onnxruntime: an exported or an int8 quantized model)."""
    from vggnet.data.imagenet import imagenet_classes
    from vggnet.runs import model_from_checkpoint
    from vggnet.weights.hub import KNOWN_WEIGHTS, PREPROCESSING, fetch_weights

    path = Path(weights)
    known = KNOWN_WEIGHTS.get(str(weights))
    if known is not None and known.packaged and not path.exists():  # weights vggnet trained and ships
        path = fetch_weights(known.name)  # checked (size, sha256); a checkpoint, read below as one
    if path.suffix == ".onnx" and path.exists():  # a file `vggnet export` or `vggnet quantize` wrote
        from vggnet.weights.onnx_model import load_onnx_model

        return load_onnx_model(path)
    if path.suffix == ".safetensors" and path.exists():
        check_weight_file(path)  # a FIFO or a device named *.safetensors: one line, never a hang
    if path.is_dir() or (path.suffix == ".safetensors" and path.is_file() and _vggnet_meta(path)):
        return model_from_checkpoint(path)  # a run or a checkpoint: it carries its own metadata
    src = read_weights(weights)
    model, skipped = pretrained_model(model_name, src, warn=False)
    if skipped:
        raise CheckpointError(f"{weights} has no classifier (a feature-extractor file such as Keras's _notop); "
                              "it cannot classify images")
    kwargs = model.model_kwargs
    classes = kwargs.get("num_classes", 1000)
    size = 32 * HEADS[kwargs.get("head", "imagenet")].pool  # the size whose last map fills the head: 224, 32
    meta = {"model": model.model_name, "model_kwargs": kwargs,
            "classes": imagenet_classes() if classes == 1000 else [str(i) for i in range(classes)],
            **PREPROCESSING[src.source], "image_size": size, "test_scale": 256 if size == 224 else size,
            "in_memory": size <= 64, "weights": str(weights), "source": src.source}
    return model.eval(), meta


def save_for_inference(
    weights: str | os.PathLike[str], out: str | os.PathLike[str], model_name: str | None = None
) -> Path:
    """Write ``weights`` as a vggnet .safetensors checkpoint (network, classes and preprocessing in
    its metadata), atomically; evaluate, predict and export then take it like a trained run."""
    from vggnet.atomic import atomic_path
    from vggnet.runs import save_weights

    out = Path(out)
    if out.suffix != ".safetensors":
        raise VggnetError(f"{out}: the converted file is safetensors; name it *.safetensors")
    if Path(weights).suffix == ".onnx":
        raise VggnetError(f"{weights} is an ONNX file: it is run as it is (predict, evaluate), not converted back")
    model, meta = model_for_inference(weights, model_name)
    with atomic_path(out) as tmp:
        save_weights(tmp, model, meta)
    return out
