"""Realistic JPEG test images made offline from real photographs that ship inside Python packages.

    python benchmarks/photos.py OUT_DIR [-n 64] [--large] [--photos DIR] [--fetch]

A decode benchmark on smooth or synthetic pictures flatters the decoder: a JPEG's cost follows its
entropy (the Huffman-coded bytes), not only its pixel count. So every file here is cut from a real
photograph, at native resolution or close to it, and re-encoded with Pillow.

The photographs, all colour, all bundled in package files (nothing is fetched at run time):

* scikit-learn (``sklearn/datasets/images``): china.jpg, flower.jpg, 640x427, CC BY 2.0 (its README.txt);
* matplotlib (``mpl-data/sample_data``): grace_hopper.jpg, 512x600, licence not stated in the package;
* scikit-image (``skimage/data``, bundled in its wheel, not the pooch downloads): astronaut.png
  (public domain, NASA), chelsea.png and coffee.png (CC0), rocket.jpg (public domain, SpaceX),
  motorcycle_left.png (Middlebury 2014 stereo set, licence not stated), as their docstrings say.

scikit-image is not a vggnet dependency. Its photos are read from an installed ``skimage`` if there is
one, else out of a ``scikit_image-*.whl`` (a zip) in ``--photos DIR`` or, by default, in
``$VGGNET_HOME/photos`` (``~/.cache/vggnet/photos``); ``--fetch`` puts the wheel there with
``pip download --no-deps scikit-image``. Without it the three photos above are used. Any other
``*.jpg``/``*.png`` in that folder is used too (licence: the user's).

Files: ``size`` (500x375, ImageNet's typical size; a ``portrait`` share 375x500) are random crops
of one photo at a random scale between the smallest that covers the crop and native (enlarged only
where the photo is smaller than the crop, at most ``MAX_UPSCALE`` = 1.25x: a photo that needs more is
not used for that shape), randomly mirrored. Large files (``--large``,
2000x1500) are no camera's: no bundled photo is that big, so each is a 4x4 mosaic of such 500x375
crops, i.e. native-resolution detail everywhere. A real camera file of that size has less detail
per pixel (and so fewer bytes per pixel) than this mosaic: it is the harder case for a decoder.

Measured at quality 90 with all eight photos (seed 0): 500x375 files average 50 KB, half ImageNet's
110 KB (the photos were compressed or downscaled before they were bundled, which took their finest
detail; quality 98 gives 105 KB); the 2000x1500 mosaics average 840 KB (2.2 bits per pixel).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import itertools
import random
import statistics
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from vggnet.cache import cache_dir

BUNDLED = (  # (package, path inside it, licence as the package states it)
    ("sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr), per sklearn's README.txt"),
    ("sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr), per sklearn's README.txt"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "not stated in matplotlib"),
)
SKIMAGE = (  # skimage/data members bundled in the wheel; licence from skimage.data's docstrings
    ("astronaut.png", "public domain (NASA), per skimage.data.astronaut"),
    ("chelsea.png", "CC0 (Stefan van der Walt), per skimage.data.chelsea"),
    ("coffee.png", "CC0 (Rachel Michetti), per skimage.data.coffee"),
    ("rocket.jpg", "public domain (SpaceX), per skimage.data.rocket"),
    ("motorcycle_left.png", "Middlebury 2014 stereo set; licence not stated in skimage"),
)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_UPSCALE = 1.25
"""A photo is cut for a crop only if it covers the crop when enlarged at most this much (smooth pixels flatter)."""


@dataclass
class Photo:
    """One source photograph, decoded to RGB, with where it came from."""

    name: str
    image: Image.Image
    origin: str
    licence: str


def default_dir() -> Path:
    """Where the scikit-image wheel (and any extra photos) are looked for without ``--photos``."""
    return cache_dir("photos")


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _package_dir(package: str) -> Path | None:
    """An installed package's folder, found without importing it (skimage and sklearn import slowly)."""
    spec = importlib.util.find_spec(package)
    return Path(spec.origin).parent if spec and spec.origin else None


def _skimage_photos(photo_dir: Path) -> list[Photo]:
    """scikit-image's bundled photos: from the installed package, else from a wheel in ``photo_dir``."""
    installed = _package_dir("skimage")
    if installed and all((installed / "data" / name).is_file() for name, _ in SKIMAGE):
        return [Photo(name, _open((installed / "data" / name).read_bytes()), f"skimage/data/{name} (installed)", lic)
                for name, lic in SKIMAGE]
    for wheel in sorted(photo_dir.glob("scikit_image-*.whl"), reverse=True):
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            if all(f"skimage/data/{name}" in names for name, _ in SKIMAGE):
                return [Photo(name, _open(zf.read(f"skimage/data/{name}")), f"skimage/data/{name} in {wheel.name}",
                              lic) for name, lic in SKIMAGE]
    return []


def load_photos(photo_dir: str | Path | None = None) -> list[Photo]:
    """Every source photograph available offline (see the module docstring), in a fixed order."""
    folder = Path(photo_dir) if photo_dir else default_dir()
    photos = []
    for package, member, licence in BUNDLED:
        root = _package_dir(package)
        if root and (root / member).is_file():
            photos.append(Photo(Path(member).name, _open((root / member).read_bytes()), f"{package}/{member}", licence))
    photos += _skimage_photos(folder)
    if folder.is_dir():
        photos += [Photo(p.name, _open(p.read_bytes()), str(p), "the user's") for p in sorted(folder.iterdir())
                   if p.suffix.lower() in PHOTO_SUFFIXES]
    if not photos:
        raise SystemExit("no photographs found: install vggnet[report] (scikit-learn, matplotlib) or pass --photos")
    return photos


def fetch_wheel(dest: str | Path | None = None) -> Path:
    """Download scikit-image's wheel (its photos only are used; nothing is installed) into ``dest``."""
    folder = Path(dest) if dest else default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "scikit-image",
                    "-d", str(folder)], check=True)
    return max(folder.glob("scikit_image-*.whl"), key=lambda p: p.stat().st_mtime)


def _crop(rng: random.Random, photo: Image.Image, width: int, height: int) -> Image.Image:
    """A ``width`` x ``height`` cut at a random scale between the smallest that covers it and native
    (above native only where the photo is too small), at a random place, mirrored half the time."""
    w, h = photo.size
    low = max(width / w, height / h)
    scale = rng.uniform(low, max(low, 1.0))
    cw, ch = width / scale, height / scale
    left, top = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    out = photo.resize((width, height), Image.Resampling.LANCZOS, box=(left, top, left + cw, top + ch))
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def make_photos(out_dir: str | Path, n: int, size: tuple[int, int] = (500, 375), quality: int = 90, seed: int = 0,
                *, portrait: float = 0.2, tiles: int = 1, photos: list[Photo] | None = None) -> list[Path]:
    """Write ``n`` JPEGs (``photo_0000.jpg``...) of ``size`` (``portrait`` of them turned to height x
    width), each a ``tiles`` x ``tiles`` mosaic of random crops of real photos; seeded, so reproducible.
    Returns their paths."""
    photos = photos or load_photos()
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        width, height = size[::-1] if rng.random() < portrait else size
        canvas = Image.new("RGB", (width, height))
        xs = [round(width * k / tiles) for k in range(tiles + 1)]
        ys = [round(height * k / tiles) for k in range(tiles + 1)]
        for x0, x1 in itertools.pairwise(xs):
            for y0, y1 in itertools.pairwise(ys):
                fits = [p.image for p in photos if max((x1 - x0) / p.image.width, (y1 - y0) / p.image.height)
                        <= MAX_UPSCALE]
                canvas.paste(_crop(rng, rng.choice(fits or [p.image for p in photos]), x1 - x0, y1 - y0), (x0, y0))
        paths.append(out / f"photo_{i:04d}.jpg")
        canvas.save(paths[-1], "JPEG", quality=quality)
    return paths


def make_large_photos(out_dir: str | Path, n: int, size: tuple[int, int] = (2000, 1500), quality: int = 90,
                      seed: int = 0, *, photos: list[Photo] | None = None) -> list[Path]:
    """Camera-sized JPEGs: 4x4 mosaics of native-resolution 500x375 crops (no bundled photo is larger)."""
    return make_photos(out_dir, n, size, quality, seed, tiles=4, photos=photos)


def mean_bytes(paths: list[Path]) -> float:
    """Mean file size: to compare with ImageNet's (about 110 KB for its 500x375 files)."""
    return statistics.fmean(p.stat().st_size for p in paths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", help="where to write the JPEGs (omit with --fetch to only fetch)")
    ap.add_argument("-n", "--images", type=int, default=64)
    ap.add_argument("--large", action="store_true", help="2000x1500 mosaics instead of 500x375 crops")
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", help=f"folder with a scikit_image-*.whl and/or photos (default {default_dir()})")
    ap.add_argument("--fetch", action="store_true", help="first pip-download scikit-image's wheel into that folder")
    args = ap.parse_args()
    if args.fetch:
        print(f"fetched {fetch_wheel(args.photos)}", file=sys.stderr)
    if not args.out_dir:
        return
    photos = load_photos(args.photos)
    for p in photos:
        print(f"{p.name:<22} {p.image.width}x{p.image.height:<5} {p.origin}  [{p.licence}]", file=sys.stderr)
    make = make_large_photos if args.large else make_photos
    paths = make(args.out_dir, args.images, quality=args.quality, seed=args.seed, photos=photos)
    print(f"{len(paths)} JPEGs in {args.out_dir}, mean {mean_bytes(paths) / 1000:.1f} KB")


if __name__ == "__main__":
    main()
