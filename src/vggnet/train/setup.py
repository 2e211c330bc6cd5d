"""Everything a run needs before its first epoch, each step checked before the next: the options,
the data and its split (kept on resume), the statistics the inputs are normalised with, and the
weights a new run starts from."""

from __future__ import annotations

import logging
import os

import torch

from vggnet.data.arrays import ImageArrays, channel_mean_std
from vggnet.data.datasets import DataSplits, labels_of, load_data, take_balanced
from vggnet.data.sources import printable
from vggnet.data.split_record import describe_change, make_record
from vggnet.data.stats import stream_stats
from vggnet.data.transforms import pca_basis
from vggnet.errors import CheckpointError, DataError, VggnetError
from vggnet.models import resolve_name
from vggnet.models.registry import recipe_keywords
from vggnet.runs import RunDir, load_checkpoint, model_from_checkpoint
from vggnet.train.distributed import DistInfo, local_batch_size
from vggnet.train.recipes import Recipe, check_recipe
from vggnet.weights.load import WeightSource, read_weights

log = logging.getLogger("vggnet")


def set_determinism(seed: int, deterministic: bool) -> None:
    """Seed every generator; ``deterministic`` also forbids non-deterministic kernels."""
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


def model_kwargs_for(name: str, recipe: Recipe, num_classes: int, size: int) -> dict:
    """The model's keyword arguments: its classes, and the recipe fields its registry entry
    declares (a VGG's head, dropout, initialisation and width; ``head="auto"`` is the paper's head
    from 224 px, the small one below)."""
    keywords = recipe_keywords(name)
    head = recipe.head if recipe.head != "auto" else ("imagenet" if size >= 224 else "small")
    fields = {"head": head, "dropout": recipe.dropout, "init": recipe.init, "width": recipe.width}
    return {"num_classes": num_classes, **{k: fields[k] for k in keywords}}


CONSTANT_STD = 1e-3  # on the [0, 1] scale: a channel this flat carries no signal to normalise


def data_stats(data: DataSplits, recipe: Recipe, size: int) -> dict:
    """Mean, std and PCA colour basis of the training images (a sample of them when streamed)."""
    if isinstance(data.train, ImageArrays):
        mean, std = channel_mean_std(data.train.images)
        eigval, eigvec = pca_basis(data.train.images)
    else:
        mean, std, eigval, eigvec = stream_stats(data.train, recipe.test_scale, size)
    flat = [name for name, s in zip("RGB", std, strict=True) if s < CONSTANT_STD]
    if flat and recipe.normalize_std:  # dividing by ~0 would make every input inf or NaN
        log.warning("channel %s is constant in the training images (std %.1g): it is centred, not divided by "
                    "its std", "/".join(flat), min(std))
        std = [1.0 if s < CONSTANT_STD else s for s in std]
    # without std division the input is (pixel - mean) on the recipe's pixel range: dividing by
    # 1/255 puts it on [0, 255], the paper's scale, 255x the signal that N(0, 0.01) weights see
    range_std = [1.0 / recipe.pixel_range] * 3
    return {"mean": mean, "std": std if recipe.normalize_std else range_std,
            "pca_eigval": eigval.tolist(), "pca_eigvec": eigvec.tolist()}


def read_starts(recipe: Recipe) -> tuple[WeightSource | None, torch.nn.Module | None]:
    """What a new run starts from besides random weights, read (and checked) before the data: the
    pretrained weights to fine-tune, and the shallower trained net to initialise from."""
    pretrained = read_weights(recipe.weights) if recipe.weights else None
    shallower = model_from_checkpoint(recipe.init_from)[0] if recipe.init_from else None
    return pretrained, shallower


def check_start_data(src: WeightSource, data: object, recipe: Recipe) -> None:
    """Weights vggnet trained say what they trained on: fine-tuned on the embedded sample (part
    of it), the sample's own val split would score images they already saw, so that is refused; on other
    data one line says what a val score on those images would be."""
    from vggnet.evaluate.run import is_sample, sample_seen

    trained_on = src.meta.get("trained_on")
    if not trained_on:
        return
    name = src.meta.get("name", recipe.weights)
    if src.meta.get("trained_on_sample") and is_sample(data):  # its val/ comes with it, whatever val_fraction
        raise VggnetError(f"{name} trained on {trained_on}, among them {sample_seen(src.meta)}: the sample's val "
                          "split would score images the weights already saw; fine-tune on other data")
    log.warning("%s trained on %s: a val score on any of those images is not a held-out score", name, trained_on)


def load_weights(model: torch.nn.Module, src: WeightSource, stats: dict) -> dict:
    """Fine-tuning: load pretrained weights (all that fit; the user is told what did not) and
    feed the images as those weights expect (their channel order, mean and std)."""
    from vggnet.weights.hub import PREPROCESSING
    from vggnet.weights.load import describe_skipped, load_pretrained

    skipped = load_pretrained(model, src.state)
    if skipped:
        log.warning("%s: %s", src.path, describe_skipped(skipped, model))
    pre = src.meta if src.source == "vggnet" else PREPROCESSING[src.source]
    return {**stats, "mean": list(pre["mean"]), "std": list(pre["std"]), "channels": pre.get("channels", "RGB")}


def load_splits(data: str | os.PathLike[str], recipe: Recipe, seed: int, strict: bool, progress: bool,
                 record: dict | None, classes: list[str] | None) -> tuple[DataSplits, dict]:
    """The run's data, and the record of its split (before any subset) for ``split.json``. On
    resume (``classes``: the checkpoint's) the recorded held-out images stay held out and what
    changed is said; changed classes, or data that cannot train a classifier, stop here."""
    if classes is not None and record is None:
        log.warning("the run has no split.json: its held-out images are the seeded split again, exact only if "
                    "%s is unchanged since the run started", data)
    held = record["held_out"] if record else None
    splits = load_data(data, val_fraction=recipe.val_fraction, seed=seed, progress=progress, strict=strict,
                       held_out=held)
    if splits.train is None or splits.val is None or not len(splits.train):
        raise DataError(f"dataset {data} needs images to train on and a validation split")
    if len(splits.classes) < 2:
        raise DataError(f"{data} has one class ({splits.classes[0]}): a classifier needs at least two class "
                        "folders (a folder of images per class)")
    if classes is not None and splits.classes != classes:
        gone, new = sorted(set(classes) - set(splits.classes)), sorted(set(splits.classes) - set(classes))
        raise DataError(f"the classes of {data} changed since the run started (gone: {', '.join(gone) or '-'}; "
                        f"new: {', '.join(new) or '-'}): restore them, or start a new run")
    if record is not None and (change := describe_change(record, splits)):
        log.warning("%s changed since the run started (%s); the recorded held-out images that remain stay held "
                    "out", data, change)
    if not len(splits.val) and recipe.val_fraction > 0:
        raise DataError(f"no validation images left in {data}: the run's held-out images are gone")
    if not len(splits.val):  # val_fraction=0 on data with no val split of its own
        if recipe.schedule == "plateau":
            raise DataError(f"the plateau schedule lowers the rate when validation accuracy stalls, and with "
                            f"val_fraction=0 {data} holds no image out: use schedule=onecycle or cosine")
        log.warning("val_fraction=0: every image of %s trains and none is held out, so the run reports no "
                    "accuracy; score it with vggnet evaluate --checkpoint RUN --data TEST-DATA --out DIR", data)
    else:
        val_counts = torch.bincount(labels_of(splits.val), minlength=len(splits.classes)).tolist()
        missing = [c for c, n in zip(splits.classes, val_counts, strict=True) if n == 0]
        if missing:
            log.warning("%d of %d classes have no validation image (e.g. %s): their scores mean nothing; raise "
                        "val_fraction or add images", len(missing), len(splits.classes), printable(missing[0]))
    made = make_record(data, splits)
    splits.train = take_balanced(splits.train, recipe.train_images, seed)
    splits.val = take_balanced(splits.val, recipe.val_images, seed)
    return splits, made


def resumed_args(run: RunDir, data: str | os.PathLike[str] | None, epochs: int | None) -> dict:
    """What a resumed run continues with: its checkpoint, and the model, data, seed and recipe of
    its run.json (checked field by field; ``data`` given again for data that moved)."""
    saved_run = run.read_run()
    ckpt = load_checkpoint(run.path)
    if ckpt.state is None:
        raise CheckpointError(f"cannot resume from {run.path}: its checkpoint has no state.pt")
    if epochs is not None and epochs < ckpt.state["epoch"]:
        raise VggnetError(f"{run.path} has trained {ckpt.state['epoch']} epochs already: --epochs extends a run, "
                          f"so give more than {ckpt.state['epoch']}")
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved_run["recipe"].items()}
    if "bf16" in saved:  # runs saved before 'precision' replaced the bf16 switch
        saved["precision"] = "bf16" if saved.pop("bf16") else "fp32"
    if "channels_last" in saved:  # runs saved before 'memory_format' replaced the channels_last switch
        saved["memory_format"] = "channels_last" if saved.pop("channels_last") else "contiguous"
    try:
        recipe = Recipe(**{**saved, "epochs": epochs or saved["epochs"]})
    except (TypeError, KeyError) as err:
        raise CheckpointError(f"{run.run_json} is damaged: its recipe does not fit ({err})") from None
    return {"ckpt": ckpt, "model_name": saved_run["model"], "seed": saved_run["seed"], "recipe": recipe,
            "deterministic": saved_run["deterministic"], "strict": saved_run.get("strict", False),
            "data": data or saved_run.get("data_path", saved_run["data"])}  # absolute: resumable from anywhere


def kept_precision(recipe: Recipe, saved_run: dict) -> str:
    """The precision a run trains in. ``auto`` is decided once, on the machine that starts the run:
    resumed on another (a CPU with bf16 arithmetic, a GPU) it keeps the arithmetic it began with, so
    that one run is one experiment. The memory layout is not kept: it changes speed, not the numbers."""
    if recipe.precision == "auto" and saved_run.get("precision") in ("fp32", "bf16"):
        return saved_run["precision"]
    return recipe.precision


def machines_of(run: dict) -> list[str]:
    """The machines a run.json lists, in order; a damaged field (not a list of names) lists none."""
    saved = run.get("machines")
    return [m for m in saved if isinstance(m, str)] if isinstance(saved, list) else []


def ran_on(saved_run: dict, machine: str) -> list[str]:
    """The machines a run has trained on, in order: a resumed run's earlier ones and this one."""
    machines = machines_of(saved_run)
    return machines if machine in machines else [*machines, machine]


def checked_model(model_name: str | None, data: object, recipe: Recipe | None, dist: DistInfo) -> str:
    """The model's name, once every option is known to be usable: checked before anything is
    read or written."""
    if recipe is not None and model_name is None:
        model_name = recipe.model or None  # the recipe's own network (cifar-fast: vgg_fast)
    if recipe is None or model_name is None or data is None:
        raise VggnetError("train needs a model, data and a recipe (or resume=True with a run dir)")
    check_recipe(recipe)
    resolve_name(model_name)  # an unknown name fails before any data is read
    if recipe.width != 1 and "width" not in recipe_keywords(model_name):
        raise VggnetError(f"{resolve_name(model_name)} has no width multiplier (width={recipe.width:g}): width "
                          "thins the VGG family (vgg11 ... vgg19_bn); leave it at 1 for this network")
    local_batch_size(recipe.batch_size, dist, recipe.accumulate)  # a batch that does not split fails here
    return model_name
