"""``vggnet predict``: top-k labels for image files and folders, from a checkpoint or pretrained weights."""

from __future__ import annotations

import json

import click
from rich.table import Table

from vggnet.cli import cli
from vggnet.cli.analysis import _console
from vggnet.cli.options import check_output_file, device_option, expand_images
from vggnet.errors import VggnetError
from vggnet.terminal import table_cell

CSV_HELP = ("Also write the results as CSV, one row per image: image, rank1_label, rank1_probability, ..., "
            "rankK_probability, error. Wide rather than one row per (image, rank), so pandas.read_csv gives "
            "one row per file, to join with other per-image tables; an unreadable image has its error filled.")


@cli.command("predict")
@click.argument("images", nargs=-1, required=True, callback=expand_images, type=click.Path(exists=True))
@click.option("--checkpoint", type=click.Path(exists=True), default=None, help="A run dir, epoch dir or .safetensors.")
@click.option("--weights", default=None,
              help="A known name (see `vggnet weights list`) or a weight file: .pth, .safetensors, Keras .h5, "
                   "or an .onnx written by export or quantize (int8).")
@click.option("--model", default=None, help="The network, only where the weight file does not say (e.g. vgg16).")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images run through the network at once.")
@device_option()
@click.option("--json", "as_json", is_flag=True,
              help='A JSON array: {"image", "top5": [{"index", "label", "probability"}, ...]} per image, '
                   'or {"image", "error"} for one that could not be read.')
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None, help=CSV_HELP)
def predict_command(images, checkpoint, weights, model, top_k, batch_size, device, as_json, csv_path) -> None:
    """Top-k labels with probabilities for each IMAGE, a file or a folder of them, sized as the
    weights were trained (ImageNet weights: smaller side to 256, centre 224 crop; CIFAR-10 weights:
    smaller side to 32, centre 32x32: a square image whole). An unreadable image is a warning and
    skipped; none readable is an error."""
    from vggnet.atomic import atomic_write_text
    from vggnet.evaluate.predict import predict_images, results_csv

    if (checkpoint is None) == (weights is None):
        raise VggnetError("predict needs one of --checkpoint or --weights")
    check_output_file(csv_path)
    results = predict_images(checkpoint or weights, images, top_k=top_k, model_name=model, batch_size=batch_size,
                             device=device, progress=True)
    if csv_path is not None:
        atomic_write_text(csv_path, results_csv(results))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    _print_table(results, top_k)


def _print_table(results: list[dict], top_k: int) -> None:
    table = Table("image", "rank", "label", "probability")
    for r in results:
        if "error" in r:
            table.add_row(table_cell(r["image"]), "", table_cell(f"unreadable: {r['error']}"), "")
            continue
        for rank, t in enumerate(r[f"top{top_k}"], start=1):
            table.add_row(table_cell(r["image"] if rank == 1 else ""), str(rank), table_cell(t["label"]),
                          f"{t['probability']:.2%}")
    _console().print(table)
