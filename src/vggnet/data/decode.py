"""Image bytes to 8-bit RGB as a viewer shows them, or :class:`BadImage` naming why not."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError


class BadImage(ValueError):
    """An image file that Pillow cannot decode."""


def decode_rgb(data: bytes) -> Image.Image:
    """Decode any Pillow format to 8-bit RGB (grayscale, CMYK, palette and alpha are converted)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # decode now: a truncated file fails here, not later in a worker
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                # Composite on white, as a viewer shows it, rather than dropping alpha to black.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise BadImage("not a format Pillow can identify") from None
    except Image.DecompressionBombError as err:
        raise BadImage(f"refused: {err}") from None
    except Exception as err:
        raise BadImage(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
