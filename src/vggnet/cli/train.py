"""``vggnet train`` and ``vggnet evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from vggnet.cli import cli
from vggnet.cli.options import (
    check_weights_arg,
    device_option,
    grad_checkpointing_option,
    image_size_option,
    precision_option,
)
from vggnet.errors import VggnetError
from vggnet.names import PROTOCOL_NAMES, RECIPE_NAMES
from vggnet.terminal import printable_text

if TYPE_CHECKING:  # the recipes import torch: only inside the commands, so `vggnet train --help` stays fast
    from vggnet.train.recipes import Recipe

DATA_HELP = ("'cifar10' (downloaded once), 'sample' (embedded, offline), or a PATH: CIFAR archive, class folders, "
             "or a folder vggnet prepare wrote.")


KNOWN_SIZES = {"cifar10": 32, "sample": 32}  # image sides of the named datasets, known before they are read


def _check_model_size(model: str, size: int) -> None:
    """A model that cannot take ``size`` px images (when it is known up front) stops here."""
    from vggnet.models.registry import check_input_size

    check_input_size(model, size)


def _check_sources(recipe: Recipe) -> None:
    """The weights or the shallower run a recipe starts from, checked before the data is read."""
    if recipe.weights:
        check_weights_arg(recipe.weights)
    if recipe.init_from:
        from vggnet.runs import find_checkpoint

        find_checkpoint(recipe.init_from)


def _overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise VggnetError(f"--set takes FIELD=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


@cli.command("train")
@click.option("--model", default=None,
              help="Model name (vgg11, vgg16_bn, ... see `vggnet models`); cifar-fast defaults to vgg_fast.")
@click.option("--data", default=None, help=DATA_HELP)
@click.option("--recipe", type=click.Choice(RECIPE_NAMES), default="cifar", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None)
@image_size_option(None, minimum=0, help_text="Training crop side; 0: the data's own size [the recipe's].")
@precision_option(default=None, help_text="auto: fp32 or bf16, whichever a probe measured faster on "
                                          "this device [the recipe's].")
@grad_checkpointing_option()
@click.option("--weights", default=None,
              help="Fine-tune from pretrained weights: a known name (vggnet weights list) or a file.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Override any recipe field (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory [runs/MODEL-DATA-RECIPE].")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None,
              help="Continue the run in this directory from its latest checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option()
@click.option("--deterministic", is_flag=True, help="Use only deterministic kernels (slower on GPU).")
@click.option("--strict", is_flag=True, help="Stop at the first image that cannot be decoded (default: skip it, warn).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_command(model, data, recipe, epochs, batch_size, lr, image_size, precision, grad_checkpointing, weights,
                  sets, out, resume, seed, device, deterministic, strict, compile_, quiet) -> None:
    """Train a network and write checkpoints, metrics.csv, metrics.json and report.md."""
    from vggnet.train.distributed import shutdown_distributed
    from vggnet.train.loop import train
    from vggnet.train.recipes import RECIPES, get_recipe

    common = {"device": device, "progress": not quiet}
    how: dict[str, object]
    if resume is not None:  # the run's own model, data and recipe; --epochs may extend it
        given = click.get_current_context().get_parameter_source
        chose = [f"--{n}" for n in ("recipe", "seed", "out") if given(n) != click.core.ParameterSource.DEFAULT]
        changed = (image_size, precision, grad_checkpointing)
        if model or sets or batch_size or lr or compile_ or weights or strict or deterministic or chose or any(
                v is not None for v in changed):
            raise VggnetError("--resume continues a run as it was saved; only --epochs (and --data, for data that "
                              "moved) may change")
        run_dir = Path(resume)
        how = {"model_name": None, "data": data, "recipe": None, "resume": True, "epochs": epochs}
    else:
        model = model or RECIPES[recipe].model or None
        if model is None or data is None:
            raise VggnetError(f"train needs --model (recipe {recipe} names none) and --data (or --resume DIR)")
        overrides = _overrides(sets)
        for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("compile", compile_ or None),
                           ("weights", weights), ("image_size", image_size), ("precision", precision),
                           ("grad_checkpointing", grad_checkpointing)):
            if value is not None:
                overrides[key] = value
        run_dir = Path(out or f"runs/{model}-{Path(str(data)).name}-{recipe}")
        chosen = get_recipe(recipe, overrides)
        _check_model_size(model, chosen.image_size or KNOWN_SIZES.get(str(data), 0))
        _check_sources(chosen)
        how = {"model_name": model, "data": data, "recipe": chosen, "seed": seed,
               "deterministic": deterministic, "strict": strict}
    try:
        result = train(out=run_dir, **how, **common)
    except KeyboardInterrupt:
        latest = run_dir / "checkpoints" / "LATEST"
        kept = f"checkpoint {latest.read_text().strip()} is kept" if latest.exists() else "no epoch had finished"
        click.echo(printable_text(f"interrupted: {kept}; continue with `vggnet train --resume {run_dir}`"), err=True)
        raise SystemExit(130) from None
    finally:
        shutdown_distributed()
    m = result.metrics
    if not m:  # a torchrun process other than rank 0: rank 0 reports
        return
    if m.get("split") == "none":  # val_fraction=0: no score to give
        click.echo(printable_text(f"trained on all {m['train_images']} images; {m['note']}; report: "
                                  f"{result.run_dir / 'report.md'}"))
        return
    from vggnet.evaluate.report import accuracy_text

    click.echo(f"val {accuracy_text(m)}  loss {m['loss']:.4f}  "
               f"({m['images']} images); report: {printable_text(str(result.run_dir / 'report.md'))}")


def _scales(text: str | None) -> tuple[int, ...] | None:
    """--scales as pixel sizes, each in range (that each is at least the checkpoint's crop size is
    checked once the checkpoint is read)."""
    if not text:
        return None
    from vggnet.evaluate.protocol_run import check_scales

    try:
        scales = tuple(int(q) for q in text.split(","))
    except ValueError:
        raise VggnetError(f"--scales takes comma-separated pixel sizes such as 256,384,512, got {text!r}") from None
    return check_scales(scales)


@cli.command("evaluate")
@click.option("--checkpoint", "checkpoints", multiple=True, type=click.Path(exists=True),
              help="Run dir, epoch dir, .safetensors, or an .onnx from export/quantize (int8); repeat for an "
                   "ensemble (posteriors averaged).")
@click.option("--weights", default=None,
              help="Or pretrained weights: a known name (vggnet weights list) or a .pth/.safetensors/.h5 file; "
                   "ImageNet weights score a tree of WordNet-id class folders.")
@click.option("--model", default=None, help="With --weights: the network, only where the file does not say.")
@click.option("--data", required=True, help=DATA_HELP)
@click.option("--split", type=click.Choice(["val", "test", "all"]), default=None,
              help="[val: on the data a run trained on, exactly the images it held out; test where the data has "
                   "one (a CIFAR-10 release, a test/ folder); else 'all'] all: every image, training ones included.")
@click.option("--protocol", type=click.Choice(PROTOCOL_NAMES), default="center", show_default=True,
              help="The paper's test protocols (section 3.2).")
@click.option("--scales", default=None, help="Test scales Q, e.g. 256,384,512 [Q; the paper's three for dense].")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Where metrics.json and the report go.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@device_option()
@click.option("--strict", is_flag=True, help="Stop at the first image that cannot be decoded (default: skip, count).")
@click.option("--quiet", is_flag=True)
def evaluate_command(checkpoints, weights, model, data, split, protocol, scales, out, batch_size, device, strict,
                     quiet) -> None:
    """Score a checkpoint (or an ensemble) or pretrained weights: top-1, top-5, loss, per-class
    report, confusion matrix."""
    from vggnet.evaluate.report import accuracy_text
    from vggnet.evaluate.run import evaluate_checkpoint

    if bool(checkpoints) == (weights is not None):
        raise VggnetError("evaluate needs one of --checkpoint or --weights")
    if model is not None and weights is None:
        raise VggnetError("--model is for --weights (a checkpoint says which network it holds)")
    if weights is not None:
        check_weights_arg(weights)  # before the data is read
    m = evaluate_checkpoint(list(checkpoints) or None, data, out, split=split, protocol=protocol,
                            scales=_scales(scales), batch_size=batch_size, device=device, progress=not quiet,
                            strict=strict, weights=weights, model_name=model)
    skipped = f", {m['skipped']} unreadable skipped" if m["skipped"] else ""
    click.echo(printable_text(f"{m['split']} ({m['images_are']}): {accuracy_text(m)}  "
                              f"loss {m['loss']:.4f}  ({m['images']} images{skipped}); {Path(out) / 'metrics.json'}"))
