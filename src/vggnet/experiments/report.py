"""A study's report: a markdown table and one PNG (final accuracy per arm; loss per epoch).

A training loss that stays at ln(number of classes) -- 2.303 for CIFAR-10 -- is a net that has
not learned anything (uniform predictions); the table flags it as *stalled*, the failure the
paper's initialisation section is about.
"""

from __future__ import annotations

import math
from pathlib import Path

from vggnet.atomic import atomic_write_text
from vggnet.experiments.claims import diverged, sentence, stalled
from vggnet.plotting import pyplot, save_figure

__all__ = ["diverged", "render_markdown", "stalled", "write_study_report"]  # the flags live in claims


def _flag(row: dict) -> str:
    seeds = row.get("seeds", [])
    if 0 < row.get("failed_seeds", 0) < len(seeds):  # the seeds disagree: say how many learned nothing
        return f" **{row['failed_seeds']} of {len(seeds)} seeds diverged or stalled**"
    return " **diverged**" if diverged(row) else " **stalled**" if stalled(row) else ""


def write_study_report(out: Path, result: dict) -> None:
    _figure(out / "report.png", result)
    atomic_write_text(out / "report.md", render_markdown(result))


def render_markdown(result: dict) -> str:
    arms = result["arms"]
    seeds = result.get("seeds", [0])
    n_train, n_val = arms[0]["train_images"], arms[0]["val_images"]
    lines = [
        f"# Study `{result['study']}` ({result['budget']} budget)", "",
        f"**Question.** {result['question']}", "",
        f"**The paper.** {result['paper']}", "",
        f"**Setting.** {n_train:,} training and {n_val:,} held-out images of {result['data']}; recipe "
        f"`{result['base_recipe']}` with " + ", ".join(f"`{k}={v}`" for k, v in result["overrides"].items())
        + f"; {_seeds(seeds)}." + _width(result["overrides"]) + _where(result)
        + f"; {result['date']}; {result['wall_seconds'] / 60:.1f} min (the arms' wall times summed).",
        "", f"Command: `{result['command']}`", "",
    ]
    if result.get("claims"):
        lines += ["## Findings", "", *(f"- {sentence(j)}" for j in result["claims"]), "", _noise(result), ""]
    lines += _table(arms, len(seeds))
    lines += ["", "![accuracy and loss per arm](report.png)", "",
              "*Stalled*: the training loss ended within 0.05 of ln 10 = 2.303, the loss of a uniform "
              "guess: the net learned nothing. *Diverged*: it ended above twice that, the validation "
              "loss is not finite, or training stopped at a non-finite loss (no score; a red bar at 0). "
              + ("One seed: differences of a point or two are within noise, and no claim is called." if len(seeds) < 2
                 else "*Spread*: an arm's best seed minus its worst."), ""]
    return "\n".join(lines)


def _seeds(seeds: list[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds ({', '.join(map(str, seeds))}) per arm"


def _width(overrides: dict) -> str:
    width = float(overrides.get("width", 1))
    if width == 1:
        return ""
    return (f" Every arm is the paper's network at {width:g} of Table 1's channels (`width={width:g}`), "
            "the same depth and layout, thinned alike so that the study converges on a CPU.")


def _where(result: dict) -> str:
    """The machine (or machines, for a study resumed elsewhere) and the arithmetic it trained in."""
    machines = result["machine"]
    where = f" Machines: {machines} (its runs trained on more than one; each run's are in results.json)" \
        if ";" in machines else f" Machine: {machines}"
    return where + (f"; trained in {result['precision']}" if result.get("precision") else "")


def _noise(result: dict) -> str:
    noise = result.get("noise") or {}
    if not noise.get("dof"):
        return "No claim is called: with one seed per arm there is no estimate of how much seeds differ."
    return (f"How the claims are called: the seeds' top-1 differs by a standard deviation of "
            f"{noise['std']:.2%} (pooled over the arms whose seeds all learned, {noise['dof']} degrees of freedom); "
            "a difference of two arms' means is called beyond the two-sided 95% t quantile times its standard "
            "error (the threshold in each line), a 5% chance of calling a difference that is not there. An arm that "
            "learned in every seed against one that learned in none is called without a threshold.")


def _table(arms: list[dict], n_seeds: int) -> list[str]:
    whole = [r for r in arms if r["top1"] is not None and not r.get("failed_seeds")] or \
        [r for r in arms if r["top1"] is not None]
    best = max(whole, key=lambda r: r["top1"]) if whole else None
    many = n_seeds > 1
    lines = ["| arm | model | init | own settings | val top-1" + (" (mean) | each seed | spread" if many else "")
             + " | val top-5 | val loss | train loss, first -> last epoch | train s |",
             "|---|---|---|---|---:|" + ("---|---:|" if many else "") + "---:|---:|---|---:|"]
    for r in arms:
        init = f"from {r['init_from'].rsplit('/', 1)[-1]}" if r["init_from"] else r["init"]
        own = ", ".join(f"`{k}={v}`" for k, v in r.get("settings", {}).items()) or "-"
        if r["top1"] is None:  # stopped at a non-finite loss before an epoch ended
            why = (f"not trained: {r['diverged']}" if r["diverged"].startswith("its donor") else
                   f"stopped: non-finite loss in epoch {len(r['train_loss']) + 1}")
            lines.append(f"| {r['label']} | `{r['model']}` | {init} | {own} | - |" + (" - | - |" if many else "")
                         + f" - | - | {why} **diverged** | {r['seconds']:.0f} |")
            continue
        loss = (f"{r['train_loss'][0]:.4g} -> {r['train_loss'][-1]:.4g}" if r["train_loss"] else "-") + _flag(r)
        mark = "**" if r is best else ""
        each = ", ".join("-" if s["top1"] is None else f"{s['top1']:.2%}" for s in r.get("seeds", []))
        spread = f" {each} | {'-' if r['spread'] is None else format(r['spread'], '.2%')} |" if many else ""
        lines.append(f"| {r['label']} | `{r['model']}` | {init} | {own} | {mark}{r['top1']:.2%}{mark} |{spread} "
                     f"{r['top5']:.2%} | {r['val_loss']:.3f} | {loss} | {r['seconds']:.0f} |")
    return lines


def _figure(path: Path, result: dict) -> None:
    plt = pyplot()
    arms = result["arms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    labels = [r["label"] for r in arms]
    colours = ["#c44" if stalled(r) or diverged(r) else "#47a" for r in arms]
    left.barh(labels, [100 * (r["top1"] or 0.0) for r in arms], color=colours)
    if len(result.get("seeds", [0])) > 1:  # each seed's score on its arm's bar (the bar is their mean)
        for y, r in enumerate(arms):
            scores = [100 * s["top1"] for s in r["seeds"] if s["top1"] is not None]
            left.plot(scores, [y] * len(scores), "k|", markersize=12, label="a seed" if y == 0 else None)
        left.legend(fontsize=7, loc="lower right")
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
    right.set_ylabel("training loss" + (" (mean of the seeds)" if len(result.get("seeds", [0])) > 1 else ""))
    right.set_title("training loss per epoch (diverged arms left out)")
    right.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
