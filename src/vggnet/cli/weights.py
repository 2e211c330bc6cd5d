"""``vggnet weights list | download | convert``: the published pretrained files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vggnet.cli import cli
from vggnet.cli.analysis import _console
from vggnet.terminal import printable_text, table_cell


@cli.group("weights")
def weights_group() -> None:
    """Pretrained weights: torchvision's VGG files and Keras's VGG16/VGG19 HDF5 files."""


@weights_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """What is known, where it comes from, and whether it is in the cache."""
    from rich.table import Table

    from vggnet.weights.hub import list_weights

    rows = list_weights()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "model", "source", "cached", "url")
    for r in rows:
        table.add_row(*(table_cell(r[k]) for k in ("name", "model", "source")), "yes" if r["cached"] else "",
                      table_cell(r["url"]))
    _console().print(table)


@weights_group.command("download")
@click.argument("names", nargs=-1, required=True)
@click.option("--url", default=None, help="Fetch from this URL instead (a mirror); the checksum still applies.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def download_command(names: tuple[str, ...], url: str | None, quiet: bool) -> None:
    """Fetch NAMES into the cache (resumable, checksum-verified); print where each file is."""
    from vggnet.weights.hub import fetch_weights

    for name in names:
        click.echo(printable_text(str(fetch_weights(name, url=url, progress=not quiet))))


@weights_group.command("convert")
@click.argument("weights")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--model", default=None, help="The network, only where the file does not say.")
def convert_command(weights: str, out: str, model: str | None) -> None:
    """Write WEIGHTS (a known name or a .pth/.h5 file) as a vggnet .safetensors checkpoint.

    The result carries its network, class names and preprocessing, so `evaluate`, `predict` and
    `export` take it as --checkpoint, and it loads without h5py.
    """
    from vggnet.weights.load import save_for_inference

    path = save_for_inference(weights, Path(out), model)
    click.echo(f"wrote {printable_text(str(path))}")
