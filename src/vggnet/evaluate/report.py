"""What a run leaves for people to read: confusion matrix (text and PNG), curves PNG, report.md.

Up to ``LARGE_CONFUSION`` classes the confusion matrix is written out as tables (counts, then rates
normalised by true class) and drawn cell by cell. Above it (ImageNet has 1000 classes) an n x n
table is unreadable and the cell-by-cell figure runs out of memory, so the text lists the largest
off-diagonal cells instead ("top confusions") and the PNG is one bounded image of the normalised
matrix; the full counts stay in metrics.json (``confusion_matrix``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from vggnet.atomic import atomic_write_text
from vggnet.data.sources import printable
from vggnet.errors import MissingDependencyError
from vggnet.evaluate.metrics import normalise_rows
from vggnet.plotting import pyplot, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LARGE_CONFUSION = 30  # above this many classes: top confusions instead of n x n tables, a bounded image
CELL_NUMBERS = 20  # up to this many classes the PNG prints each cell's value
TOP_CONFUSIONS = 20  # how many off-diagonal cells the text and report.md list above LARGE_CONFUSION
TEXT_WIDTH = 80  # the tables keep within this many columns where the class names allow
LARGE_PANEL_INCHES = 10.0  # side of the single panel drawn above LARGE_CONFUSION
SHARP_UP_TO = 1000  # the panel is ~1090 px at save_figure's 120 dpi: up to here each cell gets a pixel of its own
_CORNER = "true \\ predicted"
TOP_K = 5  # the second accuracy shown; with this many classes or fewer it is 100% by construction


def shows_top_k(classes: int) -> bool:
    """Whether top-5 tells anything: with 5 classes or fewer every label is in the top 5, so the
    figure is 100% whatever the model does and the text leaves it out (metrics.json keeps it)."""
    return classes > TOP_K


def accuracy_text(metrics: dict) -> str:
    """``top-1 91.20%  top-5 99.10%`` for the CLI lines, top-5 only where it means something."""
    text = f"top-1 {metrics['top1']:.2%}"
    if shows_top_k(len(metrics["classes"])):
        text += f"  top-{TOP_K} {metrics['top5']:.2%}"
    return text


class Confusion(NamedTuple):
    """One off-diagonal cell: ``count`` images of class ``true`` predicted as ``predicted``."""

    true: int
    predicted: int
    count: int
    share: float  # of the true class's images


def require_report_libraries() -> None:
    """Fail before any work is done if the report cannot be written at the end."""
    for module in ("sklearn", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(
                f"training and evaluation reports need {module}: pip install 'vggnet[report]'"
            ) from None


def _rates(counts: np.ndarray) -> np.ndarray:
    return normalise_rows(torch.from_numpy(counts)).numpy()


def top_confusions(cm: list[list[int]] | np.ndarray, k: int = TOP_CONFUSIONS) -> list[Confusion]:
    """The ``k`` largest non-zero off-diagonal cells, largest first (ties in row-major order)."""
    counts = np.asarray(cm, dtype=np.int64)
    n = counts.shape[0]
    off = counts.copy()
    np.fill_diagonal(off, 0)
    flat = off.ravel()
    picked = np.argsort(-flat, kind="stable")[: min(k, int(np.count_nonzero(flat)))]
    totals = counts.sum(axis=1)
    return [Confusion(int(i // n), int(i % n), int(flat[i]), float(flat[i] / totals[i // n])) for i in picked]


def _table_layout(classes: list[str], cell: int) -> tuple[list[str], list[str], int, list[str]]:
    """Row labels, column labels, cell width and lines to print after the tables.

    Full names as columns if the table then fits ``TEXT_WIDTH``; else numbered columns with
    "index name" rows; else numbers both ways and a legend. If none fits, the narrowest.
    Names are never cut.
    """
    n = len(classes)
    digits = len(str(n - 1))
    index = [str(i) for i in range(n)]
    numbered = max(cell, digits + 1)
    options = [
        (classes, classes, max(cell, *(len(c) + 1 for c in classes)), []),
        ([f"{i:>{digits}} {c}" for i, c in enumerate(classes)], index, numbered,
         ["columns: class index, as numbered in the rows"]),
        (index, index, numbered, ["classes:", *(f"{i:>{digits}}  {c}" for i, c in enumerate(classes))]),
    ]

    def width(option: tuple[list[str], list[str], int, list[str]]) -> int:
        return _label_width(option[0]) + n * option[2]

    return next((o for o in options if width(o) <= TEXT_WIDTH), min(options, key=width))


def _label_width(rows: list[str]) -> int:
    return max(len(_CORNER), *(len(r) for r in rows)) + 1


def _confusion_tables(counts: np.ndarray, classes: list[str]) -> str:
    rates = _rates(counts)
    cell = max(6, len(str(int(counts.max(initial=0)))) + 1)
    rows, columns, cell, footer = _table_layout(classes, cell)
    width = _label_width(rows)

    def table(title: str, values: np.ndarray, fmt: str) -> list[str]:
        head = _CORNER.ljust(width) + "".join(c.rjust(cell) for c in columns)
        body = [label.ljust(width) + "".join(fmt.format(v).rjust(cell) for v in row)
                for label, row in zip(rows, values.tolist(), strict=True)]
        return [title, head, *body]

    parts = [*table("counts", counts, "{}"), "", *table("normalised by true class", rates, "{:.3f}")]
    return "\n".join([*parts, *([""] if footer else []), *footer]) + "\n"


def _error_summary(counts: np.ndarray, top: list[Confusion]) -> str:
    images = int(counts.sum())
    errors = images - int(np.trace(counts))
    held = sum(c.count for c in top)
    return (f"{errors:,} of {images:,} images misclassified ({errors / max(1, images):.1%}); "
            f"the {len(top)} largest off-diagonal cells hold {held:,} of them")


def _top_confusions_text(counts: np.ndarray, classes: list[str]) -> str:
    top = top_confusions(counts)
    lines = [f"confusion matrix: {len(classes)} classes, too many for a table "
             "(the full counts are confusion_matrix in metrics.json)",
             _error_summary(counts, top), "",
             f"top {len(top)} confusions (share: of the true class's images)",
             f"{'#':>3} {'count':>7} {'share':>7}  true -> predicted"]
    digits = len(str(len(classes) - 1))
    lines += [f"{rank:>3} {c.count:>7,} {c.share:>7.1%}  {c.true:>{digits}} {classes[c.true]} -> "
              f"{c.predicted} {classes[c.predicted]}" for rank, c in enumerate(top, 1)]
    return "\n".join(lines) + "\n"


def confusion_text(cm: list[list[int]], classes: list[str]) -> str:
    """Counts, then rates normalised by true class, as aligned tables (rows true, columns predicted);
    above ``LARGE_CONFUSION`` classes, the ``TOP_CONFUSIONS`` largest off-diagonal cells instead."""
    counts = np.asarray(cm, dtype=np.int64).reshape(len(classes), len(classes))
    if len(classes) > LARGE_CONFUSION:
        return _top_confusions_text(counts, classes)
    return _confusion_tables(counts, classes)


def _small_confusion_figure(counts: np.ndarray, classes: list[str]) -> Figure:
    plt = pyplot()
    n = len(classes)
    size = max(5.0, 0.45 * n + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    panels = ((axes[0], counts.astype(float), "counts", "{:.0f}"),
              (axes[1], _rates(counts), "normalised by true class", "{:.2f}"))
    for ax, values, title, fmt in panels:
        im = ax.imshow(values, cmap="Blues")
        ax.set_title(title)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 45, ha="right" if n <= 10 else "center")
        ax.set_yticks(range(n), classes)
        if n <= CELL_NUMBERS:
            top = values.max() or 1
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] > 0.6 * top else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def _large_confusion_figure(counts: np.ndarray) -> Figure:
    """One panel of a fixed size, whatever the number of classes: rates as an image, ticks every few classes."""
    plt = pyplot()
    from matplotlib.colors import PowerNorm
    from matplotlib.ticker import MaxNLocator

    n = len(counts)
    fig, ax = plt.subplots(figsize=(LARGE_PANEL_INCHES + 1.5, LARGE_PANEL_INCHES))
    sharp = n <= SHARP_UP_TO  # else average cells into pixels rather than drop some
    im = ax.imshow(_rates(counts), cmap="Blues", norm=PowerNorm(0.5, vmin=0),
                   interpolation="nearest" if sharp else "antialiased")
    ax.set_title(f"normalised by true class, {n} classes (square-root colour scale)")
    ax.set_xlabel("predicted class index")
    ax.set_ylabel("true class index")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(10, integer=True))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's images")
    fig.tight_layout()
    return fig


def confusion_figure(cm: list[list[int]], classes: list[str]) -> Figure:
    """Counts and row-normalised rates (recall on the diagonal), side by side; above ``LARGE_CONFUSION``
    classes, the rates alone as one bounded image without per-cell text or class names."""
    counts = np.asarray(cm, dtype=np.int64).reshape(len(classes), len(classes))
    if len(classes) > LARGE_CONFUSION:
        return _large_confusion_figure(counts)
    return _small_confusion_figure(counts, classes)


def curves_figure(history: list[dict], top5: bool = True) -> Figure:
    """Loss, top-1 (and top-5 where ``top5``: not with 5 classes or fewer) and learning rate per epoch."""
    plt = pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    scored = any(math.isfinite(r["val_loss"]) for r in history)  # val_fraction=0: training curves only
    if scored:
        axes[0].plot(epochs, [r["val_loss"] for r in history], "o-", label="val")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [100 * r["train_top1"] for r in history], "o-", label="train top-1")
    if scored:
        axes[1].plot(epochs, [100 * r["val_top1"] for r in history], "o-", label="val top-1")
    if top5 and scored:
        axes[1].plot(epochs, [100 * r["val_top5"] for r in history], "o--", label="val top-5")
    axes[1].set_title("accuracy (%)")
    axes[2].plot(epochs, [r["lr"] for r in history], "o-")
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    return fig


def _md(name: str) -> str:
    """A class name that cannot break a markdown table row."""
    return name.replace("|", "\\|")


def _markdown_confusion(metrics: dict) -> list[str]:
    cm, classes = metrics["confusion_matrix"], metrics["classes"]
    if len(classes) <= LARGE_CONFUSION:
        return ["## Confusion matrix (rows: true, columns: predicted)", "", "```",
                confusion_text(cm, classes).rstrip(), "```", ""]
    counts = np.asarray(cm, dtype=np.int64)
    top = top_confusions(counts)
    lines = [f"## Top {len(top)} confusions", "",
             f"{len(classes)} classes are too many for a table: the full counts are `confusion_matrix` in "
             "metrics.json, the picture is confusion.png. " + _error_summary(counts, top) + ".", "",
             "| # | true | predicted | images | share of true class |", "|---:|---|---|---:|---:|"]
    lines += [f"| {rank} | {c.true} {_md(classes[c.true])} | {c.predicted} {_md(classes[c.predicted])} "
              f"| {c.count:,} | {c.share:.1%} |" for rank, c in enumerate(top, 1)]
    return [*lines, ""]


def _markdown_history(history: list[dict], top5: bool) -> list[str]:
    """The per-epoch table; the val top-5 column only where ``top5``."""
    five = (" val top-5 |", "---:|") if top5 else ("", "")
    lines = ["## Per epoch", "", f"| epoch | lr | train loss | train top-1 | val loss | val top-1 |{five[0]} s |",
             f"|---:|---:|---:|---:|---:|---:|{five[1]}---:|"]
    def cell(value: float, fmt: str) -> str:
        return format(value, fmt) if math.isfinite(value) else "-"  # nothing held out

    for r in history:
        five_cell = f" {cell(r['val_top5'], '.2%')} |" if top5 else ""
        lines.append(f"| {r['epoch']} | {r['lr']:.3g} | {r['train_loss']:.4f} | {r['train_top1']:.2%} "
                     f"| {cell(r['val_loss'], '.4f')} | {cell(r['val_top1'], '.2%')} |{five_cell} {r['seconds']:.1f} |")
    return lines


def _markdown_unscored(metrics: dict, history: list[dict], title: str, pictures: list[str]) -> str:
    """A run that held nothing out: how it trained, and how to score it."""
    lines = [f"# {title}", "", f"Trained on all {metrics['train_images']:,} images; {metrics['note']}.", "",
             f"Last epoch: training loss {metrics['train_loss']:.4f}, training top-1 {metrics['train_top1']:.2%} "
             "(on augmented images, as they trained).", ""]
    lines += [f"![{p}]({p})" for p in pictures] + [""]
    return "\n".join(lines + _markdown_history(history, shows_top_k(len(metrics["classes"])))) + "\n"


def _markdown(metrics: dict, history: list[dict], title: str, pictures: list[str]) -> str:
    top5 = shows_top_k(len(metrics["classes"]))
    scores = [("top-1", f"{metrics['top1']:.2%}"), *([("top-5", f"{metrics['top5']:.2%}")] if top5 else []),
              ("loss", f"{metrics['loss']:.4f}")]
    lines = [f"# {title}", "", f"Split `{metrics.get('split', 'val')}`: {metrics['images']:,} images"
             + (f" ({metrics['skipped']} undecodable, skipped)" if metrics.get("skipped") else "") + ".", "",
             "| " + " | ".join(k for k, _ in scores) + " |", "|" + "---:|" * len(scores),
             "| " + " | ".join(v for _, v in scores) + " |", ""]
    lines += [f"![{p}]({p})" for p in pictures] + [""]
    lines += ["## Per class", "", "| class | precision | recall | F1 | images |", "|---|---:|---:|---:|---:|"]
    for name, r in metrics["per_class"].items():
        lines.append(f"| {_md(name)} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} "
                     f"| {r['support']:.0f} |")
    lines += ["", *_markdown_confusion(metrics)]
    if history:
        lines += _markdown_history(history, top5)
    return "\n".join(lines) + "\n"


def write_report(out: Path, metrics: dict, history: list[dict], title: str) -> Path:
    """Write confusion.txt, confusion.png, curves.png (when there is a history) and report.md.
    Class names are shown printable (a name that is not UTF-8 keeps its bytes as ``\\xNN``)."""
    out = Path(out)
    if metrics.get("split") == "none":  # nothing held out: the training curves, no scores
        save_figure(curves_figure(history, False), out / "curves.png")
        return atomic_write_text(out / "report.md", _markdown_unscored(metrics, history, title, ["curves.png"]))
    metrics = {**metrics, "classes": [printable(c) for c in metrics["classes"]],
               "per_class": {printable(k): v for k, v in metrics["per_class"].items()}}
    atomic_write_text(out / "confusion.txt", confusion_text(metrics["confusion_matrix"], metrics["classes"]))
    save_figure(confusion_figure(metrics["confusion_matrix"], metrics["classes"]), out / "confusion.png")
    pictures = ["confusion.png"]
    if history:
        save_figure(curves_figure(history, shows_top_k(len(metrics["classes"]))), out / "curves.png")
        pictures.insert(0, "curves.png")
    return atomic_write_text(out / "report.md", _markdown(metrics, history, title, pictures))
