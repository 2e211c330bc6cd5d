"""``vggnet predict``: top-k labels for image files, from a checkpoint or pretrained weights."""

from __future__ import annotations

import json

import click
from rich.table import Table

from vggnet.cli import cli
from vggnet.cli.analysis import _console
from vggnet.errors import VggnetError
from vggnet.terminal import table_cell


@cli.command("predict")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--checkpoint", type=click.Path(exists=True), default=None, help="A run dir, epoch dir or .safetensors.")
@click.option("--weights", default=None,
              help="A known name (see `vggnet weights list`) or a weight file: .pth, .safetensors, Keras .h5.")
@click.option("--model", default=None, help="The network, only where the weight file does not say (e.g. vgg16).")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help='A JSON array: {"image", "top5": [{"index", "label", "probability"}, ...]} per image.')
def predict_command(images, checkpoint, weights, model, top_k, as_json) -> None:
    """Top-k labels with probabilities for each IMAGE (smaller side to 256, centre 224 crop)."""
    from vggnet.evaluate.predict import predict_images

    if (checkpoint is None) == (weights is None):
        raise VggnetError("predict needs one of --checkpoint or --weights")
    results = predict_images(checkpoint or weights, list(images), top_k=top_k, model_name=model)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    table = Table("image", "rank", "label", "probability")
    for r in results:
        for rank, t in enumerate(r[f"top{top_k}"], start=1):
            table.add_row(table_cell(r["image"] if rank == 1 else ""), str(rank), table_cell(t["label"]),
                          f"{t['probability']:.2%}")
    _console().print(table)
