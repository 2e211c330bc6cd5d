"""Decode + augment throughput per CPU core for training at 224: how many images one DataLoader
worker turns out, vggnet's ways against the plain PyTorch one.

    python benchmarks/decode_throughput.py [--images 64] [--large-images 16] [--seconds 1.2] [--rounds 5]
        [--quality 90] [--photos DIR] [--json]

One process, ``torch.set_num_threads(1)``: a worker's share of the machine. The JPEGs are made from
real photographs by ``benchmarks/photos.py`` (500x375 as ImageNet's, a fifth portrait, and 2000x1500
camera-sized mosaics), written to a temporary folder and read once before timing, so every read
hits the page cache. Each step draws a scale S in [256, 512] and a random 224 crop. Modes:

* ``plain``: what ImageFolder + Resize(S) + RandomCrop(224) + PILToTensor do (torchvision is not
  installed, so its calls are written out): ``Image.open(f).convert("RGB")``, BILINEAR resize;
* ``raw``: vggnet without draft: ``decode_rgb(bytes)`` + ``RescaleCrop((256, 512), 224)``;
* ``draft``: vggnet's streamed path (``FolderDataset``): ``decode_rgb(bytes, min_side=512)``: libjpeg
  decodes at 1/2, 1/4 or 1/8 size, only for files whose short side is at least 1024;
* ``prepared``: the files written by ``vggnet prepare`` (short side 256, quality 90), read out of
  its tar shards (that read timed apart), decoded and augmented as ``draft``.

Modes alternate over rounds, the order rotating each round; each reports its median images/s; its
ratio to ``plain`` on the same source files (the median of the per-round ratios, so that a busy round
weighs on both sides); and the decode alone and the augment alone (ms per image, the decode including
the file read), to show where the time goes. Prints a table (``--json``: one JSON object on stdout,
the table on stderr). At quality 90 the 500x375 files average about 50 KB, half ImageNet's 110 KB:
the source photos were already compressed; ``--quality 98`` gives about 105 KB (decode +45%).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
from photos import load_photos, make_large_photos, make_photos, mean_bytes
from PIL import Image, features

from vggnet.data.decode import decode_rgb
from vggnet.data.transforms import RescaleCrop
from vggnet.fastpath import cpu_model

SCALE = (256, 512)
CROP = 224
PREPARED_SIDE, PREPARED_QUALITY = 256, 90
AUGMENT_POOL = 8
"""How many decoded images the augment-alone timing cycles over (a 2000x1500 one holds 9 MB)."""


@dataclass
class Mode:
    """One way from a file (a path, or bytes in memory) to a 224x224 uint8 tensor, in two steps."""

    name: str
    files: str
    items: list[Any]
    decode: Callable[[Any], Image.Image]
    augment: Callable[[Image.Image], torch.Tensor]
    mean_bytes: float
    cursor: int = 0  # where the next timing starts, so that short rounds still cover every file
    runs: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "decode": [], "augment": []})

    @property
    def label(self) -> str:
        return f"{self.name} {self.files}"


def pil_loader(path: Path) -> Image.Image:
    """torchvision's ImageFolder loader, as it is written there."""
    with open(path, "rb") as f:
        img = Image.open(f)
        return img.convert("RGB")


def plain_augment(img: Image.Image) -> torch.Tensor:
    """Resize(S) with S drawn from SCALE, RandomCrop(224), PILToTensor: torchvision's arithmetic."""
    side = int(torch.randint(SCALE[0], SCALE[1] + 1, ()).item())
    w, h = img.size
    short, long = min(w, h), max(w, h)
    new_short, new_long = side, int(side * long / short)
    img = img.resize((new_short, new_long) if w <= h else (new_long, new_short), Image.Resampling.BILINEAR)
    top = int(torch.randint(0, img.height - CROP + 1, size=(1,)).item())
    left = int(torch.randint(0, img.width - CROP + 1, size=(1,)).item())
    img = img.crop((left, top, left + CROP, top + CROP))
    return torch.as_tensor(np.array(img, copy=True)).view(CROP, CROP, 3).permute(2, 0, 1)


def prepared_shards(paths: list[Path], folder: Path, quality: int) -> tuple[list[bytes], float, float]:
    """The files written by ``vggnet prepare`` (short side 256, one process) and read back out of its
    shards: the bytes training decodes, and the ms per image the preparing and the tar reading took."""
    from vggnet.data.prepare import Options, prepare
    from vggnet.data.shard_manifest import load_prepared

    classes = folder / "data" / "photos"  # one class folder: prepare takes what training takes
    classes.mkdir(parents=True)
    for p in paths:
        (classes / p.name).symlink_to(p)
    began = time.perf_counter()
    prepare(folder / "data", folder / "shards", Options(PREPARED_SIDE, quality), workers=1, progress=False)
    prepare_ms = 1000 * (time.perf_counter() - began) / len(paths)
    split = load_prepared(folder / "shards")[0]["all"]
    began = time.perf_counter()
    encoded = [data for data, _ in split.images()]
    return encoded, prepare_ms, 1000 * (time.perf_counter() - began) / len(encoded)


# ---- SHARDS: the mode over encoded JPEG bytes already in memory -----------------------------------
def shard_mode(encoded: list[bytes], files: str, name: str = "prepared") -> Mode:
    """Images as a shard holds them, bytes in memory, decoded and augmented as vggnet's streamed path.

    Fed by :func:`prepared_shards`: the members of real shards, read out once (their reading is
    timed there, apart: a sequential tar read is a small fraction of a decode).
    """
    augment = RescaleCrop(SCALE, CROP, random=True)
    return Mode(name, files, encoded, lambda data: decode_rgb(data, min_side=max(SCALE)), augment,
                statistics.fmean(len(b) for b in encoded))
# ----------------------------------------------------------------------------------------------------


def file_modes(paths: list[Path], files: str) -> list[Mode]:
    """plain, raw and draft over the same files (paths: each step reads its file, as a worker does)."""
    size = mean_bytes(paths)
    augment = RescaleCrop(SCALE, CROP, random=True)
    return [Mode("plain", files, paths, pil_loader, plain_augment, size),
            Mode("raw", files, paths, lambda p: decode_rgb(p.read_bytes()), augment, size),
            Mode("draft", files, paths, lambda p: decode_rgb(p.read_bytes(), min_side=max(SCALE)), augment, size)]


def _time_loop(step: Callable[[Any], object], items: list[Any], start: int, seconds: float) -> tuple[float, int]:
    """Seconds per call of ``step`` over ``items`` from ``start`` (cycling) for at least ``seconds``."""
    n, began = 0, time.perf_counter()
    while True:
        step(items[(start + n) % len(items)])
        n += 1
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return elapsed / n, n


def measure(mode: Mode, seconds: float, seed: int) -> None:
    """One round of a mode: the whole step, then the decode alone and the augment alone."""
    torch.manual_seed(seed)  # the same scales and crops for every mode within a round
    per_image, n = _time_loop(lambda item: mode.augment(mode.decode(item)), mode.items, mode.cursor, seconds)
    mode.runs["step"].append(per_image)
    mode.runs["decode"].append(_time_loop(mode.decode, mode.items, mode.cursor, seconds / 3)[0])
    mode.cursor = (mode.cursor + n) % len(mode.items)
    pool = [mode.decode(item) for item in mode.items[:AUGMENT_POOL]]
    torch.manual_seed(seed)
    mode.runs["augment"].append(_time_loop(mode.augment, pool, 0, seconds / 3)[0])


def _is_portrait(path: Path) -> bool:
    with Image.open(path) as img:
        return img.height > img.width


def make_sets(args: argparse.Namespace, folder: Path) -> tuple[list[Mode], dict, list]:
    """Write the JPEGs and build every mode over them; also the sets' and photos' descriptions."""
    photos = load_photos(args.photos)
    sets = {"500x375": make_photos(folder / "small", args.images, quality=args.quality, photos=photos),
            "2000x1500": make_large_photos(folder / "large", args.large_images, quality=args.quality, photos=photos)}
    modes, described = [], {}
    for files, paths in sets.items():
        portrait = sum(_is_portrait(p) for p in paths)
        described[files] = {"images": len(paths), "portrait": portrait, "quality": args.quality,
                            "mean_bytes": round(mean_bytes(paths))}
        modes += file_modes(paths, files)
        encoded, prepare_ms, read_ms = prepared_shards(paths, folder / f"prepared-{files}", PREPARED_QUALITY)
        modes.append(shard_mode(encoded, files))
        described[files]["prepared_mean_bytes"] = round(modes[-1].mean_bytes)
        described[files]["prepare_ms_per_image"] = round(prepare_ms, 3)  # the one-off pass, one process
        described[files]["shard_read_ms_per_image"] = round(read_ms, 4)
    sources = [{"name": p.name, "size": f"{p.image.width}x{p.image.height}", "from": p.origin, "licence": p.licence}
               for p in photos]
    return modes, described, sources


def run(args: argparse.Namespace) -> dict:
    """Make the files, alternate the modes over rounds, and gather the medians."""
    with tempfile.TemporaryDirectory(prefix="vggnet-decode-") as tmp:
        modes, sets, sources = make_sets(args, Path(tmp))
        for mode in modes:  # page cache and Pillow's first-call setup, untimed
            for item in mode.items:
                mode.augment(mode.decode(item))
        for r in range(args.rounds):
            for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                measure(mode, args.seconds, seed=r)
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{m.label} {1 / m.runs['step'][-1]:.0f}"
                                                              for m in modes) + " img/s", file=sys.stderr)
    rows = []
    for mode in modes:
        plain = next(m for m in modes if m.name == "plain" and m.files == mode.files)
        ips = 1 / statistics.median(mode.runs["step"])
        rows.append({"mode": mode.name, "files": mode.files, "mean_bytes": round(mode.mean_bytes),
                     "images_per_second": round(ips, 1),
                     "x_plain": round(statistics.median(p / s for s, p in zip(mode.runs["step"], plain.runs["step"],
                                                                          strict=True)), 2),
                     "decode_ms": round(1000 * statistics.median(mode.runs["decode"]), 2),
                     "augment_ms": round(1000 * statistics.median(mode.runs["augment"]), 2),
                     "rounds_images_per_second": [round(1 / s, 1) for s in mode.runs["step"]]})
    return {"cpu": cpu_model(), "threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "pillow": PIL.__version__,
            "libjpeg_turbo": features.version("libjpeg_turbo"), "scale": list(SCALE), "crop": CROP,
            "rounds": args.rounds, "seconds_per_mode_round": args.seconds, "sets": sets, "photos": sources,
            "modes": rows}


def print_table(result: dict, stderr: bool) -> None:
    """The medians as a table (rich when installed, else plain text)."""
    head = ("mode", "files", "mean KB", "img/s", "x plain", "decode ms", "augment ms")
    rows = [(r["mode"], r["files"] if r["mode"] != "prepared" else f"{r['files']} -> 256",
             f"{r['mean_bytes'] / 1000:.1f}", f"{r['images_per_second']:.1f}", f"{r['x_plain']:.2f}",
             f"{r['decode_ms']:.2f}", f"{r['augment_ms']:.2f}") for r in result["modes"]]
    title = f"decode + augment per core, S in [{SCALE[0]}, {SCALE[1]}], crop {CROP}"
    caption = (f"{result['cpu']}, 1 thread; torch {result['torch']}, Pillow {result['pillow']}, "
               f"libjpeg-turbo {result['libjpeg_turbo']}; median of {result['rounds']} rounds")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        out = sys.stderr if stderr else sys.stdout
        print(title, file=out)
        for row in (head, *rows):
            print(f"{row[0]:<9} {row[1]:<17} " + " ".join(f"{c:>10}" for c in row[2:]), file=out)
        print(caption, file=out)
        return
    table = Table(title=title, caption=caption)
    for i, name in enumerate(head):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    Console(stderr=stderr, width=100).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="500x375 files")
    ap.add_argument("--large-images", type=int, default=16, help="2000x1500 files")
    ap.add_argument("--seconds", type=float, default=1.2, help="per mode per round (plus a third each for "
                                                               "the decode alone and the augment alone)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the test files")
    ap.add_argument("--photos", help="folder with scikit-image's wheel or photos (see benchmarks/photos.py)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout; the table goes to stderr")
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = run(args)
    print_table(result, stderr=args.json)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
