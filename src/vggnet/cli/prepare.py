"""``vggnet prepare``: a dataset written once as resized JPEG shards, for training that feeds a GPU."""

from __future__ import annotations

import json

import click

from vggnet.cli import cli
from vggnet.terminal import printable_text


@cli.command("prepare")
@click.argument("data")
@click.argument("out")
@click.option("--short-side", default=256, show_default=True,
              help="Each image's shorter side, at most (never enlarged). Give at least the largest training "
                   "scale S: 256 for the paper's fixed S=256, 512 for scale jittering up to 512.")
@click.option("--quality", default=90, show_default=True, help="JPEG quality of the shards (1-100).")
@click.option("--shard-size", default=1000, show_default=True, help="Images per shard.")
@click.option("--seed", default=0, show_default=True, help="The order training images are shuffled into shards.")
@click.option("--workers", type=int, default=None, help="Processes that write shards (default: every core).")
@click.option("--strict", is_flag=True, help="Stop at the first image that cannot be decoded (default: leave it out).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def prepare_command(data: str, out: str, short_side: int, quality: int, shard_size: int, seed: int,
                    workers: int | None, strict: bool, as_json: bool) -> None:
    """Write DATA (class folders or an archive, ImageNet's layouts included) to OUT as tar shards
    in the WebDataset layout, each image resized to --short-side and re-encoded as JPEG.

    Train or evaluate with --data OUT. Interrupted, the same command resumes where it stopped.
    """
    from vggnet.data.prepare import Options, prepare
    from vggnet.errors import VggnetError

    options = Options(short_side, quality, shard_size, seed)
    options.check()
    if workers is not None and workers < 1:
        raise VggnetError(f"--workers {workers}: give at least 1")
    manifest = prepare(data, out, options, workers=workers, strict=strict)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    for split, entry in manifest["splits"].items():
        size = sum(s["bytes"] for s in entry["shards"])
        click.echo(f"{split}: {entry['images']:,} images in {len(entry['shards'])} shards, {size / 1e6:,.1f} MB")
    if manifest["skipped"]:
        click.echo(f"{len(manifest['skipped'])} images left out (cannot be decoded); listed in the manifest")
    click.echo(printable_text(f"prepared {out}: train with --data {out}"))
