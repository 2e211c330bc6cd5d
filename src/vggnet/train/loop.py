"""The training loop: one path, fast by default (batched on-device augmentation, channels_last,
bf16 autocast where it is the faster arithmetic), checkpointed every epoch so ``resume``
continues exactly where it stopped.

    train("vgg11_bn", "sample", get_recipe("cifar"), out="runs/demo")
    resume("runs/demo", epochs=30)

``_train`` reads as the run does: set up, then per epoch train, validate, checkpoint; then the
final scores and report. Preparation (options, data, statistics, starting weights) is in
:mod:`vggnet.train.setup`.
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
from vggnet.data.datasets import DataSplits
from vggnet.data.loader import make_batches
from vggnet.data.split_record import data_identity, read_split, write_split
from vggnet.data.summary import files_summary, format_summary, summarize
from vggnet.data.transforms import BatchTransform
from vggnet.device import autocast_dtype, channels_last_choice, resolve_device
from vggnet.errors import DivergedError
from vggnet.evaluate.metrics import Predictions, metrics_json, predict, score
from vggnet.evaluate.report import require_report_libraries, write_report
from vggnet.evaluate.tta import TestTimeAugment
from vggnet.fastpath import fast_path, machine_name
from vggnet.models import create_model, init_from_shallower
from vggnet.models.registry import check_input_size
from vggnet.progress import progress_bar
from vggnet.runs import Checkpoint, RunDir, save_checkpoint
from vggnet.train.distributed import (
    DistInfo,
    agree_on_fast_path,
    barrier,
    from_main,
    init_distributed,
    sum_across,
    wrap_model,
)
from vggnet.train.lookahead import Lookahead
from vggnet.train.optim import build_optimizer, build_scheduler, freeze_finished, stem_bias
from vggnet.train.recipes import Recipe
from vggnet.train.setup import (
    check_start_data,
    checked_model,
    data_stats,
    kept_precision,
    load_splits,
    load_weights,
    machines_of,
    model_kwargs_for,
    ran_on,
    read_starts,
    resumed_args,
    set_determinism,
)
from vggnet.train.step import train_step

log = logging.getLogger("vggnet")

CSV_FIELDS = ("epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "seconds", "images_per_s")


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    metrics: dict  # the final validation scores (metrics.json)


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
    locked while the run trains. With ``resume`` (or :func:`resume`) the run in ``out`` continues
    from its latest checkpoint: same model, data split, recipe, weights, optimizer and scheduler
    state, random generators and history (pass None for the model and recipe, and for ``data``
    unless it moved); ``epochs`` raises the epoch count of the saved recipe. ``strict``: an image
    that cannot be decoded stops the run, named, instead of being skipped with a warning.

    Started by ``torchrun`` (WORLD_SIZE > 1 in the environment), each process trains on its share
    of every global batch under DistributedDataParallel and rank 0 alone writes ``out``.
    """
    require_report_libraries()
    dist, device = init_distributed(resolve_device(device))
    run = RunDir(Path(out), "train")
    if not resume:
        checked_model(model_name, data, recipe, dist)
    if dist.main:
        run.claim(resume=resume)  # before any data is read: not the user's folder, not in use
    try:
        resumed = resumed_args(run, data, epochs) if resume else {}
        args = {"model_name": model_name, "data": data, "recipe": recipe, "seed": seed, "deterministic": deterministic,
                "strict": strict, **resumed}
        return _train(run, dist, device, progress=progress, **args)
    finally:
        run.release()


def resume(run_dir: str | os.PathLike[str], *, epochs: int | None = None, data: str | os.PathLike[str] | None = None,
           device: str | torch.device | None = None, progress: bool = True) -> TrainResult:
    """Continue the run in ``run_dir`` from its latest checkpoint (``epochs``: extend it; ``data``:
    where its data moved)."""
    return train(None, data, None, run_dir, resume=True, epochs=epochs, device=device, progress=progress)


@dataclass
class _Live:
    """What every epoch works with: built once by :func:`_setup`, restored from the checkpoint on
    resume."""

    run_dir: Path
    dist: DistInfo
    device: torch.device
    recipe: Recipe
    splits: DataSplits
    summary: dict
    model: torch.nn.Module
    step_model: torch.nn.Module  # the model as training calls it (DDP, torch.compile)
    transform: BatchTransform
    dtype: torch.dtype | None
    train_batches: object
    val_batches: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    shuffle_gen: torch.Generator
    augment_gen: torch.Generator
    stats: dict
    meta: dict
    run_info: dict
    history: list[dict]
    start: int
    progress: bool
    writer: object = None
    lookahead: Lookahead | None = None  # the weights' running average (recipe.lookahead)
    val: Predictions | None = None  # the latest validation pass, reused for the final report

    def validation(self, model: torch.nn.Module | None = None) -> Predictions:
        return predict(model or self.model, self.val_batches, lambda x: self.transform(x, train=False),
                       dtype=self.dtype)


def _train(run: RunDir, dist: DistInfo, device: torch.device, model_name: str | None,
           data: str | os.PathLike[str] | None, recipe: Recipe | None, seed: int, deterministic: bool, strict: bool,
           progress: bool, ckpt: Checkpoint | None = None) -> TrainResult:
    """The run itself, top to bottom."""
    started = time.perf_counter()
    live = _setup(run.path, dist, device, model_name, data, recipe, seed, deterministic, strict,
                  progress and dist.main, ckpt)
    for epoch in range(live.start, live.recipe.epochs + 1):
        totals = _train_epoch(live, epoch)
        row = _validate(live, epoch, *totals)
        _checkpoint(live, epoch, row)
    return _finish(live, started)


def _setup(run_dir: Path, dist: DistInfo, device: torch.device, model_name: str | None, data, recipe: Recipe | None,
           seed: int, deterministic: bool, strict: bool, progress: bool, ckpt: Checkpoint | None) -> _Live:
    """Data, model, optimizer and run files, in the order that keeps a resumed run's random
    streams exactly where they were."""
    state = ckpt.state if ckpt is not None else None
    model_name = checked_model(model_name, data, recipe, dist)
    set_determinism(seed, deterministic)
    if not dist.main:
        barrier(dist)  # rank 0 decodes (and caches) the data first; the others then read the cache
    pretrained, shallower = read_starts(recipe) if ckpt is None else (None, None)
    if pretrained is not None:
        check_start_data(pretrained, data, recipe)
    record = read_split(run_dir) if ckpt is not None else None
    splits, made = load_splits(data, recipe, seed, strict, progress, record, ckpt.meta.get("classes") if ckpt
                               else None)
    if dist.main:
        barrier(dist)
    size = recipe.image_size or splits.native_size or 224
    check_input_size(model_name, size)
    summary = summarize(splits)
    if dist.main:
        print(format_summary(summary), file=sys.stderr, flush=True)
    model_kwargs = model_kwargs_for(model_name, recipe, len(splits.classes), size)
    model = create_model(model_name, **model_kwargs)
    stats = state["stats"] if state else data_stats(splits, recipe, size)
    if shallower is not None:
        init_from_shallower(model, shallower)
    if pretrained is not None:
        stats = load_weights(model, pretrained, stats)
    if state:
        model.load_state_dict(ckpt.weights)
    agree_on_fast_path(dist, device)  # every rank takes rank 0's measured choice
    saved_run = RunDir(run_dir).read_run() if ckpt is not None else {}
    dtype = autocast_dtype(kept_precision(recipe, saved_run), device)
    kept = recipe.precision == "auto" and bool(saved_run) and dtype != autocast_dtype("auto", device)
    if kept and dist.main:
        log.warning("resumed in %s, what precision=auto chose on the machine the run began on (%s); here auto "
                    "would choose otherwise: one run keeps one arithmetic", saved_run["precision"],
                    ", ".join(machines_of(saved_run)) or "not recorded")
    shape = (getattr(model, "in_chans", 3), size, size)  # 'auto': measured on this network, on rank 0
    channels_last, layout = from_main(dist, channels_last_choice(recipe.memory_format, device, model=model,
                                                                 shape=shape, dtype=dtype, progress=progress)
                                      if dist.main else None)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if recipe.grad_checkpointing:
        model.set_grad_checkpointing(True)
    transform = _transform(recipe, stats, splits, size, channels_last)
    if not recipe.stem_bias_epochs and (bias := stem_bias(model)) is not None:
        bias.requires_grad_(False)  # a fixed stem: no backward pass into it (set before DDP wraps it)
    if hasattr(model, "fit_to_data") and not state and not recipe.weights and splits.in_memory:
        # a data-fitted layer (vgg_fast's whitening stem) sees the images as training will
        model.fit_to_data(transform(splits.train.images[:5000].to(device), train=False))
    wrapped = wrap_model(model, dist, device, recipe.sync_bn)  # DDP starts every rank from rank 0's weights
    if dist.world > 1:  # from here each rank draws its own dropout masks and crops (the weights are set)
        torch.manual_seed(seed + 7919 * dist.rank)
    live = _Live(
        run_dir=run_dir, dist=dist, device=device, recipe=recipe, splits=splits, summary=summary,
        model=getattr(wrapped, "module", wrapped),  # SyncBatchNorm conversion may have swapped layers
        step_model=torch.compile(wrapped) if recipe.compile else wrapped, transform=transform,
        dtype=dtype, train_batches=None, val_batches=None, optimizer=None,
        scheduler=None, shuffle_gen=torch.Generator().manual_seed(seed),
        augment_gen=torch.Generator(device=device).manual_seed(seed + 1 + 7919 * dist.rank), stats=stats, meta={},
        run_info={"memory_layout": layout, "machines": ran_on(saved_run, machine_name(device)), "kept": kept},
        history=[], start=1, progress=progress)
    _optimization(live, size, seed, strict, state)
    new_split = made if record is None else None  # a new run (or one from before splits were recorded)
    _run_files(live, model_name, model_kwargs, data, size, seed, deterministic, strict, new_split)
    return live


def _transform(recipe: Recipe, stats: dict, splits: DataSplits, size: int, channels_last: bool) -> BatchTransform:
    return BatchTransform(
        mean=tuple(stats["mean"]), std=tuple(stats["std"]), pad_crop=recipe.pad_crop, pad_mode=recipe.pad_mode,
        flip=recipe.flip and not (recipe.alternate_flip and splits.in_memory),
        pca_std=recipe.pca_colour, pca_eigval=torch.tensor(stats["pca_eigval"]),
        pca_eigvec=torch.tensor(stats["pca_eigvec"]), size=size if splits.in_memory else None,
        channels_last=channels_last, bgr=stats.get("channels") == "BGR",
    )


def _optimization(live: _Live, size: int, seed: int, strict: bool, state: dict | None) -> None:
    """Batches, optimizer and schedule; on resume their states, the generators' and the history."""
    recipe, dist = live.recipe, live.dist
    loader_args = {"device": live.device, "crop": size, "scale": recipe.scale, "workers": recipe.workers}
    short = getattr(live.splits.train, "short_side", 0)
    if short and max(recipe.scale) > short:
        log.warning("the shards were prepared at short side %d but training rescales up to %d: images are enlarged "
                    "(vggnet prepare --short-side %d keeps their detail)", short, max(recipe.scale), max(recipe.scale))
    live.train_batches = make_batches(live.splits.train, recipe.batch_size, train=True, generator=live.shuffle_gen,
                                      alternate_flip=recipe.flip and recipe.alternate_flip, flip_seed=seed,
                                      shard=(dist.rank, dist.world), seed=seed, strict=strict, **loader_args)
    val_args = {**loader_args, "scale": (recipe.test_scale, recipe.test_scale), "strict": strict}
    live.val_batches = make_batches(live.splits.val, recipe.batch_size, train=False, **val_args) \
        if len(live.splits.val) else None  # val_fraction=0: nothing held out
    live.optimizer = build_optimizer(live.model, recipe)
    live.scheduler = build_scheduler(live.optimizer, recipe, len(live.train_batches))
    if recipe.lookahead:
        total = recipe.epochs * len(live.train_batches)
        if total <= recipe.lookahead:
            log.warning("lookahead=%d but the run takes %d steps: the weights are never averaged", recipe.lookahead,
                        total)
        live.lookahead = Lookahead(live.model, recipe.lookahead, total)
    if state:
        live.optimizer.load_state_dict(state["optimizer"])
        if live.lookahead is not None and "lookahead" in state:
            live.lookahead.load_state_dict(state["lookahead"])
        live.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        live.shuffle_gen.set_state(state["rng"]["shuffle"])
        per_rank = state["rng"].get("augment_ranks") or [state["rng"]["augment"]]
        live.augment_gen.set_state(per_rank[dist.rank] if len(per_rank) == dist.world else per_rank[0])
        live.history, live.start = state["history"], state["epoch"] + 1


def _run_files(live: _Live, model_name: str, model_kwargs: dict, data, size: int, seed: int, deterministic: bool,
               strict: bool, split_record: dict | None) -> None:
    """The checkpoint metadata, run.json and (a new run's) split.json; TensorBoard if installed."""
    recipe, splits, stats = live.recipe, live.splits, live.stats
    live.meta = {"model": live.model.model_name, "model_kwargs": model_kwargs, "classes": splits.classes,
                 "mean": stats["mean"], "std": stats["std"], "channels": stats.get("channels", "RGB"),
                 "image_size": size, "test_scale": recipe.test_scale, "in_memory": splits.in_memory,
                 "data": data_identity(data), "recipe": recipe.name, "seed": seed, "scale": list(recipe.scale),
                 "val_fraction": recipe.val_fraction}
    layout, machines, kept = (live.run_info.get(k) for k in ("memory_layout", "machines", "kept"))  # by _setup
    live.run_info = {
        "model": model_name, "data": str(data), "data_path": data_identity(data), "seed": seed,
        "deterministic": deterministic, "strict": strict, "recipe": dataclasses.asdict(recipe),
        "model_kwargs": model_kwargs, "image_size": size, "train_images": len(splits.train),
        "val_images": len(splits.val), "skipped_images": splits.skipped, "data_summary": live.summary,
        "device": str(live.device), "processes": live.dist.world, "torch": torch.__version__, "vggnet": __version__,
        "precision": "bf16" if live.dtype is not None else "fp32",
        "channels_last": live.transform.channels_last, "machines": machines,
    }
    if "auto" in (recipe.precision, recipe.memory_format):  # what auto chose here, and the timings behind it
        live.run_info["fast_path"] = fast_path(live.device).train.reason
        if kept:
            live.run_info["fast_path"] += f" (the run keeps {live.run_info['precision']}, chosen where it began)"
    if layout:
        live.run_info["memory_layout"] = layout
    if live.dist.main:
        if split_record is not None:
            write_split(live.run_dir, split_record)
        _write_json(live.run_dir / "run.json", live.run_info)
        live.writer = _tensorboard(live.run_dir)


def _train_epoch(live: _Live, epoch: int) -> tuple[torch.Tensor, torch.Tensor, int, float, float]:
    """One pass over the training images: (summed loss, correct, images, start time, seconds)."""
    live.model.train()
    batches, device, dist = live.train_batches, live.device, live.dist
    if not dist.enabled:  # under DDP every parameter must keep its gradient; the schedule holds them at rate 0
        freeze_finished(live.optimizer, epoch)
    if hasattr(batches, "set_epoch"):
        batches.set_epoch(epoch)
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    with progress_bar(f"epoch {epoch}/{live.recipe.epochs}", total=len(batches), enabled=live.progress) as bar:
        for step, (images, labels) in enumerate(batches):
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            loss, logits = train_step(live.step_model, images, labels, live.transform, live.optimizer,
                                      dtype=live.dtype, label_smoothing=live.recipe.label_smoothing,
                                      generator=live.augment_gen, accumulate=live.recipe.accumulate)
            if live.scheduler.per_step:
                live.scheduler.step()
            if live.lookahead is not None:
                live.lookahead.after_step((epoch - 1) * len(batches) + step + 1)
            loss_sum += loss * len(labels)
            correct += (logits.argmax(1) == labels).sum()
            seen += len(labels)
            bar.advance()
            if step % 10 == 9 or step == len(batches) - 1:
                total_loss, total_correct, total_seen = sum_across(
                    dist, loss_sum, correct, torch.tensor(seen, device=device))
                _stop_if_diverged(total_loss, epoch, step, live.history)
                n, rate = total_seen.item(), seen / (time.perf_counter() - t0) * dist.world
                bar.note(f"loss {total_loss.item() / n:.3f}  acc {total_correct.item() / n:.1%}  {rate:.0f} img/s")
    return loss_sum, correct, seen, t0, time.perf_counter() - t0


def _validate(live: _Live, epoch: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, t0: float,
              train_seconds: float) -> dict:
    """The epoch's row of metrics.csv: training totals over all processes, validation on rank 0."""
    _note_skipped(live, epoch)
    loss_sum, correct, total_seen = sum_across(live.dist, loss_sum, correct, torch.tensor(seen, device=live.device))
    seen = int(total_seen.item())
    _stop_if_diverged(loss_sum, epoch, len(live.train_batches) - 1, live.history)
    row = None
    if live.dist.main:  # rank 0 scores and writes; the others wait for the score the plateau schedule needs
        row = {"epoch": epoch, "lr": live.optimizer.param_groups[0]["lr"], "train_loss": loss_sum.item() / seen,
               "train_top1": correct.item() / seen, "val_loss": math.nan, "val_top1": math.nan, "val_top5": math.nan}
        if live.val_batches is not None:  # else val_fraction=0: no held-out image, the val columns stay NaN
            live.val = val = live.validation()
            row.update(val_loss=val.loss, val_top1=val.accuracy(1), val_top5=val.accuracy(5))
        row.update(seconds=time.perf_counter() - t0, images_per_s=seen / train_seconds)
    row = from_main(live.dist, row)
    if live.val_batches is not None:
        _stop_if_val_diverged(row, live.history)
    live.history.append(row)
    if not live.scheduler.per_step:
        live.scheduler.step(row["val_top1"])
    if live.progress and live.val_batches is None:
        print(f"epoch {epoch}: train top-1 {row['train_top1']:.2%}  loss {row['train_loss']:.3f}  "
              f"({row['seconds']:.0f} s; nothing held out)", flush=True)
    elif live.progress:
        top5 = f"  top-5 {row['val_top5']:.2%}" if len(live.splits.classes) > 5 else ""  # else 100% by construction
        print(f"epoch {epoch}: val top-1 {row['val_top1']:.2%}{top5}  "
              f"loss {row['val_loss']:.3f}  ({row['seconds']:.0f} s)", flush=True)
    return row


def _note_skipped(live: _Live, epoch: int) -> None:
    """Streamed images are decoded as they are read: report each undecodable file once."""
    skipped = {**getattr(live.train_batches, "skipped", {}), **getattr(live.val_batches, "skipped", {})}
    new = {n: why for n, why in skipped.items() if n not in live.splits.skipped}
    if not new:
        return
    live.splits.skipped.update(new)
    log.warning("epoch %d: %d undecodable images skipped (first: %s); --strict stops instead", epoch, len(new),
                min(new))
    if live.dist.main:  # run.json's skipped_images is splits.skipped; its summary lists them too
        live.summary["undecodable"] = files_summary(live.splits.skipped)
        _write_json(live.run_dir / "run.json", live.run_info)


def _checkpoint(live: _Live, epoch: int, row: dict) -> None:
    """metrics.csv, TensorBoard and the epoch's checkpoint; every process waits until it is whole."""
    augment_states = _gather_states(live.dist, live.augment_gen.get_state())
    if live.dist.main:
        _write_csv(live.run_dir, live.history)
        if live.writer is not None:
            for key in CSV_FIELDS[1:]:
                live.writer.add_scalar(key, row[key], epoch)
        save_checkpoint(live.run_dir, epoch, live.model, live.meta, {
            "epoch": epoch, "optimizer": live.optimizer.state_dict(), "scheduler": live.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "shuffle": live.shuffle_gen.get_state(),
                    "augment": live.augment_gen.get_state(), "augment_ranks": augment_states},
            "history": live.history, "stats": live.stats,
            **({"lookahead": live.lookahead.state_dict()} if live.lookahead is not None else {}),
        })
    barrier(live.dist)  # no process starts the next epoch (or returns) before the checkpoint is whole


def _finish(live: _Live, started: float) -> TrainResult:
    """The final scores (with test-time augmentation if the recipe asks), metrics.json and the report."""
    if live.writer is not None:
        live.writer.close()
    if not live.dist.main:
        return TrainResult(live.run_dir, live.history, {})
    metrics = _final_scores(live) if live.val_batches is not None else _unscored(live)
    metrics["wall_seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_text(live.run_dir / "metrics.json", metrics_json(metrics))
    write_report(live.run_dir, metrics, live.history,
                 title=f"{live.model.model_name} on {live.splits.name}, recipe {live.recipe.name}")
    return TrainResult(live.run_dir, live.history, metrics)


def _final_scores(live: _Live) -> dict:
    """The held-out scores of the trained net, with the recipe's test-time augmentation."""
    final = live.val if live.val is not None else live.validation()
    extra = {}
    if live.recipe.tta:
        extra = {"tta": live.recipe.tta, "top1_without_tta": final.accuracy(1)}
        final = live.validation(TestTimeAugment(live.model, live.recipe.tta))
    return {"split": "val", "checkpoint": str(live.run_dir), **score(final, live.splits.classes), **extra}


def _unscored(live: _Live) -> dict:
    """A run with nothing held out (val_fraction=0): metrics.json says so and how to score it; the
    report has the training curves only."""
    last = live.history[-1]
    return {"split": "none", "images": 0, "classes": live.splits.classes, "train_images": len(live.splits.train),
            "train_loss": last["train_loss"], "train_top1": last["train_top1"],
            "note": f"nothing was held out (val_fraction=0): score it with vggnet evaluate --checkpoint "
                    f"{live.run_dir} --data TEST-DATA --out DIR"}
