"""Progress bars for long work (downloads, decoding, epochs), drawn by rich on stderr.

stdout stays free for results (``--json``); a disabled bar costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Bar:
    """One task of a rich progress display; ``advance`` by work done, ``note`` for live figures."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def note(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, note=text)


@contextmanager
def progress_bar(description: str, total: float | None, *, enabled: bool = True, unit: str = "items",
                 transient: bool = False) -> Iterator[Bar]:
    """A bar with count, rate, elapsed time and ETA; ``unit='bytes'`` shows sizes and speed;
    ``transient``: erased when done (a step that is usually quick)."""
    if not enabled:
        yield Bar(None, None)
        return
    count = [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), *count,
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[note]}")]
    with Progress(*columns, console=Console(stderr=True), transient=transient) as progress:
        yield Bar(progress, progress.add_task(description, total=total, note=""))
