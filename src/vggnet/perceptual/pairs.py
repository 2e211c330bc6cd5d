"""LPIPS between image files: two images, or two folders matched by relative file name.

Images are read as every vggnet reader reads them (regular files only, within the size bound,
decoded to RGB and oriented as a viewer shows them) and used at their own size. The size is read
from the header first, so an image too large for LPIPS is refused before it is decoded. One bad
or mismatched pair is reported in its row; no pair scorable is an error.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import torch

from vggnet.data.transforms import to_uint8_chw
from vggnet.errors import DataError, VggnetError
from vggnet.evaluate.predict import decode_image_file, folder_images
from vggnet.perceptual.lpips import LPIPS, MAX_PIXELS
from vggnet.progress import progress_bar

PathLike = str | os.PathLike[str]


def read_image(path: PathLike) -> torch.Tensor:
    """A (1, 3, H, W) float tensor in [-1, 1], LPIPS's range."""
    img = decode_image_file(path, MAX_PIXELS)
    return to_uint8_chw(img).unsqueeze(0).float() / 127.5 - 1


def pairs(a: PathLike, b: PathLike) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """(name, path in a, path in b) for the images both hold, and the names only in a, only in b.
    Two files are one pair, named after the first."""
    a, b = Path(a), Path(b)
    if a.is_dir() != b.is_dir():
        raise VggnetError(f"compare two images or two folders; {a} is {'a folder' if a.is_dir() else 'a file'} "
                          f"and {b} is {'a folder' if b.is_dir() else 'a file'}")
    if not a.is_dir():
        return [(a.name, str(a), str(b))], [], []
    left = {str(Path(p).relative_to(a)): p for p in folder_images(a)}
    right = {str(Path(p).relative_to(b)): p for p in folder_images(b)}
    both = sorted(left.keys() & right.keys())
    if not both:
        raise DataError(f"{a} and {b} share no image file names (e.g. {min(left)} and {min(right)}); LPIPS "
                        "compares files of the same relative name")
    return ([(n, left[n], right[n]) for n in both], sorted(left.keys() - right.keys()),
            sorted(right.keys() - left.keys()))


def score_pairs(metric: LPIPS, found: list[tuple[str, str, str]], device: str = "cpu",
                progress: bool = False) -> list[dict]:
    """One row per pair: name, a, b and lpips, or error where the pair could not be scored."""
    rows = []
    with progress_bar("LPIPS", len(found), enabled=progress and len(found) > 1, unit="pairs") as bar:
        for name, pa, pb in found:
            row: dict[str, object] = {"name": name, "a": pa, "b": pb}
            try:
                x, y = read_image(pa), read_image(pb)
                if x.shape != y.shape:
                    raise DataError(f"{name}: sizes differ: {x.shape[-1]} x {x.shape[-2]} in {pa}, "
                                    f"{y.shape[-1]} x {y.shape[-2]} in {pb}")
                with torch.inference_mode():
                    row["lpips"] = float(metric(x.to(device), y.to(device)).item())
            except VggnetError as err:
                row["error"] = str(err)
            rows.append(row)
            bar.advance()
    if all("error" in r for r in rows):
        first = rows[0]  # its error names the file at fault
        raise DataError(first["error"] if len(rows) == 1 else
                        f"none of the {len(rows)} pairs could be scored; the first, {first['name']}: {first['error']}")
    return rows


def rows_csv(rows: list[dict]) -> str:
    """name, a, b, lpips, error: one row per pair."""
    out = io.StringIO()
    writer = csv.DictWriter(out, ["name", "a", "b", "lpips", "error"], lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "lpips": f"{r['lpips']:.6f}" if "lpips" in r else ""})
    return out.getvalue()
