"""Large JPEGs decode at reduced size (libjpeg's DCT scaling), never below the side they will be
rescaled to; other formats and small JPEGs decode whole; orientation is kept."""

import io

import pytest
from PIL import Image

from vggnet.data.decode import decode_rgb


def _encode(size, fmt="JPEG", orientation=None) -> bytes:
    img = Image.new("RGB", size, (200, 30, 90))
    img.paste((10, 220, 40), (0, 0, size[0] // 2, size[1] // 3))  # an asymmetric mark to see rotation by
    buf = io.BytesIO()
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(buf, format=fmt, exif=exif.tobytes())
    else:
        img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("size", "min_side", "expected"), [
    ((2000, 1500), 256, (500, 375)),  # 1/4: the smaller side 375 >= 256, and 1/8 would give 187
    ((2000, 1500), 32, (250, 188)),  # 1/8 is libjpeg's smallest scale
    ((500, 375), 256, (500, 375)),  # under twice the target: decoded whole
    ((1000, 300), 100, (500, 150)),  # a panorama: the smaller side decides
])
def test_a_large_jpeg_decodes_no_smaller_than_needed(size, min_side, expected):
    out = decode_rgb(_encode(size), min_side=min_side)
    assert out.size == expected and min(out.size) >= min_side and out.mode == "RGB"
    assert decode_rgb(_encode(size)).size == size  # without a target: whole


def test_png_and_orientation(tmp_path):
    assert decode_rgb(_encode((2000, 1500), "PNG"), min_side=64).size == (2000, 1500)
    rotated = decode_rgb(_encode((2000, 1000), orientation=6), min_side=200)  # stored landscape, shown portrait
    assert rotated.size == (250, 500)
    assert rotated.getpixel((240, 5)) == pytest.approx((10, 220, 40), abs=40)  # the mark is top right after rotation
