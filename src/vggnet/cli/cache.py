"""``vggnet cache list | clear``: the decoded-image cache (small-image datasets decoded once)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from vggnet.cli import cli
from vggnet.cli.analysis import _console
from vggnet.terminal import printable_text, table_cell

MB = 10**6


def _mb(size: int) -> str:
    return f"{size / MB:,.1f} MB"


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


@cli.group("cache")
def cache_group() -> None:
    """The decoded-image cache: small-image datasets decoded once so later runs start at once.

    It lives in $VGGNET_HOME/folders (default ~/.cache/vggnet/folders) and is kept under
    $VGGNET_CACHE_MAX_GB GiB (default 20) by removing the least recently used entries.
    """


@cache_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(as_json: bool) -> None:
    """Each entry: images, side, classes, size and when it was last used; most recent first."""
    from rich.table import Column, Table

    from vggnet.data.array_cache import cache_entries, cache_folder, max_bytes

    bound = max_bytes()  # a bad $VGGNET_CACHE_MAX_GB is reported whatever the cache holds
    entries = cache_entries()
    folder = cache_folder()
    if as_json:
        rows = [{"entry": e.path.name, "path": str(e.path), "size": e.size, "last_used": e.mtime, "images": e.images,
                 "side": e.side, "classes": e.classes, "damaged": e.damaged} for e in entries]
        click.echo(json.dumps(rows, indent=2))
        return
    if not entries:
        click.echo(f"the cache is empty ({printable_text(str(folder))})")
        _say_indexes()
        return
    right = {"justify": "right"}
    table = Table("entry", Column("images", **right), Column("side", **right), Column("classes", **right),
                  Column("size", **right), "last used")
    for e in entries:
        used = datetime.fromtimestamp(e.mtime).strftime("%Y-%m-%d %H:%M")
        if e.damaged:
            table.add_row(table_cell(e.path.stem), "damaged", "", "", _mb(e.size), used)
        else:
            table.add_row(table_cell(e.path.stem), f"{e.images:,}", str(e.side), str(e.classes), _mb(e.size), used)
    _console().print(table)
    for e in entries:
        if e.damaged:
            click.echo(printable_text(f"{e.path.stem} is damaged ({e.damaged}); 'vggnet cache clear' removes it "
                                      "(reading it does too)"))
    total = sum(e.size for e in entries)
    where = printable_text(str(folder))
    click.echo(f"{_entries(len(entries))}, {_mb(total)} in {where} (bound {bound / 2**30:.3g} GiB)")
    _say_indexes()


def _say_indexes() -> None:
    """The folder indexes beside the decoded images (kept until cleared; each is a few MB)."""
    from vggnet.data.scan_cache import index_folder

    folder = index_folder()
    sizes = [p.stat().st_size for p in folder.glob("*.safetensors")] if folder.is_dir() else []
    if sizes:
        click.echo(f"{len(sizes)} folder index{'es' if len(sizes) != 1 else ''}, {_mb(sum(sizes))} in "
                   f"{printable_text(str(folder))}")


@cache_group.command("clear")
def clear_command() -> None:
    """Remove every entry (they are decoded again when needed) and every cached folder index;
    downloads are left alone."""
    from vggnet.data.array_cache import cache_folder, clear_cache
    from vggnet.data.scan_cache import clear_indexes, index_folder

    entries, freed = clear_cache()
    click.echo(f"removed {_entries(entries)} ({_mb(freed)}) from {printable_text(str(cache_folder()))}")
    indexes, index_bytes = clear_indexes()
    if indexes:  # folder indexes: listed again at the next run (seconds, not a decode)
        click.echo(f"removed {indexes} folder index{'es' if indexes != 1 else ''} ({_mb(index_bytes)}) from "
                   f"{printable_text(str(index_folder()))}")
