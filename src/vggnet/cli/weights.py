"""``vggnet weights list | download | convert``: the published pretrained files."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

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
    from vggnet.weights.hub import list_weights

    rows = list_weights()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    console = _console()
    console.print(weights_table(rows))
    for line in url_lines(rows):  # whole, never wrapped: a URL cut at 80 columns cannot be pasted
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _size(name: str) -> str:
    """The file's size in MiB; ``<=`` where only an upper bound is on record."""
    from vggnet.weights.hub import KNOWN_WEIGHTS

    w = KNOWN_WEIGHTS.get(name)
    if w is None:
        return ""
    return f"{'' if w.size_exact else '<= '}{w.size / 2**20:,.0f} MiB"


def weights_table(rows: list[dict]) -> Table:
    """name, model, source, size, cached: within 80 columns. The URLs are too long for a cell
    (up to ~110 characters), so they follow the table as lines of their own (:func:`url_lines`)."""
    from rich.table import Table

    table = Table("name", "model", "source", "size", "cached")
    for r in rows:
        table.add_row(*(table_cell(r[k]) for k in ("name", "model", "source")), _size(str(r["name"])),
                      "yes" if r["cached"] else "")
    return table


def url_lines(rows: list[dict]) -> list[str]:
    """``name: URL`` per file, each URL whole, and where a manually downloaded file goes."""
    from vggnet.cache import cache_dir

    lines = ["", "URLs (for a manual download):"]
    lines += [printable_text(f"{r['name']}: {r['url']}") for r in rows]
    lines += ["a file downloaded by hand goes in this folder:", printable_text(str(cache_dir("weights")))]
    return lines


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
