"""Time to accuracy of the ``cifar-fast`` recipe: validation top-1 against wall time.

    python benchmarks/time_to_accuracy.py --data ../shared/data/cifar10-train-jpg.tar.gz \\
        [--run "epochs=8" --run "epochs=12,lr=0.8" ...] [--seeds 0 1] [--device cpu]

Each ``--run`` is a comma-separated list of recipe overrides (none: the recipe as it is). Every
run trains from scratch on the seeded 45,000 / 5,000 split and prints one JSON line: the final
held-out top-1 with the recipe's test-time augmentation and without it, the wall time from the
call to the final score (data loading from the decoded cache included), and the per-epoch curve
(cumulative seconds, val top-1 without TTA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

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
    args = ap.parse_args()
    for spec in args.run or [""]:
        results = []
        for seed in args.seeds:
            recipe = get_recipe(args.recipe, _overrides(spec))
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                result = train(None, args.data, recipe, tmp, seed=seed, device=args.device, progress=False)
                wall = time.perf_counter() - t0
                device = json.loads((Path(tmp) / "run.json").read_text())["device"]  # where it ran, as train saw it
            elapsed, curve = 0.0, []
            for row in result.history:
                elapsed += row["seconds"]
                curve.append([round(elapsed, 1), round(row["val_top1"], 4)])
            m = result.metrics
            line = {"recipe": args.recipe, "overrides": spec, "seed": seed, "epochs": recipe.epochs,
                    "top1": round(m["top1"], 4), "top1_without_tta": round(m.get("top1_without_tta", m["top1"]), 4),
                    "wall_seconds": round(wall, 1), "curve": curve, "device": device}
            results.append(line)
            print(json.dumps(line), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(line) + "\n")
        if len(results) > 1:
            print(json.dumps({"overrides": spec, "seeds": args.seeds,
                              "top1_mean": round(statistics.mean(r["top1"] for r in results), 4),
                              "top1_min": min(r["top1"] for r in results),
                              "wall_seconds_mean": round(statistics.mean(r["wall_seconds"] for r in results), 1)}))


if __name__ == "__main__":
    main()
