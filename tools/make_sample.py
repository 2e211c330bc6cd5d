"""Rebuild the embedded sample (src/vggnet/data/sample/cifar10-sample.tar.gz) from ../shared.

A fixed, class-balanced subset of ``cifar10-train-jpg.tar.gz``: per class, a seeded choice of
TRAIN + VAL images, copied byte for byte (no re-encoding). The archive is deterministic (sorted
names, zero times and owners), so rerunning this script reproduces it exactly.

    python tools/make_sample.py [--source ../shared/data/cifar10-train-jpg.tar.gz]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import random
import tarfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-train-jpg.tar.gz"
SOURCE_SHA256 = "8d9ff5bdd3e0e7a88e7fd47015d0fc6f953a79831aee551f9630fe198d008405"
DEST = Path(__file__).resolve().parents[1] / "src" / "vggnet" / "data" / "sample" / "cifar10-sample.tar.gz"
TRAIN, VAL, SEED = 400, 100, 2014


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()
    digest = hashlib.sha256(args.source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise SystemExit(f"{args.source}: sha256 {digest}, expected {SOURCE_SHA256}")
    by_class: dict[str, dict[str, bytes]] = {}
    with tarfile.open(args.source) as src:
        for member in src:
            if member.isfile() and member.name.endswith(".jpg"):
                _, cls, name = member.name.split("/")
                by_class.setdefault(cls, {})[name] = src.extractfile(member).read()
    rng = random.Random(SEED)
    files: dict[str, bytes] = {}
    for cls in sorted(by_class):
        chosen = rng.sample(sorted(by_class[cls]), TRAIN + VAL)
        for split, names in (("train", chosen[:TRAIN]), ("val", chosen[TRAIN:])):
            for name in sorted(names):
                files[f"{split}/{cls}/{name}"] = by_class[cls][name]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    DEST.parent.mkdir(parents=True, exist_ok=True)
    with open(DEST, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    print(f"{DEST}: {len(files)} images, {DEST.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
