"""A study's report: a markdown table and one PNG (final accuracy per arm; loss per epoch).

A training loss that stays at ln(number of classes) -- 2.303 for CIFAR-10 -- is a net that has
not learned anything (uniform predictions); the table flags it as *stalled*, the failure the
paper's initialisation section is about.
"""

from __future__ import annotations

import math
from pathlib import Path

from vggnet.atomic import atomic_write_text
from vggnet.plotting import pyplot, save_figure

STALL_MARGIN = 0.05  # within this of ln(10) after the last epoch: nothing learned


def stalled(row: dict, classes: int = 10) -> bool:
    """Ended at the loss of a uniform guess (and not above it: that is :func:`diverged`)."""
    return bool(row["train_loss"]) and abs(row["train_loss"][-1] - math.log(classes)) < STALL_MARGIN


def diverged(row: dict, classes: int = 10) -> bool:
    """The loss blew up: far above a uniform guess, or a non-finite validation loss."""
    if row.get("diverged") or row["val_loss"] is None:  # training stopped at a non-finite loss
        return True
    last = row["train_loss"][-1] if row["train_loss"] else 0.0
    return not math.isfinite(row["val_loss"]) or last > 2 * math.log(classes)


def _flag(row: dict) -> str:
    return " **diverged**" if diverged(row) else " **stalled**" if stalled(row) else ""


def write_study_report(out: Path, result: dict) -> None:
    _figure(out / "report.png", result)
    atomic_write_text(out / "report.md", render_markdown(result))


def render_markdown(result: dict) -> str:
    arms = result["arms"]
    best = max(arms, key=lambda r: -1 if r["top1"] is None else r["top1"])
    n_train, n_val = arms[0]["train_images"], arms[0]["val_images"]
    lines = [
        f"# Study `{result['study']}` ({result['budget']} budget)", "",
        f"**Question.** {result['question']}", "",
        f"**The paper.** {result['paper']}", "",
        f"**Setting.** {n_train:,} training and {n_val:,} held-out images of {result['data']}; recipe "
        f"`{result['base_recipe']}` with " + ", ".join(f"`{k}={v}`" for k, v in result["overrides"].items())
        + "; one seed. Machine: " + f"{result['machine']}; {result['date']}; {result['wall_seconds'] / 60:.1f} min "
        "(the arms' wall times summed).",
        "", f"Command: `{result['command']}`", "",
        "| arm | model | init | own settings | val top-1 | val top-5 | val loss | train loss, first -> last epoch "
        "| train s |",
        "|---|---|---|---|---:|---:|---:|---|---:|",
    ]
    for r in arms:
        init = f"from {r['init_from'].rsplit('/', 1)[-1]}" if r["init_from"] else r["init"]
        own = ", ".join(f"`{k}={v}`" for k, v in r.get("settings", {}).items()) or "-"
        if r["top1"] is None:  # stopped at a non-finite loss before an epoch ended
            lines.append(f"| {r['label']} | `{r['model']}` | {init} | {own} | - | - | - | stopped: non-finite loss "
                         f"in epoch {len(r['train_loss']) + 1} **diverged** | {r['seconds']:.0f} |")
            continue
        loss = f"{r['train_loss'][0]:.4g} -> {r['train_loss'][-1]:.4g}" + _flag(r)
        mark = "**" if r is best else ""
        lines.append(f"| {r['label']} | `{r['model']}` | {init} | {own} | {mark}{r['top1']:.2%}{mark} | "
                     f"{r['top5']:.2%} | {r['val_loss']:.3f} | {loss} | {r['seconds']:.0f} |")
    lines += ["", "![accuracy and loss per arm](report.png)", "",
              "*Stalled*: the training loss ended within 0.05 of ln 10 = 2.303, the loss of a uniform "
              "guess: the net learned nothing. *Diverged*: it ended above twice that, the validation "
              "loss is not finite, or training stopped at a non-finite loss (no score; a red bar at 0). "
              "One seed on a subset: differences of a point or two are within noise.", ""]
    return "\n".join(lines)


def _figure(path: Path, result: dict) -> None:
    plt = pyplot()
    arms = result["arms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [r["label"] for r in arms]
    colours = ["#c44" if stalled(r) or diverged(r) else "#47a" for r in arms]
    left.barh(labels, [100 * (r["top1"] or 0.0) for r in arms], color=colours)
    left.invert_yaxis()
    left.set_xlabel("held-out top-1 (%)")
    left.set_title(f"{result['study']}: final accuracy")
    if len(arms) > 10:  # the default cycle has ten colours; two arms must not share one
        right.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for r in arms:
        if not diverged(r):  # a loss in the millions would flatten every other curve
            right.plot(range(1, len(r["train_loss"]) + 1), r["train_loss"], marker="o", label=r["label"])
    right.axhline(math.log(10), color="gray", linestyle="--", linewidth=1, label="ln 10 (uniform guess)")
    right.set_xlabel("epoch")
    right.set_ylabel("training loss")
    right.set_title("training loss per epoch (diverged arms left out)")
    right.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
