"""Ship a trained run's weights inside the package, and measure what bf16 storage costs first.

    # 1. what rounding the weights to bf16 does to a run's held-out score (a run with a val split)
    python tools/ship_weights.py check --run RUN --data DATA
    # 2. write the run's final weights as src/vggnet/weights/shipped/FILE (a vggnet checkpoint)
    python tools/ship_weights.py write --run RUN --name vgg_fast.cifar10 --dtype bf16 \\
        --trained-on "all 50,000 CIFAR-10 training images (...)" [--includes-sample] [--cifar10-train]

``write`` keeps the checkpoint's metadata (network, classes, normalisation, test-time settings),
drops the paths of the machine it trained on, adds the name and what it trained on, and prints
the file's sha256 and size for ``SHIPPED_WEIGHTS`` in ``vggnet/weights/hub.py``. The model card
(``shipped/NAME.md``) is written by hand from the run's report: it names the command, data,
seed, scores and date.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from vggnet.data.download import file_digest
from vggnet.evaluate.run import evaluate_checkpoint
from vggnet.runs import load_checkpoint
from vggnet.runs.checkpoint import META_KEY, find_checkpoint
from vggnet.weights.hub import SHIPPED

MACHINE_KEYS = ("data", "data_path", "fast_path")  # where and how it ran here: not the user's business


def _rounded(weights: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}


def check(run: Path, data: str) -> dict:
    """The run's held-out scores with its fp32 weights and with the same weights stored in bf16."""
    from safetensors.torch import save_file

    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bf16-run"
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("state.pt", ".vggnet.lock"))
        weights_file = find_checkpoint(copy)
        ckpt = load_checkpoint(weights_file, with_state=False)
        save_file(_rounded(ckpt.weights, torch.bfloat16), str(weights_file), metadata={META_KEY: json.dumps(ckpt.meta)})
        for name, path in (("fp32", run), ("bf16", copy)):
            m = evaluate_checkpoint(path, data, Path(tmp) / f"eval-{name}", progress=False)
            scores[name] = {"top1": m["top1"], "top5": m["top5"], "loss": m["loss"], "images": m["images"],
                            "split": m["split"]}
    return scores


def write(run: Path, name: str, dtype: str, trained_on: str, includes_sample: bool, cifar10_train: bool) -> dict:
    """The run's final weights as the packaged file ``shipped/MODEL-DATA.safetensors``."""
    from safetensors.torch import save_file

    ckpt = load_checkpoint(run, with_state=False)
    meta = {k: v for k, v in ckpt.meta.items() if k not in MACHINE_KEYS}
    meta.update({"name": name, "trained_on": trained_on, "trained_on_sample": includes_sample,
                 "trained_on_cifar10": cifar10_train, "storage": dtype})
    SHIPPED.mkdir(exist_ok=True)
    out = SHIPPED / f"{name.replace('.', '-')}.safetensors"
    save_file(_rounded(ckpt.weights, {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]), str(out),
              metadata={META_KEY: json.dumps(meta)})
    return {"file": out.name, "sha256": file_digest(out, "sha256"), "size": out.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("--run", required=True, type=Path)
    c.add_argument("--data", required=True)
    w = sub.add_parser("write")
    w.add_argument("--run", required=True, type=Path)
    w.add_argument("--name", required=True)
    w.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    w.add_argument("--trained-on", required=True)
    w.add_argument("--includes-sample", action="store_true", help="the embedded sample is among its training images")
    w.add_argument("--cifar10-train", action="store_true", help="it trained on CIFAR-10's training split")
    args = ap.parse_args()
    if args.command == "check":
        print(json.dumps(check(args.run, args.data)))
    else:
        print(json.dumps(write(args.run, args.name, args.dtype, args.trained_on, args.includes_sample,
                               args.cifar10_train)))


if __name__ == "__main__":
    main()
