"""``vggnet explain`` (Grad-CAM and friends) and ``vggnet show filters|activations|field``."""

from __future__ import annotations

import click

from vggnet.cli import cli
from vggnet.cli.options import check_output_dir, check_weights_arg, device_option, expand_images
from vggnet.errors import VggnetError

OUT_HELP = "Folder for the PNGs (created; vggnet's files of the same names are replaced, nothing else)."


def _weights_options(command):
    """--checkpoint / --weights / --model, as predict takes them."""
    for option in reversed([
        click.option("--checkpoint", type=click.Path(exists=True), default=None,
                     help="A run dir, epoch dir or .safetensors."),
        click.option("--weights", default=None,
                     help="A known name (see `vggnet weights list`, e.g. vgg16 or vgg_fast.cifar10) or a weight file."),
        click.option("--model", default=None, help="The network, only where the weight file does not say."),
    ]):
        command = option(command)
    return command


def _source(checkpoint: str | None, weights: str | None, out: str) -> str:
    """The model to load, and --out checked, before anything is loaded or read."""
    if (checkpoint is None) == (weights is None):
        raise VggnetError("pass one of --checkpoint or --weights")
    check_output_dir(out)
    if weights is not None:
        check_weights_arg(weights)
    return checkpoint or weights


@cli.command("explain")
@click.argument("images", nargs=-1, required=True, callback=expand_images, type=click.Path(exists=True))
@_weights_options
@click.option("--layer", default=None,
              help="Grad-CAM's layer by paper name (relu5_3, conv4_2, ...), feature level (block3) or module "
                   "path [the ReLU after the last convolution].")
@click.option("--class", "classes", multiple=True,
              help="A class to explain, by name or index (repeatable) [the --top most probable].")
@click.option("--top", type=click.IntRange(min=1, max=20), default=3, show_default=True,
              help="Explain the most probable classes, when no --class is given.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help=OUT_HELP)
@device_option()
def explain_command(images, checkpoint, weights, model, layer, classes, top, out, device) -> None:
    """Where the network finds each class in each IMAGE (files or folders): Grad-CAM, Grad-CAM++,
    gradient saliency and guided backprop as PNG overlays titled with class and probability, and a
    summary figure per image, in OUT/IMAGE-STEM/."""
    from vggnet.device import resolve_device
    from vggnet.explain import explain_images

    source = _source(checkpoint, weights, out)
    report = explain_images(source, images, out, layer=layer, classes=classes, top=top,
                            model_name=model, device=str(resolve_device(device)), progress=True)
    for item in report["images"]:
        if "error" in item:
            continue
        labels = ", ".join(f"{c['label']} {c['probability']:.1%}" for c in item["classes"])
        click.echo(f"{item['image']} -> {item['folder']}/summary.png  ({labels})")


@cli.group("show")
def show_group() -> None:
    """What the summary table describes, as pictures: filters, activation maps, receptive fields."""


@show_group.command("filters")
@_weights_options
@click.option("--layer", default=None, help="A convolution by paper name [the first, conv1_1].")
@click.option("--out", type=click.Path(file_okay=False), required=True, help=OUT_HELP)
def filters_command(checkpoint, weights, model, layer, out) -> None:
    """The first layer's filters (or another convolution's) as a grid of small images."""
    from vggnet.explain import show_filters

    click.echo(show_filters(_source(checkpoint, weights, out), out, layer, model))


@show_group.command("activations")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@_weights_options
@click.option("--layer", required=True, help="A layer by paper name (relu3_1, conv5_3, pool2, ...).")
@click.option("--count", type=click.IntRange(1, 256), default=32, show_default=True,
              help="How many channels to draw, most active first.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help=OUT_HELP)
def activations_command(image, checkpoint, weights, model, layer, count, out) -> None:
    """The activation maps of one layer for IMAGE, most active channels first."""
    from vggnet.explain import show_activations

    click.echo(show_activations(_source(checkpoint, weights, out), image, out, layer, count, model))


def _unit(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        row, col = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not ROW,COL (e.g. 3,4)", ctx, param) from None
    return row, col


@show_group.command("field")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@_weights_options
@click.option("--layer", default=None, help="A layer by paper name [the ReLU after the last convolution].")
@click.option("--unit", callback=_unit, default=None, help="ROW,COL of the unit in the layer's map [the centre].")
@click.option("--out", type=click.Path(file_okay=False), required=True, help=OUT_HELP)
def field_command(image, checkpoint, weights, model, layer, unit, out) -> None:
    """The input pixels one unit of a layer sees (its receptive field), drawn on IMAGE."""
    from vggnet.explain import show_field

    click.echo(show_field(_source(checkpoint, weights, out), image, out, layer, unit, model))
