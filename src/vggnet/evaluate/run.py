"""Score a trained checkpoint on a dataset split and write metrics.json plus the report."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from vggnet.atomic import atomic_write_text
from vggnet.data.arrays import ImageArrays
from vggnet.data.cifar import is_cifar_source
from vggnet.data.datasets import SAMPLE_IMAGES, DataSplits, held_key, load_data, names_of, sample_archive, split_off
from vggnet.data.loader import make_batches
from vggnet.data.sources import printable
from vggnet.data.split_record import data_identity, held_out_bytes, held_out_pixels, read_split, run_dir_of
from vggnet.data.transforms import eval_transform
from vggnet.device import resolve_device
from vggnet.errors import CheckpointError, DataError, VggnetError
from vggnet.evaluate.metrics import metrics_json, predict, score
from vggnet.evaluate.protocol import PROTOCOLS
from vggnet.evaluate.protocol_run import check_scales, default_scales, protocol_predictions
from vggnet.evaluate.report import require_report_libraries, write_report
from vggnet.runs import RunDir, model_from_checkpoint

log = logging.getLogger("vggnet")
SPLITS = ("val", "test", "all")


def held_out_record(checkpoints: Sequence[str | os.PathLike[str]]) -> dict | None:
    """The first run's split record; for an ensemble its held-out images are those that every
    member held out (an image one member trained on is no test of the ensemble)."""
    records = [read_split(run) if (run := run_dir_of(c)) is not None else None for c in checkpoints]
    first = records[0]
    if first is None or first["held_out"] is None or len(records) == 1:
        return first
    held = {held_key(n) for n in first["held_out"]}
    for other in records[1:]:
        if other is None or other["held_out"] is None:
            raise VggnetError("an ensemble member has no split.json beside it: which images it trained on is "
                              "unknown, so no held-out score can be given (--split all scores every image)")
        held &= {held_key(n) for n in other["held_out"]}
    return {**first, "held_out": sorted(held), "held_out_bytes": None, "held_out_pixels": None, "ensemble": True}


def _prepared_pair(trained_on: str | None, data: str, splits: DataSplits) -> bool:
    """The run's data and ``data`` are a dataset and the folder ``vggnet prepare`` made of it (either
    way round): the same images under the same names, re-encoded."""
    from vggnet.data.shard_manifest import prepared_source

    return trained_on is not None and (splits.prepared_from == trained_on or prepared_source(trained_on) == data)


class NothingHeldOut(VggnetError):
    """The run trained on every image of the data it is asked to score (val_fraction=0)."""


def _nothing_held_out(checkpoint: object, data: object, instead: str, record: dict | None) -> VggnetError:
    if record is not None and record.get("ensemble"):
        return VggnetError(f"the members of the ensemble held out no image of {data} in common: score them on "
                           f"{instead}, or --split all for every image (their training images included)")
    return NothingHeldOut(f"{checkpoint} trained on every image of {data} (val_fraction=0) and held none out: "
                          f"score it on {instead}, or --split all for its accuracy on its own training images")


def load_split(checkpoint: str | os.PathLike[str], meta: dict, data: str | os.PathLike[str], split: str | None,
                progress: bool, strict: bool, record: dict | None) -> tuple[DataSplits, str, str]:
    """The images to score, the split's name and what they are in words. A dataset's own splits
    are used as they are. On a flat folder the run trained on (the same path, or any folder holding
    every image it held out) 'val' is exactly those held-out images (its ``split.json``) and 'all'
    every image, said so; a flat folder of other data is scored whole."""
    if split is not None and split not in SPLITS:
        raise VggnetError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    held = record["held_out"] if record else None
    who = "every member" if record and record.get("ensemble") else "the run"
    trained_on = record["data"] if record else data_identity(meta["data"]) if meta.get("data") else None
    same_path = trained_on is not None and data_identity(data) == trained_on  # pretrained weights: never
    args = {"val_fraction": meta.get("val_fraction", 0.1), "seed": meta.get("seed", 0), "progress": progress,
            "strict": strict}
    splits = load_data(data, whole=True, held_out=held if same_path else None, **args)
    if splits.val is None:  # test/ alone (or a CIFAR-10 folder of its test batch alone)
        if split not in (None, "test"):
            raise VggnetError(f"{data} holds a test split alone: score it with --split test")
        return splits, "test", "the dataset's own test"
    if not splits.flat:
        return _own_split(checkpoint, data, splits, split, same_path, who, record)
    if splits.test is not None and (split == "test" or (split is None and not same_path)):
        return splits, "test", "the dataset's own test"  # train/ and test/, no val/: test is the one to score
    pool = splits.val  # no val of its own: every image of its pool
    keys = {held_key(n) for n in held or ()}
    found = [n for n in names_of(pool) if held_key(n) in keys]
    own = same_path or (bool(held) and len(found) == len(keys)  # a copy of the run's data, moved or wrapped,
                        and (record.get("held_out_bytes") == held_out_bytes(splits, found)  # or prepared from it
                             or _prepared_pair(trained_on, data_identity(data), splits)))
    nothing_held = held is not None and not held  # the run trained on every image (val_fraction=0)
    if nothing_held and not own:  # its shards, or a copy (the same classes and image count)
        own = _prepared_pair(trained_on, data_identity(data), splits) or (
            splits.classes == record.get("classes") and len(pool) == record.get("train_images"))
    if split == "all" or (split is None and not own):
        where = f"every image of {data}" if splits.test is None else f"every image of {data}'s training folder"
        return splits, "all", where + (", the run's training images included" if own else "")
    if not own:
        raise VggnetError(f"{data} has no {split} split of its own and " + (
            f"{checkpoint} did not train on it" if not meta.get("pretrained") else
            f"{meta.get('name', checkpoint)} holds no record of images held out of it") +
            ": --split all scores all its images")
    if nothing_held:
        raise _nothing_held_out(checkpoint, data, "other data (a test set)", record)
    if split == "test":
        raise VggnetError(f"{data} has no test split: the run held out a val split (--split val)")
    if record is None:
        log.warning("no record of the held-out images beside %s (split.json in its run folder): val is the seeded "
                    "split again, exact only if %s is unchanged since training", checkpoint, data)
    splits.train, splits.val = split_off(pool, args["val_fraction"], args["seed"], held)
    return splits, "val", f"the {len(splits.val)} images {who} held out"


def _own_split(checkpoint: object, data: object, splits: DataSplits, split: str | None, same_path: bool, who: str,
               record: dict | None) -> tuple[DataSplits, str, str]:
    """A dataset with splits of its own. CIFAR-10's val is a seeded part of its training images:
    held out only by a run that trained on this very data; for any other network it is training
    data, so the default there is the test split and an explicit val is refused."""
    if split == "all":
        raise VggnetError(f"{data} has its own splits: evaluate one of them with --split val or --split test")
    held_here = splits.held_out is not None and (same_path or (  # this data, or a copy of it elsewhere
        record is not None and record.get("held_out_pixels") is not None
        and record["held_out_pixels"] == held_out_pixels(splits.val)))
    part_of_train = splits.name == "cifar10" and not held_here
    if part_of_train and split == "val":
        raise VggnetError(f"the val split of {data} is part of CIFAR-10's training images, held out only by a run "
                          "trained on this very data: score --split test")
    split = split or ("test" if part_of_train else "val")
    mine = held_here and split == "val"
    if mine and not len(splits.val):
        raise _nothing_held_out(checkpoint, data, "--split test", record)
    return splits, split, f"the {len(splits.val)} images {who} held out" if mine else f"the dataset's own {split}"


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str | None = None,
    protocol: str = "center",
    scales: Sequence[int] | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    workers: int = 4,
    progress: bool = True,
    strict: bool = False,
    weights: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
) -> dict:
    """Evaluate ``checkpoint`` (or an ensemble of several) on ``split`` of ``data``; or, with
    ``checkpoint`` None, pretrained ``weights`` (a known name or a weight file; ``model_name``
    where the file does not say), whose classes must be the data's: for ImageNet weights, class
    folders named by the sorted WordNet ids (``train/n01440764/...``) are the same 1000 classes.

    ``split``: 'val', 'test' or 'all'; by default, on the data the (first) run trained on, val:
    exactly the images that run held out (its ``split.json``); on other data its test split where
    it has one (a CIFAR-10 release, a test/ folder), else a val split of its own, else 'all'.
    ``metrics['split']`` and ``['images_are']`` say which.
    ``protocol`` is one of :data:`~vggnet.evaluate.protocol.PROTOCOLS`, at test scales ``scales``
    (default: Q, or the paper's three for dense and multi-crop).
    """
    require_report_libraries()
    if (checkpoint is None) == (weights is None):
        raise VggnetError("evaluate needs a checkpoint or pretrained weights (one of them)")
    paths = [weights] if checkpoint is None else \
        [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    if protocol not in PROTOCOLS:
        raise VggnetError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if split is not None and split not in SPLITS:
        raise VggnetError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    models = [_load_model(p) for p in paths] if weights is None else [_pretrained(weights, model_name)]
    if any("onnx" in meta for _, meta in models) and (protocol != "center" or scales or len(models) > 1):
        raise VggnetError("an ONNX model is scored alone, with --protocol center at its own scale (the other "
                          "protocols and ensembles rebuild the network in PyTorch); pass its checkpoint for them")
    for _, meta in models:  # at least each checkpoint's crop (the dense protocol alone takes whole images)
        check_scales(scales or (), meta.get("image_size") if protocol != "dense" else None)
        check_shipped(meta, data, split)
    device = resolve_device(device)
    with RunDir(Path(out), "evaluate").claim():  # its own folder: never a training run's, never the user's files
        return _evaluate(paths, models, data, Path(out), split, protocol, scales, batch_size, device, workers,
                         progress, strict)


def check_shipped(meta: dict, data: str | os.PathLike[str], split: str | None) -> None:
    """Weights vggnet trained and ships say what they trained on (``trained_on``). The embedded
    sample is (mostly) part of it, so scoring the sample is refused; any other data is scored,
    with one line saying that its images must be unseen for the score to mean anything."""
    trained_on = meta.get("trained_on")
    if not trained_on:
        return
    name = meta.get("name", "these weights")
    if meta.get("trained_on_sample") and is_sample(data):  # none of its splits is a test of these weights
        raise NothingHeldOut(f"{name} trained on {trained_on}, among them {sample_seen(meta)}: score it on "
                             "images it has not seen (CIFAR-10's test set: --data cifar10 --split test)")
    if meta.get("trained_on_cifar10") and split == "val" and (
            data_identity(data) == "cifar10" or is_cifar_source(Path(data))):
        raise NothingHeldOut(f"{name} trained on {trained_on}: the val split of CIFAR-10 is among its training "
                             "images; score it with --split test (the default)")
    record = shipped_record(meta)  # checked here, before any output folder is made
    kept = f"; the {len(record['held_out']):,} it held out are named in the file and scored as val on a copy of " \
        "that data" if record else ""
    log.warning("%s trained on %s: a score on any of those images is a training score, not a test%s", name,
                trained_on, kept)


def sample_seen(meta: dict) -> str:
    """How much of the embedded sample shipped weights trained on, as their metadata records it:
    a count where their run held some of it out (``sample_images_trained_on``), else all of it."""
    seen = meta.get("sample_images_trained_on")
    return f"{seen:,} of the sample's {SAMPLE_IMAGES:,} images" if seen else "every image of the sample"


def is_sample(data: str | os.PathLike[str]) -> bool:
    """The embedded sample: by name, by path, or a copy of its archive (same size and sha256)."""
    from vggnet.data.download import file_digest

    sample, path = sample_archive(), Path(data)
    if data_identity(data) in ("sample", str(sample.resolve())):
        return True
    return path.is_file() and path.stat().st_size == sample.stat().st_size and \
        file_digest(path, "sha256") == file_digest(sample, "sha256")


def _load_model(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict]:
    """A checkpoint's model, or an ONNX file vggnet wrote (an int8 one from `vggnet quantize`)."""
    if Path(path).suffix == ".onnx":
        from vggnet.weights.onnx_model import load_onnx_model

        return load_onnx_model(path)
    return model_from_checkpoint(path)


def _pretrained(weights: str | os.PathLike[str], model_name: str | None) -> tuple[torch.nn.Module, dict]:
    """Pretrained weights as evaluate scores them: no run, so no held-out record and no data of its own."""
    from vggnet.weights.load import model_for_inference

    model, meta = model_for_inference(weights, model_name)
    return model, {**meta, "pretrained": True}


def shipped_record(meta: dict) -> dict | None:
    """The held-out record weights vggnet shipped carry (their run's split.json, less its path): on a
    copy of the data they trained on, val is exactly the images their run held out."""
    record = meta.get("held_out_record")
    if record is None:
        return None
    held = record.get("held_out") if isinstance(record, dict) else None
    if not (isinstance(held, list) and all(isinstance(n, str) for n in held)
            and isinstance(record.get("held_out_bytes"), int | None)):
        raise CheckpointError(f"{meta.get('name', 'the weights')}: their held_out_record is not a list of image "
                              "names with their total size; rewrite the file with tools/ship_weights.py")
    return {**record, "data": None}  # never this machine's path: a copy is recognised by names and size


def same_classes(data_classes: list[str], meta: dict) -> bool:
    """The data's classes are the model's outputs, in order: by name, or, for the 1000 ImageNet
    outputs (whose names are readable labels), as the sorted WordNet-id folders of an ImageNet tree."""
    from vggnet.data.imagenet import imagenet_classes, imagenet_wnids

    if data_classes == meta["classes"]:
        return True
    return meta["classes"] == imagenet_classes() and data_classes == imagenet_wnids()


def class_mismatch(data: object, classes: list[str], meta: dict) -> DataError:
    """What differs between the data's classes and the model's, by name: a folder missing, one
    it does not know, or the same names in another order."""
    theirs = "weights'" if meta.get("pretrained") else "checkpoint's"
    if len(meta["classes"]) == 1000:
        return DataError(f"{data} has {len(classes)} classes, not the {theirs} 1000 ImageNet classes: ImageNet "
                         "weights score a tree whose class folders are the 1000 WordNet ids (n01440764 ...)")
    missing = [c for c in meta["classes"] if c not in classes]
    unknown = [c for c in classes if c not in meta["classes"]]

    def names(found: list[str]) -> str:
        return ", ".join(map(printable, found[:5])) + (f" and {len(found) - 5} more" if len(found) > 5 else "")

    if not missing and not unknown:
        return DataError(f"{data} has the {theirs} classes in another order: their indices would not match")
    return DataError(
        f"{data}'s class folders are not the {theirs} {len(meta['classes'])} classes"
        + (f"; missing: {names(missing)}" if missing else "") + (f"; not known to it: {names(unknown)}" if unknown
                                                                  else "")
        + ": one folder per class, named exactly as its classes"
        + (f" ({', '.join(map(printable, meta['classes']))})" if len(meta["classes"]) <= 20 else ""))


def _evaluate(paths: list, models: list, data: str | os.PathLike[str], out: Path, split: str | None, protocol: str,
              scales: Sequence[int] | None, batch_size: int, device: torch.device, workers: int, progress: bool,
              strict: bool) -> dict:
    """Score the models on the split and write the metrics and the report into ``out``."""
    if not models:
        raise VggnetError("evaluate needs at least one checkpoint")
    model, meta = models[0]
    if any(m["classes"] != meta["classes"] for _, m in models):
        raise DataError("the checkpoints of an ensemble must share their classes")
    record = shipped_record(meta) if meta.get("pretrained") else held_out_record(paths)
    splits, split, images_are = load_split(paths[0], meta, data, split, progress, strict, record)
    if not same_classes(splits.classes, meta):
        raise class_mismatch(data, splits.classes, meta)
    images = splits.val if split == "all" else splits.split(split)
    if not len(images):
        raise DataError(f"no images to score in {data} ({images_are}): none of them is there any more")
    default = default_scales(meta, protocol, splits.in_memory)
    scales = tuple(scales or default)
    if len(models) == 1 and protocol == "center" and scales == default:
        model.to(device, memory_format=torch.channels_last)  # the fast path: crops cut by the loader
        size = meta["image_size"]
        batches = make_batches(images, batch_size, train=False, device=device, crop=size,
                               scale=(scales[0], scales[0]), workers=workers, strict=strict)
        transform = eval_transform(meta, splits.in_memory)
        result = predict(model, batches, lambda x: transform(x, train=False), dtype=None)
    else:
        result = protocol_predictions(models, images, protocol, scales, device=device, progress=progress,
                                      strict=strict)
    metrics = {"split": split, "images_are": images_are, "data": str(data),
               "checkpoint": [str(p) for p in paths] if len(paths) > 1 else str(paths[0]), "protocol": protocol,
               "scales": list(scales), **score(result, splits.classes)}
    if isinstance(images, ImageArrays) and images.skipped:  # dropped when the images were read into memory
        metrics["skipped"] += len(images.skipped)
    atomic_write_text(out / "metrics.json", metrics_json(metrics))
    write_report(out, metrics, [], title=f"{meta['model']} evaluated on {data} ({split})")
    return metrics
