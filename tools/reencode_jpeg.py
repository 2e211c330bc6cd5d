"""One more lossy generation: re-encode every JPEG of an image-folder archive at a lower quality.

    python tools/reencode_jpeg.py ../shared/data/cifar10-train-jpg.tar.gz /tmp/cifar10-q50.tar.gz --quality 50

The layout and names stay; each image is decoded and saved again with Pillow (4:2:0 chroma), so a
training run on the result measures what image quality is worth (docs/benchmarks.md, Time to
accuracy: the quality-50 row). Other members are copied as they are.
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from PIL import Image


def reencode(source: Path, dest: Path, quality: int) -> int:
    count = 0
    with tarfile.open(source) as tin, tarfile.open(dest, "w:gz") as tout:
        for member in tin:
            if not member.isfile():
                continue
            data = tin.extractfile(member).read()
            if member.name.lower().endswith((".jpg", ".jpeg")):
                buf = io.BytesIO()
                Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=quality, subsampling=2)
                data, count = buf.getvalue(), count + 1
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--quality", type=int, default=50)
    args = ap.parse_args()
    if args.dest.exists():
        ap.error(f"{args.dest} exists: choose a new file")
    print(f"{reencode(args.source, args.dest, args.quality)} images re-encoded at quality {args.quality}")


if __name__ == "__main__":
    main()
