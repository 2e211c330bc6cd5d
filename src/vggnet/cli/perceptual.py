"""``vggnet lpips A B``: the LPIPS v0.1 (VGG) distance between two images or two folders."""

from __future__ import annotations

import json

import click
from rich.table import Table

from vggnet.cli import cli
from vggnet.cli.analysis import _console
from vggnet.cli.options import check_output_file, check_weights_arg, device_option
from vggnet.terminal import printable_text, table_cell


def check_backbone(backbone: str) -> None:
    """A backbone that cannot be LPIPS's is one line before any image is read or file downloaded."""
    from pathlib import Path

    from vggnet.errors import CheckpointError, VggnetError
    from vggnet.weights.hub import weight_file

    if Path(backbone).is_dir():
        raise CheckpointError(f"{backbone} is a directory; --backbone takes a VGG-16 weight file or name")
    check_weights_arg(backbone)  # past it, a path that does not exist is a known name
    known = None if Path(backbone).exists() else weight_file(backbone)
    if known is not None and known.name != "vgg16.torchvision":
        raise VggnetError(f"LPIPS v0.1 is calibrated on torchvision's VGG-16; {backbone} is {known.model} from "
                          f"{known.source}: pass vgg16 or a torchvision-layout VGG-16 file")


@cli.command("lpips")
@click.argument("a", type=click.Path(exists=True))
@click.argument("b", type=click.Path(exists=True))
@click.option("--backbone", default="vgg16", show_default=True,
              help="torchvision-layout VGG-16 weights: a known name (downloaded once) or a .pth/.safetensors file.")
@click.option("--json", "as_json", is_flag=True,
              help='Print JSON: {"mean", "pairs": [{"name", "a", "b", "lpips"} or {..., "error"}]}.')
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write one row per pair: name, a, b, lpips, error.")
@device_option()
def lpips_command(a, b, backbone, as_json, csv_path, device) -> None:
    """LPIPS between images A and B (a number: 0 for identical images), or between every pair of
    files of the same relative name in folders A and B. Images are compared at their own size."""
    from vggnet.atomic import atomic_write_text
    from vggnet.device import resolve_device
    from vggnet.perceptual import LPIPS
    from vggnet.perceptual.pairs import pairs, rows_csv, score_pairs

    check_output_file(csv_path)
    check_backbone(backbone)
    found, only_a, only_b = pairs(a, b)  # folders are listed before the network is loaded
    for side, names in (("A", only_a), ("B", only_b)):
        if names:
            click.echo(f"warning: {len(names)} image(s) only in {side} (skipped), e.g. {printable_text(names[0])}",
                       err=True)
    dev = resolve_device(device)
    metric = LPIPS(backbone=backbone).to(dev)
    rows = score_pairs(metric, found, device=str(dev), progress=True)
    scored = [r["lpips"] for r in rows if "lpips" in r]
    mean = sum(scored) / len(scored)
    if len(scored) < len(rows):
        click.echo(f"warning: {len(rows) - len(scored)} of {len(rows)} pair(s) could not be scored (their rows "
                   f"say why); the mean is over the {len(scored)} scored", err=True)
    if csv_path is not None:
        atomic_write_text(csv_path, rows_csv(rows))
    if as_json:
        click.echo(json.dumps({"mean": mean, "pairs": rows}, indent=2))
    elif len(rows) == 1:
        click.echo(f"{rows[0]['lpips']:.6f}")
    else:
        table = Table("name", "lpips")
        for r in rows:
            table.add_row(table_cell(r["name"]), f"{r['lpips']:.6f}" if "lpips" in r else
                          table_cell(f"error: {r['error']}"))
        table.add_section()
        table.add_row(f"mean of {len(scored)}", f"{mean:.6f}")
        _console().print(table)
