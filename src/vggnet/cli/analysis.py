"""``vggnet models | summary | compare | filters``: the architecture analysis commands."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console

from vggnet.cli import cli
from vggnet.cli.options import check_output_file, image_size_option, precision_option
from vggnet.errors import VggnetError
from vggnet.names import HEAD_NAMES, TRACE_PRECISIONS
from vggnet.terminal import printable_text

# Imports of torch and the model code happen inside each command: `vggnet --help` stays fast.


def _console() -> Console:
    # Piped output gets a wide fixed width so --wide tables are not squeezed into 80 columns
    # (the default tables fit 80 columns anyway).
    console = Console()
    return console if console.is_terminal else Console(width=200, color_system=None)


@contextmanager
def _spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while tracing, only when stderr is a terminal (never in pipes or logs);
    it appears after a second, so quick traces print nothing extra."""
    if not sys.stderr.isatty():
        yield
        return
    status = Console(stderr=True).status(message, spinner="dots")
    timer = threading.Timer(1.0, status.start)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        status.stop()


WIDE = click.option("--wide", is_flag=True, help="Exact integers instead of compact units (wider than 80 columns).")


@cli.command("models")
@click.argument("pattern", default="*")
def models_command(pattern: str) -> None:
    """List the registered networks (shell-style PATTERN, e.g. 'vgg*_bn', or a paper letter: D, 'A*')."""
    import fnmatch

    from vggnet.models.registry import ALIASES, list_models

    paper = {name: alias for alias, name in ALIASES.items()}
    by_letter = {name for alias, name in ALIASES.items() if fnmatch.fnmatchcase(alias, pattern.upper())}
    names = sorted(set(list_models(pattern)) | by_letter)
    if not names:
        raise VggnetError(f"no registered model matches {pattern!r}; 'vggnet models' lists them all")
    for name in names:
        click.echo(f"{name:<16} {paper.get(name, '')}")


@cli.command("summary")
@click.argument("model")
@image_size_option(224, aliases=("--input-size",))
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Batch for the training-memory figure (the paper's 256).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "none"]), default="sgd", show_default=True)
@precision_option(TRACE_PRECISIONS, "fp32", "The dtype that parameters and activations are counted in.",
                  aliases=("--dtype",))
@click.option("--num-classes", type=click.IntRange(min=1), default=None, help="Classes of the last layer.")
@click.option("--head", type=click.Choice(HEAD_NAMES), default=None, help="VGG head (default: imagenet).")
@click.option("--batch-norm/--no-batch-norm", default=None, help="VGG with or without BatchNorm.")
@click.option("--aux/--no-aux", default=None,
              help="GoogLeNet with or without its training-only auxiliary heads (default: with).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Also save a per-layer chart.")
@WIDE
def summary_command(model: str, image_size: int, batch_size: int, optimizer: str, precision: str,
                    num_classes: int | None, head: str | None, batch_norm: bool | None, aux: bool | None,
                    as_json: bool, png: str | None, wide: bool) -> None:
    """Per-layer shapes, parameters, MACs, memory and receptive field of MODEL."""
    import torch

    from vggnet.analysis import render
    from vggnet.analysis.trace import trace
    from vggnet.models.registry import resolve_name
    from vggnet.plotting import save_figure

    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    check_output_file(png)  # before anything is printed
    kwargs = {k: v for k, v in (("num_classes", num_classes), ("head", head), ("batch_norm", batch_norm),
                                ("aux_logits", aux)) if v is not None}
    with _spinner(f"tracing {model}"):
        result = trace(resolve_name(model), input_size=image_size, dtype=dtypes[precision], **kwargs)
    if as_json:
        click.echo(json.dumps(render.trace_to_dict(result, batch_size, optimizer)))
    else:
        console = _console()
        console.print(render.trace_table(result, wide))
        for line in render.totals_lines(result, batch_size, optimizer):
            console.print(line, highlight=False)
        console.print("\nassumptions:", highlight=False)
        width = min(console.width, 100) if not wide else console.width  # prose wraps; tables decide their own width
        for line in render.assumptions(result, batch_size, optimizer):
            console.print(textwrap.fill(line, width, initial_indent="  - ", subsequent_indent="    "), highlight=False)
    if png:
        path = save_figure(render.trace_figure(result), png)
        click.echo(f"saved {printable_text(str(path))}", err=as_json)


@cli.command("compare")
@click.argument("models", nargs=-1)
@image_size_option(224, minimum=32, aliases=("--input-size",))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of the table.")
@click.option("--png", type=click.Path(dir_okay=False), default=None,
              help="Also save a chart of MACs against published top-1.")
@WIDE
def compare_command(models: tuple[str, ...], image_size: int, as_json: bool, png: str | None, wide: bool) -> None:
    """Every VGG configuration next to AlexNet, GoogLeNet, ResNet and DenseNet (or MODELS).
    Models that cannot take --image-size are left out, with a note."""
    from vggnet.analysis import render
    from vggnet.analysis.compare import DEFAULT_MODELS, compare, too_small
    from vggnet.models.registry import resolve_name
    from vggnet.plotting import save_figure

    input_size = image_size
    check_output_file(png)  # before anything is printed
    names = [resolve_name(m) for m in models] or DEFAULT_MODELS
    with _spinner(f"tracing {len(names)} networks"):
        rows = compare(names, input_size)
    skipped = {n: need for n, need in too_small(names, input_size).items() if n not in {r.name for r in rows}}
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows]))
        for note in render.compare_notes([], skipped):
            click.echo(f"note: {note}", err=True)
    else:
        console = _console()
        console.print(render.compare_table(rows, input_size, wide))
        for note in render.compare_notes(rows, skipped):
            console.print(note, highlight=False)
    if png:
        path = save_figure(render.compare_figure(rows), png)
        click.echo(f"saved {printable_text(str(path))}", err=as_json)


@cli.command("filters")
@click.option("--channels", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--max-stack", default=4, show_default=True, type=click.IntRange(min=2, max=8),
              help="Compare stacks of 2..N 3x3 layers.")
@click.option("--bottleneck", default=32, show_default=True, type=click.IntRange(min=1),
              help="Channels of the 1x1 reduction.")
@click.option("--size", default=56, show_default=True, type=click.IntRange(min=1), help="Feature map side for MACs.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--wide", is_flag=True, help="Exact counts (wider than 80 columns).")
def filters_command(channels: int, max_stack: int, bottleneck: int, size: int, as_json: bool, wide: bool) -> None:
    """The 'small filters, deeper networks' arithmetic, counted from built layers."""
    from vggnet.analysis import render
    from vggnet.analysis.filters import filter_arithmetic

    rows = filter_arithmetic(channels, max_stack, bottleneck, size)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows]))
        return
    _console().print(render.filters_table(rows, wide=wide))
    three = next(r for r in rows if r.small.receptive_field == 7)
    click.echo(f"three 3x3 layers: 27C^2 = {three.small.params:,}; one 7x7: 49C^2 = {three.large.params:,} "
               f"({three.param_ratio - 1:.0%} more, the paper's 81%)")
