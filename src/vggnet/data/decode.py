"""Image bytes to 8-bit RGB as a viewer shows them, or :class:`BadImage` naming why not.

High bit depth is scaled by the file's nominal range (never clipped, never stretched per image:
a uniformly dark and a uniformly bright class must stay apart); EXIF orientation is applied.
"""

from __future__ import annotations

import io
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from vggnet.files import UnreadableFile

SNIFF_BYTES = 32
"""How many leading bytes :func:`looks_like_image` needs."""
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".pnm", ".gif",
                              ".tif", ".tiff", ".webp", *((".avif",) if features.check("avif") else ())})
_HIGH_DEPTH = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}  # EXIF Orientation -> transposition, as in ImageOps.exif_transpose,
# which is not called: it re-writes the EXIF block afterwards and raises when any other tag in it is damaged


class BadImage(UnreadableFile):
    """An image file that Pillow cannot decode."""


def _sniff(head: bytes) -> str | None:
    """The format whose signature ``head`` starts with, among those Pillow reads; a bytes check only."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "BMP"  # the DIB header size too: plenty of text starts with "BM"
    if head.startswith((b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")):
        return "TIFF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PNM"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis") and ".avif" in IMAGE_EXTENSIONS:
        return "AVIF"
    return None


def looks_like_image(head: bytes) -> bool:
    """Whether a file's first bytes (up to ``SNIFF_BYTES``) are an image signature: for files with no extension."""
    return _sniff(head[:SNIFF_BYTES]) is not None


def _orientation(img: Image.Image, header_only: bool = False) -> int:
    """The EXIF orientation (1-8) still to apply; 1 when absent or unreadable, so a damaged EXIF block never
    fails an image. Pillow orients a TIFF itself: its size at open, its pixels in load()."""
    if img.format == "TIFF" or (header_only and img.format == "PNG" and "exif" not in img.info):
        return 1  # PNG: Pillow would decode the whole image to look for an eXIf chunk after the pixels
    try:
        value = img.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and value in _TRANSPOSE else 1
    except Exception:
        return 1


def _tag(img: Image.Image, tag: int, default: int) -> int:
    """A TIFF tag's first value (BitsPerSample 258, Photometric 262, SampleFormat 339), or ``default``."""
    value = getattr(img, "tag_v2", {}).get(tag, default)
    return int(value[0] if isinstance(value, tuple) else value)


def _scale_int(img: Image.Image) -> Image.Image:
    """Integer samples to 0..255 by the nominal range: TIFF BitsPerSample/SampleFormat, 16-bit otherwise."""
    bits, signed = _tag(img, 258, 8 if img.mode == "L" else 16), _tag(img, 339, 1) == 2
    raw = np.asarray(img)
    a = (raw.view(np.int8) if img.mode == "L" else raw).astype(np.int64)  # Pillow keeps int8 as raw bytes
    if img.mode == "I" and bits == 32 and not signed:
        a &= 0xFFFFFFFF  # Pillow reads uint32 into int32: undo the wrap
    if bits == 32 and a.size and a.min() >= 0 and a.max() <= 0xFFFF:  # 1/65536 of the range: all one grey
        raise BadImage(f"32-bit integer image with values in [{a.min()}, {a.max()}]: they fill a sliver of its "
                       "range, so its scale is unknown; save it as 16-bit (or 8-bit)")
    if signed:
        a += 1 << (bits - 1)
    top = (1 << bits) - 1
    if a.size and (a.min() < 0 or a.max() > top):
        raise BadImage(f"{bits}-bit image with values in [{a.min()}, {a.max()}], outside its range 0..{top}")
    if _tag(img, 262, 1) == 0:
        a = top - a  # MinIsWhite: Pillow inverts 8-bit samples only
    return Image.fromarray(np.rint(a * (255 / top)).astype(np.uint8))


def _scale_float(img: Image.Image) -> Image.Image:
    """Float samples on [0, 1] or [0, 255] to 0..255; any other range is refused, not guessed."""
    a = np.asarray(img, dtype=np.float64)
    nan = np.isnan(a)
    lo, hi = (float(a[~nan].min()), float(a[~nan].max())) if not nan.all() else (float("nan"),) * 2
    if nan.any() or lo < 0 or hi > 255:  # also catches +-inf
        found = "only NaN" if nan.all() else f"values in [{lo:g}, {hi:g}]{' and NaN' if nan.any() else ''}"
        raise BadImage(f"float image with {found}: vggnet reads float images on [0, 1] or [0, 255]; "
                       "convert it to 8-bit")
    return Image.fromarray(np.rint(a * 255 if hi <= 1 else a).astype(np.uint8))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "F":
        img = _scale_float(img)
    elif img.mode in _HIGH_DEPTH or (img.mode == "L" and _tag(img, 339, 1) == 2):
        img = _scale_int(img)
    if {"A", "a"} & set(img.getbands()) or "transparency" in img.info:
        # Composite on white, as a viewer shows it, rather than dropping alpha to black.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _draft(img: Image.Image, min_side: int) -> None:
    """JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale (its DCT does the downscaling, for a
    fraction of the work) while the smaller side stays at least ``min_side``."""
    if img.format != "JPEG" or min(img.size) < 2 * min_side:
        return
    w, h = img.size
    short = min(w, h)
    img.draft("RGB", (-(-w * min_side // short), -(-h * min_side // short)))


def decode_rgb(data: bytes, min_side: int | None = None) -> Image.Image:
    """Decode any Pillow format to 8-bit RGB, oriented as a viewer shows it (grayscale, CMYK, palette,
    alpha and 16-bit/float samples are converted). ``min_side``: the image will be rescaled so its
    smaller side is at most this; a large JPEG is then decoded at reduced size (never below it)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if min_side:
                _draft(img, min_side)
            img.load()  # decode now: a truncated file fails here, not later in a worker
            method = _TRANSPOSE.get(_orientation(img))
            rgb = _to_rgb(img)
            return rgb.transpose(method) if method is not None else rgb
    except BadImage:
        raise
    except UnidentifiedImageError:
        fmt = _sniff(data[:SNIFF_BYTES])
        raise BadImage(f"a {fmt} header, but a variant Pillow cannot read, or damaged" if fmt
                       else "not a format Pillow can identify") from None
    except Image.DecompressionBombError as err:
        raise BadImage(f"refused: {err}") from None
    except Exception as err:
        raise BadImage(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None


def image_size(fp: IO[bytes]) -> tuple[int, int]:
    """(width, height) once decoded and oriented, from the header alone: to survey a dataset cheaply."""
    try:
        with Image.open(fp) as img:
            width, height = img.size
            return (height, width) if _orientation(img, header_only=True) >= 5 else (width, height)
    except UnidentifiedImageError:
        raise BadImage("not a format Pillow can identify") from None
    except Image.DecompressionBombError as err:
        raise BadImage(f"refused: {err}") from None
    except Exception as err:
        raise BadImage(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
