"""The training loop: one path, fast by default (batched on-device augmentation, channels_last,
bf16 autocast where it is the faster arithmetic), checkpointed every epoch so ``resume``
continues exactly where it stopped.

    train("vgg11_bn", "sample", get_recipe("cifar"), out="runs/demo")
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vggnet import __version__
from vggnet.atomic import atomic_write_text
from vggnet.data.arrays import ImageArrays, channel_mean_std
from vggnet.data.datasets import DataSplits, labels_of, load_data, take_balanced
from vggnet.data.loader import make_batches
from vggnet.data.sources import printable
from vggnet.data.split_record import data_identity, describe_change, make_record, read_split, write_split
from vggnet.data.stats import stream_stats
from vggnet.data.summary import files_summary, format_summary, summarize
from vggnet.data.transforms import BatchTransform, pca_basis
from vggnet.device import autocast_dtype, resolve_device
from vggnet.errors import CheckpointError, DataError, DivergedError, VggnetError
from vggnet.evaluate.metrics import metrics_json, predict, score
from vggnet.evaluate.report import require_report_libraries, write_report
from vggnet.evaluate.tta import TestTimeAugment
from vggnet.models import create_model, init_from_shallower, resolve_name
from vggnet.models.registry import check_input_size
from vggnet.progress import progress_bar
from vggnet.runs import Checkpoint, RunDir, load_checkpoint, model_from_checkpoint, save_checkpoint
from vggnet.train.distributed import (
    DistInfo,
    barrier,
    from_main,
    init_distributed,
    local_batch_size,
    sum_across,
    wrap_model,
)
from vggnet.train.optim import build_optimizer, build_scheduler
from vggnet.train.recipes import Recipe, check_recipe
from vggnet.train.step import train_step
from vggnet.weights.load import WeightSource, read_weights

log = logging.getLogger("vggnet")

CSV_FIELDS = ("epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "seconds", "images_per_s")


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    metrics: dict  # the final validation scores (metrics.json)


def set_determinism(seed: int, deterministic: bool) -> None:
    """Seed every generator; ``deterministic`` also forbids non-deterministic kernels."""
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


def _model_kwargs(name: str, recipe: Recipe, num_classes: int, size: int) -> dict:
    if not name.startswith("vgg"):
        return {"num_classes": num_classes}
    head = recipe.head if recipe.head != "auto" else ("imagenet" if size >= 224 else "small")
    return {"num_classes": num_classes, "head": head, "dropout": recipe.dropout, "init": recipe.init}


CONSTANT_STD = 1e-3  # on the [0, 1] scale: a channel this flat carries no signal to normalise


def _stats(data: DataSplits, recipe: Recipe, size: int) -> dict:
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


def _read_starts(recipe: Recipe) -> tuple[WeightSource | None, torch.nn.Module | None]:
    """What a new run starts from besides random weights, read (and checked) before the data: the
    pretrained weights to fine-tune, and the shallower trained net to initialise from."""
    pretrained = read_weights(recipe.weights) if recipe.weights else None
    shallower = model_from_checkpoint(recipe.init_from)[0] if recipe.init_from else None
    return pretrained, shallower


def _load_weights(model: torch.nn.Module, src: WeightSource, stats: dict) -> dict:
    """Fine-tuning: load pretrained weights (all that fit; the user is told what did not) and
    feed the images as those weights expect (their channel order, mean and std)."""
    from vggnet.weights.hub import PREPROCESSING
    from vggnet.weights.load import describe_skipped, load_pretrained

    skipped = load_pretrained(model, src.state)
    if skipped:
        log.warning("%s: %s", src.path, describe_skipped(skipped, model))
    pre = src.meta if src.source == "vggnet" else PREPROCESSING[src.source]
    return {**stats, "mean": list(pre["mean"]), "std": list(pre["std"]), "channels": pre.get("channels", "RGB")}


def _load_splits(data: str | os.PathLike[str], recipe: Recipe, seed: int, strict: bool, progress: bool,
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
    if not len(splits.val):
        raise DataError(f"no validation images left in {data}: the run's held-out images are gone")
    val_counts = torch.bincount(labels_of(splits.val), minlength=len(splits.classes)).tolist()
    missing = [c for c, n in zip(splits.classes, val_counts, strict=True) if n == 0]
    if missing:
        log.warning("%d of %d classes have no validation image (e.g. %s): their scores mean nothing; raise "
                    "val_fraction or add images", len(missing), len(splits.classes), printable(missing[0]))
    made = make_record(data, splits)
    splits.train = take_balanced(splits.train, recipe.train_images, seed)
    splits.val = take_balanced(splits.val, recipe.val_images, seed)
    return splits, made


def _write_csv(run_dir: Path, history: list[dict]) -> None:
    lines = [",".join(CSV_FIELDS)] + [",".join(f"{row[k]:.6g}" for k in CSV_FIELDS) for row in history]
    atomic_write_text(run_dir / "metrics.csv", "\n".join(lines) + "\n")


def _write_json(path: Path, obj: object) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional: metrics.csv always has the same numbers
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _stop_if_diverged(loss_sum: torch.Tensor, epoch: int, step: int, history: list[dict]) -> None:
    """Stop at the first non-finite loss; the run directory keeps the last checkpoint written
    before it (every process sees the same summed loss, so all stop together)."""
    if torch.isfinite(loss_sum):
        return
    kept = f"the last good checkpoint is epoch {history[-1]['epoch']}" if history else "no checkpoint was written"
    raise DivergedError(f"the loss became {loss_sum.item()} in epoch {epoch} (by step {step + 1}); {kept}; "
                        "lower the learning rate")


def _stop_if_val_diverged(row: dict, history: list[dict]) -> None:
    """A validation loss that is not finite (weights that overflow on unseen images, BatchNorm
    statistics gone bad) ends the run with an error: a score from such weights means nothing, and
    their checkpoint is not written."""
    if math.isfinite(row["val_loss"]):
        return
    kept = f"the last good checkpoint is epoch {history[-1]['epoch']}" if history else "no checkpoint was written"
    raise DivergedError(f"the validation loss became {row['val_loss']} after epoch {row['epoch']} (training loss "
                        f"{row['train_loss']:.4g}); {kept}; lower the learning rate or use precision=fp32")


def _gather_states(dist: DistInfo, state: torch.Tensor) -> list[torch.Tensor]:
    """Every process's generator state (rank order), so a resumed DDP run augments as before."""
    if not dist.enabled:
        return [state]
    states: list = [None] * dist.world
    torch.distributed.all_gather_object(states, state)
    return states


def _resumed(run: RunDir, data: str | os.PathLike[str] | None, epochs: int | None) -> dict:
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
    try:
        recipe = Recipe(**{**saved, "epochs": epochs or saved["epochs"]})
    except (TypeError, KeyError) as err:
        raise CheckpointError(f"{run.run_json} is damaged: its recipe does not fit ({err})") from None
    return {"ckpt": ckpt, "model_name": saved_run["model"], "seed": saved_run["seed"], "recipe": recipe,
            "deterministic": saved_run["deterministic"], "strict": saved_run.get("strict", False),
            "data": data or saved_run.get("data_path", saved_run["data"])}  # absolute: resumable from anywhere


def _checked(model_name: str | None, data: object, recipe: Recipe | None, dist: DistInfo) -> str:
    """The model's name, once every option is known to be usable: checked before anything is
    read or written."""
    if recipe is not None and model_name is None:
        model_name = recipe.model or None  # the recipe's own network (cifar-fast: vgg_fast)
    if recipe is None or model_name is None or data is None:
        raise VggnetError("train needs a model, data and a recipe (or resume=True with a run dir)")
    check_recipe(recipe)
    resolve_name(model_name)  # an unknown name fails before any data is read
    local_batch_size(recipe.batch_size, dist, recipe.accumulate)  # a batch that does not split fails here
    return model_name


def train(
    model_name: str | None,
    data: str | os.PathLike[str] | None,
    recipe: Recipe | None,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    epochs: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    deterministic: bool = False,
    strict: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``model_name`` on ``data`` with ``recipe``, writing everything to the run dir ``out``.

    ``out`` must be new, empty, or a run of vggnet's (see :class:`vggnet.runs.RunDir`); it is
    locked while the run trains. With ``resume`` the run in ``out`` continues from its latest
    checkpoint: same model, data split, recipe, weights, optimizer and scheduler state, random
    generators and history (pass None for the model and recipe, and for ``data`` unless it
    moved); ``epochs`` raises the epoch count of the saved recipe. ``strict``: an image that
    cannot be decoded stops the run, named, instead of being skipped with a warning.

    Started by ``torchrun`` (WORLD_SIZE > 1 in the environment), each process trains on its share
    of every global batch under DistributedDataParallel and rank 0 alone writes ``out``.
    """
    require_report_libraries()
    dist, device = init_distributed(resolve_device(device))
    run = RunDir(Path(out), "train")
    if not resume:
        _checked(model_name, data, recipe, dist)
    if dist.main:
        run.claim(resume=resume)  # before any data is read: not the user's folder, not in use
    try:
        resumed = _resumed(run, data, epochs) if resume else {}
        args = {"model_name": model_name, "data": data, "recipe": recipe, "seed": seed, "deterministic": deterministic,
                "strict": strict, **resumed}
        return _train(run, dist, device, progress=progress, **args)
    finally:
        run.release()


def _train(run: RunDir, dist: DistInfo, device: torch.device, model_name: str | None,
           data: str | os.PathLike[str] | None, recipe: Recipe | None, seed: int, deterministic: bool, strict: bool,
           progress: bool, ckpt: Checkpoint | None = None) -> TrainResult:
    """The run itself, top to bottom: data, model, optimizer, epochs, the final report."""
    started = time.perf_counter()
    run_dir = run.path
    progress = progress and dist.main
    state = ckpt.state if ckpt is not None else None
    resume = ckpt is not None
    model_name = _checked(model_name, data, recipe, dist)
    set_determinism(seed, deterministic)

    if not dist.main:
        barrier(dist)  # rank 0 decodes (and caches) the data first; the others then read the cache
    pretrained, shallower = _read_starts(recipe) if not resume else (None, None)
    record = read_split(run_dir) if resume else None
    splits, made = _load_splits(data, recipe, seed, strict, progress, record, ckpt.meta.get("classes") if resume
                                else None)
    if dist.main:
        barrier(dist)
    size = recipe.image_size or splits.native_size or 224
    check_input_size(model_name, size)
    summary = summarize(splits)
    if dist.main:
        print(format_summary(summary), file=sys.stderr, flush=True)
    model_kwargs = _model_kwargs(model_name, recipe, len(splits.classes), size)
    model = create_model(model_name, **model_kwargs)
    stats = state["stats"] if state else _stats(splits, recipe, size)
    if shallower is not None:
        init_from_shallower(model, shallower)
    if pretrained is not None:
        stats = _load_weights(model, pretrained, stats)
    if state:
        model.load_state_dict(ckpt.weights)
    model.to(device, memory_format=torch.channels_last if recipe.channels_last else torch.contiguous_format)
    if recipe.grad_checkpointing:
        model.set_grad_checkpointing(True)
    dtype = autocast_dtype(recipe.precision, device)

    transform = BatchTransform(
        mean=tuple(stats["mean"]), std=tuple(stats["std"]), pad_crop=recipe.pad_crop,
        flip=recipe.flip and not (recipe.alternate_flip and splits.in_memory),
        pca_std=recipe.pca_colour, pca_eigval=torch.tensor(stats["pca_eigval"]),
        pca_eigvec=torch.tensor(stats["pca_eigvec"]), size=size if splits.in_memory else None,
        channels_last=recipe.channels_last, bgr=stats.get("channels") == "BGR",
    )
    if hasattr(model, "fit_to_data") and not state and not recipe.weights and splits.in_memory:
        # a data-fitted layer (vgg_fast's whitening stem) sees the images as training will
        model.fit_to_data(transform(splits.train.images[:5000].to(device), train=False))
    wrapped = wrap_model(model, dist, device, recipe.sync_bn)  # DDP starts every rank from rank 0's weights
    model = getattr(wrapped, "module", wrapped)  # SyncBatchNorm conversion may have swapped layers
    step_model = torch.compile(wrapped) if recipe.compile else wrapped
    shuffle_gen = torch.Generator().manual_seed(seed)
    augment_gen = torch.Generator(device=device).manual_seed(seed + 1 + 7919 * dist.rank)
    loader_args = {"device": device, "crop": size, "scale": recipe.scale, "workers": recipe.workers}
    train_batches = make_batches(splits.train, recipe.batch_size, train=True, generator=shuffle_gen,
                                 alternate_flip=recipe.flip and recipe.alternate_flip, flip_seed=seed,
                                 shard=(dist.rank, dist.world), seed=seed, strict=strict, **loader_args)
    val_args = {**loader_args, "scale": (recipe.test_scale, recipe.test_scale), "strict": strict}
    val_batches = make_batches(splits.val, recipe.batch_size, train=False, **val_args)
    optimizer = build_optimizer(model, recipe)
    scheduler = build_scheduler(optimizer, recipe, len(train_batches))
    history: list[dict] = []
    start = 1
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        shuffle_gen.set_state(state["rng"]["shuffle"])
        per_rank = state["rng"].get("augment_ranks") or [state["rng"]["augment"]]
        augment_gen.set_state(per_rank[dist.rank] if len(per_rank) == dist.world else per_rank[0])
        history, start = state["history"], state["epoch"] + 1

    meta = {"model": model.model_name, "model_kwargs": model_kwargs, "classes": splits.classes,
            "mean": stats["mean"], "std": stats["std"], "channels": stats.get("channels", "RGB"),
            "image_size": size, "test_scale": recipe.test_scale, "in_memory": splits.in_memory,
            "data": data_identity(data), "recipe": recipe.name, "seed": seed, "scale": list(recipe.scale),
            "val_fraction": recipe.val_fraction}
    run_info = {
        "model": model_name, "data": str(data), "data_path": data_identity(data), "seed": seed,
        "deterministic": deterministic, "strict": strict, "recipe": dataclasses.asdict(recipe),
        "model_kwargs": model_kwargs, "image_size": size, "train_images": len(splits.train),
        "val_images": len(splits.val), "skipped_images": splits.skipped, "data_summary": summary,
        "device": str(device), "processes": dist.world, "torch": torch.__version__, "vggnet": __version__,
    }
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if record is None:  # a new run (or one from before splits were recorded)
            write_split(run_dir, made)
        _write_json(run_dir / "run.json", run_info)
    writer = _tensorboard(run_dir) if dist.main else None
    val_transform = lambda x: transform(x, train=False)  # noqa: E731
    val = None  # the latest validation pass, reused for the final report

    for epoch in range(start, recipe.epochs + 1):
        model.train()
        if hasattr(train_batches, "set_epoch"):
            train_batches.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        with progress_bar(f"epoch {epoch}/{recipe.epochs}", total=len(train_batches), enabled=progress) as bar:
            for step, (images, labels) in enumerate(train_batches):
                images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                loss, logits = train_step(step_model, images, labels, transform, optimizer, dtype=dtype,
                                          label_smoothing=recipe.label_smoothing, generator=augment_gen,
                                          accumulate=recipe.accumulate)
                if scheduler.per_step:
                    scheduler.step()
                loss_sum += loss * len(labels)
                correct += (logits.argmax(1) == labels).sum()
                seen += len(labels)
                bar.advance()
                if step % 10 == 9 or step == len(train_batches) - 1:
                    total_loss, total_correct, total_seen = sum_across(
                        dist, loss_sum, correct, torch.tensor(seen, device=device))
                    _stop_if_diverged(total_loss, epoch, step, history)
                    n, rate = total_seen.item(), seen / (time.perf_counter() - t0) * dist.world
                    bar.note(f"loss {total_loss.item() / n:.3f}  acc {total_correct.item() / n:.1%}  {rate:.0f} img/s")
        train_seconds = time.perf_counter() - t0
        new_skips = {**getattr(train_batches, "skipped", {}), **getattr(val_batches, "skipped", {})}
        new_skips = {n: why for n, why in new_skips.items() if n not in splits.skipped}
        if new_skips:  # streamed images are decoded as they are read: report each bad file once
            splits.skipped.update(new_skips)
            log.warning("epoch %d: %d undecodable images skipped (first: %s); --strict stops instead",
                        epoch, len(new_skips), min(new_skips))
            if dist.main:  # run.json's skipped_images is splits.skipped; its summary lists them too
                summary["undecodable"] = files_summary(splits.skipped)
                _write_json(run_dir / "run.json", run_info)
        loss_sum, correct, total_seen = sum_across(dist, loss_sum, correct, torch.tensor(seen, device=device))
        seen = int(total_seen.item())
        _stop_if_diverged(loss_sum, epoch, len(train_batches) - 1, history)
        row = None
        if dist.main:  # rank 0 scores and writes; the others wait for the score the plateau schedule needs
            val = predict(model, val_batches, val_transform, dtype=dtype)
            row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": loss_sum.item() / seen,
                   "train_top1": correct.item() / seen, "val_loss": val.loss, "val_top1": val.accuracy(1),
                   "val_top5": val.accuracy(5), "seconds": time.perf_counter() - t0,
                   "images_per_s": seen / train_seconds}
        row = from_main(dist, row)
        _stop_if_val_diverged(row, history)
        history.append(row)
        if not scheduler.per_step:
            scheduler.step(row["val_top1"])
        if progress:
            print(f"epoch {epoch}: val top-1 {row['val_top1']:.2%}  top-5 {row['val_top5']:.2%}  "
                  f"loss {row['val_loss']:.3f}  ({row['seconds']:.0f} s)", flush=True)
        augment_states = _gather_states(dist, augment_gen.get_state())
        if dist.main:
            _write_csv(run_dir, history)
            if writer is not None:
                for key in CSV_FIELDS[1:]:
                    writer.add_scalar(key, row[key], epoch)
            save_checkpoint(run_dir, epoch, model, meta, {
                "epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle_gen.get_state(),
                        "augment": augment_gen.get_state(), "augment_ranks": augment_states},
                "history": history, "stats": stats,
            })
        barrier(dist)  # no process starts the next epoch (or returns) before the checkpoint is whole
    if writer is not None:
        writer.close()
    if not dist.main:
        return TrainResult(run_dir, history, {})

    final = val if val is not None else predict(model, val_batches, val_transform, dtype=dtype)
    extra = {}
    if recipe.tta:
        extra = {"tta": recipe.tta, "top1_without_tta": final.accuracy(1)}
        final = predict(TestTimeAugment(model, recipe.tta), val_batches, val_transform, dtype=dtype)
    metrics = {"split": "val", "checkpoint": str(run_dir), **score(final, splits.classes), **extra,
               "wall_seconds": round(time.perf_counter() - started, 1)}
    atomic_write_text(run_dir / "metrics.json", metrics_json(metrics))
    write_report(run_dir, metrics, history, title=f"{model.model_name} on {splits.name}, recipe {recipe.name}")
    return TrainResult(run_dir, history, metrics)
