"""Ship a trained run's weights inside the package, and measure what bf16 storage costs first.

    # 1. what rounding the weights to bf16 does to a run's held-out score (a run with a val split)
    python tools/ship_weights.py check --run RUN --data DATA
    # 2. write the run's final weights as src/vggnet/weights/shipped/FILE (a vggnet checkpoint)
    python tools/ship_weights.py write --run RUN --name vgg_fast.cifar10 --dtype bf16 \\
        --trained-on "all 50,000 CIFAR-10 training images (...)" [--cifar10-train]

``write`` keeps the checkpoint's metadata (network, classes, normalisation, test-time settings),
drops the paths of the machine it trained on, adds the name and what it trained on, and prints
the file's sha256 and size for ``SHIPPED_WEIGHTS`` in ``vggnet/weights/hub.py``. How many of the
embedded sample's images the run trained on is counted, not assumed: the sample's JPEGs are byte
copies of images in the development archive, so they are matched by content against the run's
training images (its data's images less ``split.json``'s held-out ones, or its train/ folder);
``--sample-images N`` gives the count for data that cannot be read so (``--includes-sample``: all).
The names of the images the run held out go into the file too (``held_out_record``), so that
``vggnet evaluate --weights NAME --data COPY`` on a copy of that data scores exactly them. The model card
(``shipped/NAME.md``) is written by hand from the run's report: it names the command, data,
seed, scores and date.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import torch

from vggnet.data.datasets import SAMPLE_IMAGES, held_key, sample_archive
from vggnet.data.decode import IMAGE_EXTENSIONS
from vggnet.data.download import file_digest
from vggnet.data.split_record import read_split
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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _images(data: str) -> dict[str, str]:
    """A run's data as each image file's path inside it -> the sha256 of its bytes: the embedded
    sample, a tar archive or a folder (in-memory releases such as CIFAR-10's python batches are not
    files of JPEGs: for them the count is given by hand)."""
    path = sample_archive() if data == "sample" else Path(data)
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            return {m.name: _digest(tar.extractfile(m).read()) for m in tar
                    if m.isfile() and Path(m.name).suffix.lower() in IMAGE_EXTENSIONS}
    if path.is_dir():
        return {p.relative_to(path).as_posix(): _digest(p.read_bytes()) for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
    raise SystemExit(f"cannot read the run's data {data} as image files: give the count (--sample-images N)")


def _trained(images: dict[str, str], held: list[str] | None) -> list[str]:
    """The names the run trained on: outside its held-out list; where the data has splits of its own
    (held None), the files under its train/ folder."""
    if held is None:
        return [n for n in images if "train" in n.split("/")[:-2]]
    keys = set(held)
    return [n for n in images if held_key(n) not in keys]


def sample_trained_on(run: Path) -> int:
    """How many of the embedded sample's images the run trained on, matched by content."""
    record = read_split(run)
    if record is None:
        raise SystemExit(f"{run} has no split.json: give the count (--sample-images N)")
    images = _images(record["data"])
    trained = _trained(images, record["held_out"])
    used = json.loads((run / "run.json").read_text())["train_images"]  # after any train_images cap
    if len(trained) != used:
        raise SystemExit(f"{len(trained):,} images outside the held-out ones, but the run trained on {used:,}: "
                         "a capped split cannot be counted this way; give the count (--sample-images N)")
    sample = set(_images("sample").values())
    assert len(sample) == SAMPLE_IMAGES, "the embedded sample holds duplicate images"
    return len(sample & {images[n] for n in trained})


def shipped_held_out(run: Path) -> dict | None:
    """The run's held-out images as evaluate reads them (names and total size, no path of this
    machine), so that a copy of its data scores exactly them as val; None where it held none out."""
    record = read_split(run)
    if record is None or not record["held_out"]:
        return None
    return {**{k: record.get(k) for k in ("classes", "held_out", "held_out_bytes", "held_out_pixels",
                                          "train_images", "val_images")}, "data": None}


def write(run: Path, name: str, dtype: str, trained_on: str, sample_images: int | None, cifar10_train: bool) -> dict:
    """The run's final weights as the packaged file ``shipped/MODEL-DATA.safetensors``."""
    from safetensors.torch import save_file

    ckpt = load_checkpoint(run, with_state=False)
    seen = sample_trained_on(run) if sample_images is None else sample_images
    meta = {k: v for k, v in ckpt.meta.items() if k not in MACHINE_KEYS}
    meta.update({"name": name, "trained_on": trained_on, "trained_on_sample": seen > 0,
                 "trained_on_cifar10": cifar10_train, "storage": dtype})
    if 0 < seen < SAMPLE_IMAGES:
        meta["sample_images_trained_on"] = seen
    record = shipped_held_out(run)
    if record is not None:
        meta["held_out_record"] = record
    SHIPPED.mkdir(exist_ok=True)
    out = SHIPPED / f"{name.replace('.', '-')}.safetensors"
    save_file(_rounded(ckpt.weights, {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]), str(out),
              metadata={META_KEY: json.dumps(meta)})
    out.chmod(0o644)  # package data: readable by whoever installs it
    return {"file": out.name, "sha256": file_digest(out, "sha256"), "size": out.stat().st_size,
            "sample_images_trained_on": seen, "held_out": len(record["held_out"]) if record else 0}


def _sample_count(text: str) -> int:
    n = int(text)
    if not 0 <= n <= SAMPLE_IMAGES:
        raise argparse.ArgumentTypeError(f"the sample holds {SAMPLE_IMAGES:,} images: 0 to {SAMPLE_IMAGES}")
    return n


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
    sample = w.add_mutually_exclusive_group()
    sample.add_argument("--sample-images", type=_sample_count, metavar="N",
                        help="how many of the embedded sample's images it trained on (default: counted from its data)")
    sample.add_argument("--includes-sample", action="store_const", const=SAMPLE_IMAGES, dest="sample_images",
                        help="all of them (--sample-images 5000)")
    w.add_argument("--cifar10-train", action="store_true", help="it trained on CIFAR-10's training split")
    args = ap.parse_args()
    if args.command == "check":
        print(json.dumps(check(args.run, args.data)))
    else:
        print(json.dumps(write(args.run, args.name, args.dtype, args.trained_on, args.sample_images,
                               args.cifar10_train)))


if __name__ == "__main__":
    main()
