"""What a study budget costs on this machine, before running it: each arm's training speed, and
the study's wall time estimated from it.

    python benchmarks/study_costs.py [--budget medium] [--studies depth lrn ...] [--seconds 6]

Every distinct network of the chosen studies trains a few seconds on random 32x32 batches at the
budget's width and batch size, in fp32 and in bf16 autocast (the two precisions
``precision=auto`` chooses between), channels_last, with SGD; a plain PyTorch step, no data
pipeline, so a real epoch (augmentation, validation) costs somewhat more. Then, per study: the
sum over arms of epochs x the arm's epoch factor x seconds per 45,000-image epoch, times the
budget's seeds, at the faster precision. One JSON line per network and per study, then a table.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from vggnet.bench.runner import machine_name
from vggnet.experiments.run import arm_fields
from vggnet.experiments.studies import SEEDS, STUDIES
from vggnet.models import create_model
from vggnet.train.recipes import get_recipe

TRAIN_IMAGES = 45_000  # an epoch of the 45,000 / 5,000 split


def images_per_second(model_name: str, width: float, batch: int, precision: str, seconds: float) -> float:
    torch.manual_seed(0)
    model = create_model(model_name, width=width, head="linear", num_classes=10).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up: first-call allocations and kernel choice
        step()
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="medium", choices=list(SEEDS))
    ap.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    ap.add_argument("--seconds", type=float, default=6.0, help="timed seconds per network and precision")
    args = ap.parse_args()
    plans = {name: [(arm, get_recipe("cifar", arm_fields(arm, STUDIES[name].budget(args.budget), None)))
                    for arm in STUDIES[name].arms] for name in args.studies}
    speed: dict[str, float] = {}
    for arms in plans.values():
        for arm, recipe in arms:
            if arm.model in speed:
                continue
            rates = {p: images_per_second(arm.model, recipe.width, recipe.batch_size, p, args.seconds)
                     for p in ("fp32", "bf16")}
            best = max(rates, key=rates.get)
            speed[arm.model] = rates[best]
            print(json.dumps({"model": arm.model, "width": recipe.width, "batch": recipe.batch_size,
                              **{f"img_per_s_{p}": round(r) for p, r in rates.items()}, "faster": best,
                              "epoch_seconds": round(TRAIN_IMAGES / rates[best], 1)}), flush=True)
    rows = []
    for name, arms in plans.items():
        seconds = SEEDS[args.budget] * sum(r.epochs * TRAIN_IMAGES / speed[a.model] for a, r in arms)
        rows.append({"study": name, "budget": args.budget, "arms": len(arms), "seeds": SEEDS[args.budget],
                     "epochs": arms[0][1].epochs if all(a.epochs_factor == 1 for a, _ in arms) else "varies",
                     "estimated_minutes": round(seconds / 60, 1)})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'study':<9} {'arms':>4} {'seeds':>5} {'epochs':>7} {'estimate (min)':>15}")
    for r in rows:
        print(f"{r['study']:<9} {r['arms']:>4} {r['seeds']:>5} {r['epochs']!s:>7} {r['estimated_minutes']:>15}")
    print(f"{machine_name(torch.device('cpu'))}, torch {torch.__version__}; training steps only (no data pipeline, "
          "no validation): a real run takes somewhat longer")


if __name__ == "__main__":
    main()
