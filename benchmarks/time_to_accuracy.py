"""Time to accuracy of the ``cifar-fast`` recipe: validation top-1 against wall time.

    python benchmarks/time_to_accuracy.py --data ../shared/data/cifar10-train-jpg.tar.gz \\
        [--run "epochs=8" --run "epochs=12,lr=0.8" ...] [--seeds 0 1] [--device cpu]

Each ``--run`` is a comma-separated list of recipe overrides (none: the recipe as it is). Every
run trains from scratch on the seeded 45,000 / 5,000 split and prints one JSON line: the final
held-out top-1 with the recipe's test-time augmentation and without it, the wall time from the
call to the final score (data loading from the decoded cache included), the per-epoch curve
(cumulative seconds, val top-1 without TTA), the machine and the precision it trained in. At the
end, a table: per run, the seeds' mean, spread and lowest score and the mean wall time.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vggnet.bench.runner import machine_name
from vggnet.train.loop import train
from vggnet.train.recipes import get_recipe


def _overrides(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split(",") if pair)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--recipe", default="cifar-fast")
    ap.add_argument("--run", action="append", default=None, help="recipe overrides, e.g. 'epochs=8,lr=0.8'")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None, help="a JSON-lines file to append the results to")
    ap.add_argument("--plot", default=None, help="a PNG of val top-1 per epoch, one line per run and seed")
    ap.add_argument("--results", default=None, help="read these JSON lines (an earlier --out) instead of training")
    ap.add_argument("--label", default=None,
                    help="this call's name in the table and picture (default: its overrides), e.g. for other data")
    ap.add_argument("--keep", default=None, help="keep each run's directory here (LABEL-seedN) to evaluate it later")
    args = ap.parse_args()
    if args.results:
        _report([json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()], args.plot)
        return
    if args.label and len(args.run or []) > 1:
        ap.error("--label names one run: give one --run with it (several would share the label and folders)")
    lines = []
    for spec in args.run or [""]:
        for seed in args.seeds:
            recipe = get_recipe(args.recipe, _overrides(spec))
            label = args.label or spec
            with tempfile.TemporaryDirectory() as tmp:
                if args.keep:  # the run stays for later use (evaluate, weight storage checks)
                    tmp = str(Path(args.keep) / f"{re.sub(r'[^A-Za-z0-9.]+', '-', label or 'recipe')}-seed{seed}")
                t0 = time.perf_counter()
                result = train(None, args.data, recipe, tmp, seed=seed, device=args.device, progress=False)
                wall = time.perf_counter() - t0
                info = json.loads((Path(tmp) / "run.json").read_text())  # where and how it ran, as train saw it
            elapsed, curve = 0.0, []
            for row in result.history:
                elapsed += row["seconds"]
                curve.append([round(elapsed, 1), round(row["val_top1"], 4)])
            m = result.metrics
            line = {"recipe": args.recipe, "overrides": spec, "label": label, "data": args.data, "seed": seed,
                    "epochs": recipe.epochs,
                    "top1": round(m["top1"], 4), "top1_without_tta": round(m.get("top1_without_tta", m["top1"]), 4),
                    "wall_seconds": round(wall, 1), "curve": curve, "device": info["device"],
                    "machine": machine_name(torch.device(info["device"])), "precision": info["precision"]}
            lines.append(line)
            print(json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(line) + "\n")
    _report(lines, args.plot)


def _report(lines: list[dict], plot: str | None) -> None:
    """Per run (its overrides), the seeds' summary as JSON, then the table and the picture."""
    runs: dict[str, list[dict]] = {}
    for line in lines:
        runs.setdefault(line.get("label") or line["overrides"], []).append(line)
    summaries = [_summary(spec, results) for spec, results in runs.items()]
    for summary in summaries:
        print(json.dumps(summary), flush=True)
    _table(summaries)
    if plot:
        _plot(runs, plot)


def _plot(runs: dict[str, list[dict]], path: str) -> None:
    """Top-1 after each epoch (a run's wall time depends on what else the machine ran; its epochs do not)."""
    from vggnet.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (spec, results) in enumerate(runs.items()):
        colour = f"C{i}"
        for j, r in enumerate(results):
            epochs = range(1, len(r["curve"]) + 1)
            label = f"{spec or r['recipe']} ({len(results)} seed{'s' * (len(results) > 1)})" if j == 0 else None
            ax.plot(epochs, [100 * a for _, a in r["curve"]], "o-", color=colour, alpha=0.6, ms=3, label=label)
            ax.plot([len(r["curve"]) + 0.25], [100 * r["top1"]], "*", color=colour, ms=11)  # the final, with TTA
    ax.axhline(94, color="grey", ls="--", lw=1)
    first = next(iter(runs.values()))[0]
    ax.set(xlabel="epoch (star: final score with test-time augmentation)", ylabel="held-out top-1 (%)",
           ylim=(50, 96), title=f"{first['recipe']} on 45,000 / 5,000 CIFAR-10 JPEGs\n{first['machine']}, "
                                f"{first['precision']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def _summary(spec: str, results: list[dict]) -> dict:
    top1 = [r["top1"] for r in results]
    return {"overrides": spec, "seeds": [r["seed"] for r in results], "top1": top1,
            "top1_mean": round(statistics.mean(top1), 4),
            "top1_std": round(statistics.stdev(top1), 4) if len(top1) > 1 else None, "top1_min": min(top1),
            "top1_without_tta_mean": round(statistics.mean(r["top1_without_tta"] for r in results), 4),
            "wall_seconds_mean": round(statistics.mean(r["wall_seconds"] for r in results), 1),
            "wall_seconds_max": max(r["wall_seconds"] for r in results),
            "machine": results[0]["machine"], "precision": results[0]["precision"]}


def _table(summaries: list[dict]) -> None:
    print(f"\n{'run':<32} {'seeds':>5} {'top-1 mean':>10} {'std':>6} {'min':>7} {'no TTA':>7} {'wall (min)':>10}")
    for s in summaries:
        std = f"{100 * s['top1_std']:.2f}" if s["top1_std"] is not None else "-"
        print(f"{s['overrides'] or '(recipe)':<32} {len(s['seeds']):>5} {100 * s['top1_mean']:>9.2f}% {std:>6} "
              f"{100 * s['top1_min']:>6.2f}% {100 * s['top1_without_tta_mean']:>6.2f}% "
              f"{s['wall_seconds_mean'] / 60:>6.1f} (max {s['wall_seconds_max'] / 60:.1f})")
    if summaries:
        print(f"{summaries[0]['machine']}, {summaries[0]['precision']}")


if __name__ == "__main__":
    main()
