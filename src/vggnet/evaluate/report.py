"""What a run leaves for people to read: confusion matrix (text and PNG), curves PNG, report.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vggnet.atomic import atomic_write_text
from vggnet.errors import MissingDependencyError
from vggnet.evaluate.metrics import normalise_rows
from vggnet.plotting import pyplot, save_figure


def require_report_libraries() -> None:
    """Fail before any work is done if the report cannot be written at the end."""
    for module in ("sklearn", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError(
                f"training and evaluation reports need {module}: pip install 'vggnet[report]'"
            ) from None


def confusion_text(cm: list[list[int]], classes: list[str]) -> str:
    """Counts, then rates normalised by true class, as aligned tables (rows true, columns predicted)."""
    rates = normalise_rows(torch.tensor(cm)).tolist()
    corner = "true \\ predicted"
    width = max(len(corner), *(len(c) for c in classes)) + 1
    cell = max(7, len(str(max(max(r) for r in cm))) + 1)

    def table(title: str, values: list[list[float]], fmt: str) -> list[str]:
        head = corner.ljust(width) + "".join(c[: cell - 1].rjust(cell) for c in classes)
        rows = [name.ljust(width) + "".join(fmt.format(v).rjust(cell) for v in row)
                for name, row in zip(classes, values, strict=True)]
        return [title, head, *rows]

    return "\n".join([*table("counts", cm, "{}"), "", *table("normalised by true class", rates, "{:.3f}")]) + "\n"


def confusion_figure(cm: list[list[int]], classes: list[str]):
    """Counts and row-normalised rates (recall on the diagonal), side by side."""
    plt = pyplot()
    counts = np.asarray(cm, dtype=float)
    rates = normalise_rows(torch.tensor(cm)).numpy()
    n = len(classes)
    size = max(5.0, 0.45 * n + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    panels = ((axes[0], counts, "counts", "{:.0f}"), (axes[1], rates, "normalised by true class", "{:.2f}"))
    for ax, values, title, fmt in panels:
        im = ax.imshow(values, cmap="Blues")
        ax.set_title(title)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 45, ha="right" if n <= 10 else "center")
        ax.set_yticks(range(n), classes)
        if n <= 20:
            top = values.max() or 1
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] > 0.6 * top else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def curves_figure(history: list[dict]):
    """Loss, top-1 and learning rate per epoch, train and validation."""
    plt = pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    axes[0].plot(epochs, [r["val_loss"] for r in history], "o-", label="val")
    axes[0].set_title("loss")
    axes[1].plot(epochs, [100 * r["train_top1"] for r in history], "o-", label="train top-1")
    axes[1].plot(epochs, [100 * r["val_top1"] for r in history], "o-", label="val top-1")
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


def _markdown(metrics: dict, history: list[dict], title: str, pictures: list[str]) -> str:
    lines = [f"# {title}", "", f"Split `{metrics.get('split', 'val')}`: {metrics['images']:,} images"
             + (f" ({metrics['skipped']} undecodable, skipped)" if metrics.get("skipped") else "") + ".", "",
             "| top-1 | top-5 | loss |", "|---:|---:|---:|",
             f"| {metrics['top1']:.2%} | {metrics['top5']:.2%} | {metrics['loss']:.4f} |", ""]
    lines += [f"![{p}]({p})" for p in pictures] + [""]
    lines += ["## Per class", "", "| class | precision | recall | F1 | images |", "|---|---:|---:|---:|---:|"]
    for name, r in metrics["per_class"].items():
        lines.append(f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} "
                     f"| {r['support']:.0f} |")
    lines += ["", "## Confusion matrix (rows: true, columns: predicted)", "", "```",
              confusion_text(metrics["confusion_matrix"], metrics["classes"]).rstrip(), "```", ""]
    if history:
        lines += ["## Per epoch", "",
                  "| epoch | lr | train loss | train top-1 | val loss | val top-1 | val top-5 | s |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['epoch']} | {r['lr']:.3g} | {r['train_loss']:.4f} | {r['train_top1']:.2%} "
                  f"| {r['val_loss']:.4f} | {r['val_top1']:.2%} | {r['val_top5']:.2%} | {r['seconds']:.1f} |"
                  for r in history]
    return "\n".join(lines) + "\n"


def write_report(out: Path, metrics: dict, history: list[dict], title: str) -> Path:
    """Write confusion.txt, confusion.png, curves.png (when there is a history) and report.md."""
    out = Path(out)
    atomic_write_text(out / "confusion.txt", confusion_text(metrics["confusion_matrix"], metrics["classes"]))
    save_figure(confusion_figure(metrics["confusion_matrix"], metrics["classes"]), out / "confusion.png")
    pictures = ["confusion.png"]
    if history:
        save_figure(curves_figure(history), out / "curves.png")
        pictures.insert(0, "curves.png")
    return atomic_write_text(out / "report.md", _markdown(metrics, history, title, pictures))
