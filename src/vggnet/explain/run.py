"""``vggnet explain`` and ``vggnet show`` as functions: load a model, read images as it reads
them, compute, and write the pictures into one output folder.

The layout of ``out``: one folder per image (its file stem; ``stem-2`` where two images share
one), holding ``summary.png`` and ``rankR-classK-METHOD.png`` per class explained; and
``explain.json`` listing each image's classes, probabilities and files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from vggnet.atomic import atomic_write_text
from vggnet.errors import VggnetError
from vggnet.evaluate.predict import load_image
from vggnet.explain import render
from vggnet.explain.gradients import class_maps, layer_path, out_of_place, recording, resolve_layer

PathLike = str | os.PathLike[str]
log = logging.getLogger("vggnet")


def load_model(weights: PathLike, model_name: str | None = None) -> tuple[torch.nn.Module, dict]:
    """A model in eval mode, fp32, and its metadata (classes, preprocessing, image size)."""
    from vggnet.weights.load import model_for_inference

    model, meta = model_for_inference(weights, model_name)
    if not isinstance(model, torch.nn.Module) or not any(True for _ in model.parameters()):
        raise VggnetError(f"{weights} runs outside PyTorch (ONNX): the pictures need the PyTorch model; pass the "
                          "weights or checkpoint it was exported from")
    return model.float().eval(), meta


def model_input(path: PathLike, meta: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(the uint8 image the net sees, (3, H, W); that image normalised as a batch of one)."""
    from vggnet.data.transforms import eval_transform

    image = load_image(path, meta)
    x = eval_transform(meta, in_memory=True)(image.unsqueeze(0), train=False)
    return image, x.contiguous()


def check_classes(meta: dict, wanted: Sequence[str]) -> list[int]:
    """``--class`` values (names or decimal indices) as class indices, each once, in order."""
    classes, out = meta["classes"], []
    for w in wanted:
        if w in classes:
            index = classes.index(w)
        elif w.isascii() and w.isdigit() and int(w) < len(classes):
            index = int(w)
        else:
            raise VggnetError(f"--class {w!r} is neither a class name nor an index below {len(classes)} "
                              f"(e.g. {classes[0]!r} or 0)")
        if index not in out:
            out.append(index)
    return out


def pick_classes(logits: torch.Tensor, meta: dict, wanted: Sequence[str] = (), top: int = 3) -> list[int]:
    """Class indices: those named in ``wanted`` (an index or a label), else the ``top`` most probable."""
    if wanted:
        return check_classes(meta, wanted)
    return logits.topk(min(top, logits.numel())).indices.tolist()


def image_folders(images: Sequence[PathLike], out: Path) -> list[Path]:
    """One folder in ``out`` per image, named by its file stem; where stems repeat, ``stem~2`` ...
    chosen to match no other image's stem. A stem that is not a plain name ('.', '..') becomes 'image'."""
    stems = [Path(p).stem if Path(p).stem not in ("", ".", "..") else "image" for p in images]
    taken, folders = set(stems), []
    seen: set[str] = set()
    for stem in stems:
        name, n = stem, 1
        while name in seen or (name != stem and name in taken):
            n += 1
            name = f"{stem}~{n}"
        seen.add(name)
        folders.append(out / name)
    return folders


def _targets(folder: Path, picked: list[int]) -> tuple[Path, list[list[Path]]]:
    """The files one image's pictures go to (the summary; per rank, one per method), checked before
    any is written: never through a link, never over something that is not a regular file."""
    from vggnet.atomic import refuse_non_regular

    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise VggnetError(f"{folder} is {'a symbolic link' if folder.is_symlink() else 'a file'}; vggnet writes "
                          "its pictures only into folders of its own: choose another --out")
    per_rank = [[folder / f"rank{rank}-class{k}-{method}.png" for method in render.METHODS]
                for rank, k in enumerate(picked, start=1)]
    for path in [folder / "summary.png", *(p for paths in per_rank for p in paths)]:
        refuse_non_regular(path)
    return folder / "summary.png", per_rank


def _explain_one(model: torch.nn.Module, meta: dict, path: PathLike, folder: Path, layer: str,
                 classes: Sequence[str], top: int, device: str) -> dict:
    image, x = model_input(path, meta)
    x = x.to(device)
    with torch.no_grad():
        logits = model(x)[0].float()
    picked = pick_classes(logits, meta, classes, top)
    summary, per_rank = _targets(folder, picked)
    maps = class_maps(model, x, picked, layer, std=meta["std"])
    if meta.get("channels") == "BGR":  # the input gradients are in the weights' channel order: show RGB
        for m in maps:
            m.guided, m.guided_gradcam = m.guided.flip(0), m.guided_gradcam.flip(0)
    names = meta["classes"]
    files = [str(render.summary_figure(image, maps, names, layer, Path(path).name, summary))]
    for m, targets in zip(maps, per_rank, strict=True):
        for method, target in zip(render.METHODS, targets, strict=True):
            files.append(str(render.method_figure(image, m, method, names, layer, target)))
    return {"image": str(path), "folder": str(folder), "files": files,
            "classes": [{"index": m.index, "label": names[m.index], "probability": m.probability} for m in maps]}


def explain_images(weights: PathLike, images: Sequence[PathLike], out: PathLike, *, layer: str | None = None,
                   classes: Sequence[str] = (), top: int = 3, model_name: str | None = None,
                   device: str = "cpu", progress: bool = False) -> dict:
    """Grad-CAM, Grad-CAM++, saliency, guided backprop (each a PNG over the image) and a summary
    figure for each image, for the named ``classes`` or the ``top`` most probable. An unreadable
    image is reported in ``explain.json`` and skipped; none readable is an error."""
    from vggnet.errors import DataError
    from vggnet.progress import progress_bar

    out = Path(out)
    images = [p for p in images if not Path(p).resolve().is_relative_to(out.resolve())]  # not our own PNGs
    if not images:
        raise DataError(f"no images to explain outside --out {out}")
    model, meta = load_model(weights, model_name)
    layer_name, _ = resolve_layer(model, layer)  # a bad layer or class stops here, before any image is read
    check_classes(meta, classes)
    model.to(device)
    report: dict = {"weights": str(weights), "layer": layer_name, "images": []}
    with progress_bar("explain", len(images), enabled=progress and len(images) > 1, unit="images") as bar:
        for path, folder in zip(images, image_folders(images, out), strict=True):
            try:
                report["images"].append(_explain_one(model, meta, path, folder, layer_name, classes, top, device))
            except DataError as err:
                if len(images) > 1:  # one image alone: its error is the command's, said once below
                    log.warning("%s", err)
                report["images"].append({"image": str(path), "error": str(err)})
            bar.advance()
    if all("error" in item for item in report["images"]):
        first = report["images"][0]
        raise DataError(first["error"] if len(images) == 1 else
                        f"none of the {len(images)} images could be read; the first: {first['error']}")
    atomic_write_text(out / "explain.json", json.dumps(report, indent=2) + "\n")
    return report


def show_filters(weights: PathLike, out: PathLike, layer: str | None = None, model_name: str | None = None) -> Path:
    """The filters of the first convolution (or ``layer``, a convolution) as a grid of images."""
    model, meta = load_model(weights, model_name)
    convs = [(n, p) for n, p in getattr(model, "layer_names", {}).items() if n.startswith("conv")]
    name = layer or (convs[0][0] if convs else None)
    if name is None:  # a network without paper names: its first convolution, by module path
        name, first = next((n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d))
        weight = first.weight
    else:
        _, module = resolve_layer(model, name)
        if not isinstance(module, torch.nn.Conv2d):
            example = convs[0][0] if convs else "conv1_1"
            raise VggnetError(f"{name} is not a convolution; pass a conv layer (e.g. {example})")
        weight = module.weight
    if weight.shape[1] not in (1, 3):
        weight = weight[:, :1]  # deeper filters see many channels: draw the first input channel's slice
        name += " (input channel 0)"
    title = (f"{getattr(model, 'model_name', '')} {name}: {weight.shape[0]} filters of "
             f"{weight.shape[-2]}x{weight.shape[-1]}, from {Path(str(weights)).name}")
    return render.filter_figure(weight, title, Path(out) / f"filters-{name.split()[0]}.png",
                                bgr=meta.get("channels") == "BGR")


def show_activations(weights: PathLike, image_path: PathLike, out: PathLike, layer: str,
                     count: int = 32, model_name: str | None = None) -> Path:
    """The ``count`` most active channels of ``layer`` for one image, beside the image."""
    model, meta = load_model(weights, model_name)
    name, module = resolve_layer(model, layer)
    image, x = model_input(image_path, meta)
    with torch.no_grad(), out_of_place(model), recording(module) as seen:
        model(x)
    act = seen[0][0].float()
    order = act.mean(dim=(1, 2)).argsort(descending=True)[:count].tolist()
    title = (f"{name} of {Path(str(image_path)).name}: {len(order)} of {act.shape[0]} channels, most active first "
             f"({act.shape[1]}x{act.shape[2]} each)")
    return render.activation_figure(image, act, order, title, Path(out) / f"activations-{name}.png")


def unit_field(model: torch.nn.Module, layer: str, size: tuple[int, int], unit: tuple[int, int] | None
               ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(rows, cols, unit): the input pixels (inclusive) unit (row, col) of ``layer`` sees at input
    ``size`` (H, W), from the trace's exact intervals; ``unit`` None: the centre unit."""
    from vggnet.analysis.trace import trace

    h, w = size
    _, path = layer_path(model, layer)
    key = {p: n for n, p in getattr(model, "layer_names", {}).items()}.get(path, path)  # the trace's row name
    along_h = trace(model, (h, w)).row_fields
    # the net is symmetric in H and W: columns are the rows of the transposed input (the same, if square)
    along_w = along_h if h == w else trace(model, (w, h)).row_fields
    if key not in along_h:
        raise VggnetError(f"{layer} has no receptive field in the trace; pass a layer of the convolutional part")
    fh, fw = along_h[key], along_w[key]
    rows, cols = len(fh.spans), len(fw.spans)
    r, c = unit if unit is not None else (rows // 2, cols // 2)
    if not (0 <= r < rows and 0 <= c < cols):
        raise VggnetError(f"unit ({r}, {c}) is outside {layer}'s {rows} x {cols} map; rows 0..{rows - 1}, "
                          f"columns 0..{cols - 1}")
    return fh.span(r), fw.span(c), (r, c)


def show_field(weights: PathLike, image_path: PathLike, out: PathLike, layer: str | None = None,
               unit: tuple[int, int] | None = None, model_name: str | None = None) -> Path:
    """The receptive field of one unit of ``layer`` (default: the last convolution) drawn on the image."""
    model, meta = load_model(weights, model_name)
    name, _ = layer_path(model, layer)
    image, _ = model_input(image_path, meta)
    rows, cols, (r, c) = unit_field(model, name, tuple(image.shape[-2:]), unit)
    size = rows[1] - rows[0] + 1
    title = (f"{name} unit ({r}, {c}) sees rows {rows[0]}..{rows[1]}, columns {cols[0]}..{cols[1]}\n"
             f"receptive field {size} px on a {image.shape[-1]}x{image.shape[-2]} input (dashed: into the padding)")
    return render.field_figure(image, rows, cols, (r, c), title, Path(out) / f"field-{name}-{r}-{c}.png")
