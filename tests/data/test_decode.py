"""decode.py: high bit depth scaled by the file's nominal range (never clipped), EXIF orientation
applied, image signatures sniffed, sizes read from headers; anything else is a BadImage naming why."""

import io
import struct
import tarfile
import zlib

import numpy as np
import pytest
from PIL import Image, features

from vggnet.data.decode import IMAGE_EXTENSIONS, SNIFF_BYTES, BadImage, decode_rgb, image_size, looks_like_image

RED, BLUE = (230, 20, 20), (20, 20, 230)


def _save(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _gray(data: bytes) -> list[int]:
    """The first row of a decoded image, one value per pixel (asserting R == G == B)."""
    rgb = np.asarray(decode_rgb(data))[0].astype(int)
    assert (rgb == rgb[:, :1]).all()
    return rgb[:, 0].tolist()


def _png(width: int, depth: int, color_type: int, row: bytes) -> bytes:
    """A one-row PNG written by hand: Pillow cannot write 16-bit RGB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, 1, depth, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" + row)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _tiff(pixels: np.ndarray, bits: int, sample_format: int = 1, photometric: int | None = None) -> bytes:
    """A one-row, uncompressed little-endian TIFF written by hand: Pillow cannot write uint32, 12-bit,
    signed 8-bit, MinIsWhite 16-bit or 16-bit RGB TIFFs. ``pixels``: (width,) or (width, samples)."""
    samples = 1 if pixels.ndim == 1 else pixels.shape[1]
    data = bytes(pixels) if bits == 12 else pixels.tobytes()  # 12-bit: the caller packs the bytes
    n = len(pixels) if bits != 12 else len(pixels) * 8 // 12
    photometric = (2 if samples >= 3 else 1) if photometric is None else photometric
    tags = [(256, 4, [n]), (257, 4, [1]), (258, 3, [bits] * samples), (259, 3, [1]), (262, 3, [photometric]),
            (273, 4, [0]), (277, 3, [samples]), (278, 4, [1]), (279, 4, [len(data)]), (284, 3, [1]),
            (339, 3, [sample_format] * samples)]
    outside = 8 + 2 + 12 * len(tags) + 4  # where values too long for an entry go
    entries, extra = b"", b""
    for tag, kind, values in tags:
        packed = b"".join(struct.pack("<H" if kind == 3 else "<I", v) for v in values)
        if len(packed) > 4:
            entries += struct.pack("<HHII", tag, kind, len(values), outside + len(extra))
            extra += packed
        else:
            entries += struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\0")
    offset = entries.index(struct.pack("<HHI", 273, 4, 1)) + 8
    entries = entries[:offset] + struct.pack("<I", outside + len(extra)) + entries[offset + 4:]
    return b"II*\0" + struct.pack("<IH", 8, len(tags)) + entries + b"\0\0\0\0" + extra + data


# ---- high bit depth: scaled by the nominal range, never clipped, never stretched per image


def test_16bit_gray_png_is_scaled_not_clipped():
    data = _save(Image.fromarray(np.array([[1000, 60000, 0, 65535]], dtype=np.uint16)), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    assert _gray(data) == [4, 233, 0, 255]  # round(v * 255 / 65535); the old convert("RGB") gave 255 for all


def test_a_dark_and_a_bright_16bit_class_stay_apart():
    """Uniform images: per-image min-max stretching would make both the same; clipping makes both white."""
    dark = _save(Image.fromarray(np.full((4, 4), 5000, dtype=np.uint16)), "PNG")
    bright = _save(Image.fromarray(np.full((4, 4), 60000, dtype=np.uint16)), "PNG")
    assert np.asarray(decode_rgb(dark)).max() == np.asarray(decode_rgb(dark)).min() == 19
    assert np.asarray(decode_rgb(bright)).max() == np.asarray(decode_rgb(bright)).min() == 233


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16bit_gray_tiff_either_byte_order(dtype):
    data = _save(Image.fromarray(np.array([[1000, 60000]], dtype=dtype)), "TIFF")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I;16B")
    assert _gray(data) == [4, 233]


def test_16bit_pgm_whatever_its_maxval():
    """Pillow rescales PNM maxval to 16 bits (mode I): 100 of 1023 is round(100 * 255 / 1023) = 25."""
    assert _gray(b"P5 2 1 65535\n" + struct.pack(">HH", 1000, 60000)) == [4, 233]
    assert _gray(b"P5 2 1 1023\n" + struct.pack(">HH", 100, 1023)) == [25, 255]


def test_signed_int32_tiff_is_shifted_then_scaled():
    data = _save(Image.fromarray(np.array([[-2**31, 0, 2**31 - 1]], dtype=np.int32)), "TIFF")
    tiff = Image.open(io.BytesIO(data))
    assert (tiff.mode, tiff.tag_v2[258], tiff.tag_v2[339]) == ("I", (32,), (2,))
    assert _gray(data) == [0, 128, 255]  # the old clip gave [0, 0, 255]


def test_unsigned_int32_tiff_is_not_wrapped():
    """Pillow reads uint32 into int32 (2**32 - 2 becomes -2); the nominal range is 0 .. 2**32 - 1."""
    assert _gray(_tiff(np.array([2**32 - 2, 2**31, 5], dtype="<u4"), 32)) == [255, 128, 0]


def test_signed_16_and_8_bit_tiffs():
    assert _gray(_tiff(np.array([-32768, 0, 32767], dtype="<i2"), 16, sample_format=2)) == [0, 128, 255]
    # signed 8-bit: Pillow hands the raw bytes over as L (-100 would be 156, brighter than 100)
    assert _gray(_tiff(np.array([-100, 100], dtype="i1"), 8, sample_format=2)) == [28, 228]


def test_12bit_tiff_uses_bits_per_sample():
    packed = np.frombuffer(bytes([0x06, 0x4F, 0xFF]), dtype=np.uint8)  # 100 and 4095, 12 bits each
    assert _gray(_tiff(packed, 12)) == [6, 255]  # round(100 * 255 / 4095)


def test_16bit_min_is_white_tiff_is_inverted():
    """Pillow inverts 8-bit MinIsWhite only; 16-bit came through as MinIsBlack."""
    assert _gray(_tiff(np.array([1000, 60000], dtype="<u2"), 16, photometric=0)) == [251, 22]


def test_float_tiff_on_0_1_and_on_0_255():
    assert _gray(_save(Image.fromarray(np.array([[0.3, 0.5, 1.0]], dtype=np.float32)), "TIFF")) == [77, 128, 255]
    assert _gray(_save(Image.fromarray(np.array([[200.0, 17.4, 1.5]], dtype=np.float32)), "TIFF")) == [200, 17, 2]


@pytest.mark.parametrize(("values", "found"), [
    ([-3.2, 900.0], r"values in \[-3.2, 900\]:"),
    ([0.5, np.nan], r"values in \[0.5, 0.5\] and NaN:"),
    ([np.nan, np.nan], "only NaN:"),
    ([0.0, np.inf], r"values in \[0, inf\]:"),
])
def test_float_tiff_out_of_range_is_refused_naming_the_range(values, found):
    data = _save(Image.fromarray(np.array([values], dtype=np.float32)), "TIFF")
    with pytest.raises(BadImage, match=f"^float image with {found} vggnet reads float images on \\[0, 1\\] or "
                                       r"\[0, 255\]; convert it to 8-bit$"):
        decode_rgb(data)


def test_16bit_rgb_and_rgba_come_out_scaled():
    """Pillow 13 reads 16-bit-per-channel PNG and TIFF as 8-bit RGB(A) by the high byte (v >> 8): within one
    level of round(v * 255 / 65535), not clipped. This pins Pillow's behaviour (the old code relied on it too)."""
    values = [1000, 30000, 60000]
    exact = [round(v * 255 / 65535) for v in values]
    png = _png(1, 16, 2, struct.pack(">HHH", *values))
    tiff = _tiff(np.array([values], dtype="<u2"), 16)
    for data in (png, tiff):
        got = np.asarray(decode_rgb(data))[0, 0].tolist()
        assert got == [3, 117, 234] and all(abs(g - e) <= 1 for g, e in zip(got, exact, strict=True))
    rgba = _png(1, 16, 6, struct.pack(">HHHH", *values, 0))  # fully transparent: white, as a viewer shows it
    assert np.asarray(decode_rgb(rgba))[0, 0].tolist() == [255, 255, 255]


def test_a_tiff_layout_pillow_cannot_read_is_named():
    with pytest.raises(BadImage, match=r"^a TIFF header, but a variant Pillow cannot read"):
        decode_rgb(_tiff(np.array([[1, 2, 3]], dtype="<i2"), 16, sample_format=2))  # signed 16-bit RGB


# ---- EXIF orientation


def _exif_orientation(value: int) -> Image.Exif:
    tags = Image.Exif()
    tags[0x0112] = value
    return tags


def _marked_jpeg(orientation: int | None = None, exif: bytes | None = None) -> bytes:
    """40x20 as stored, blue with a red block in its top-left corner."""
    img = Image.new("RGB", (40, 20), BLUE)
    img.paste(RED, (0, 0, 10, 10))
    if orientation is not None:
        exif = _exif_orientation(orientation).tobytes()
    return _save(img, "JPEG", quality=95, **({"exif": exif} if exif else {}))


def _red_corner(img: Image.Image) -> str:
    w, h = img.size
    corners = {"top-left": (3, 3), "top-right": (w - 4, 3), "bottom-left": (3, h - 4), "bottom-right": (w - 4, h - 4)}
    red = [name for name, xy in corners.items() if img.getpixel(xy)[0] > 150 and img.getpixel(xy)[2] < 100]
    assert len(red) == 1, red
    return red[0]


@pytest.mark.parametrize(("orientation", "size", "corner"), [
    (None, (40, 20), "top-left"),
    (6, (20, 40), "top-right"),  # stored rotated 90 degrees counter-clockwise: a viewer turns it clockwise
    (3, (40, 20), "bottom-right"),
])
def test_exif_orientation_is_applied(orientation, size, corner):
    img = decode_rgb(_marked_jpeg(orientation))
    assert img.size == size and _red_corner(img) == corner


def test_a_garbage_exif_block_falls_back_to_the_stored_orientation():
    img = decode_rgb(_marked_jpeg(exif=b"Exif\0\0" + bytes(range(200))))
    assert img.size == (40, 20) and _red_corner(img) == "top-left"


def test_a_damaged_tag_beside_a_good_orientation_still_rotates():
    """XResolution retyped as text: ImageOps.exif_transpose raises rewriting the EXIF; the orientation is sound."""
    tags = Image.Exif()
    tags[0x0112], tags[0x011A] = 6, 72.0
    raw = tags.tobytes()
    raw = raw.replace(b"\x01\x1a\x00\x05", b"\x01\x1a\x00\x02")  # big-endian entry: tag 0x011A, type RATIONAL -> ASCII
    img = decode_rgb(_marked_jpeg(exif=raw))
    assert img.size == (20, 40) and _red_corner(img) == "top-right"


# ---- sniffing files with no extension


def _written_by_pillow() -> dict[str, bytes]:
    rgb = Image.new("RGB", (8, 8), RED)
    out = {fmt: _save(rgb, fmt) for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")}
    out["TIFF big-endian"] = _save(Image.fromarray(np.zeros((8, 8), dtype=">u2")), "TIFF")
    out["PGM"] = _save(rgb.convert("L"), "PPM")
    out["PBM"] = _save(rgb.convert("1"), "PPM")
    out["PPM ascii"] = b"P3\n1 1\n255\n230 20 20\n"
    if features.check("avif"):
        out["AVIF"] = _save(rgb, "AVIF")
    return out


@pytest.mark.parametrize(("name", "data"), list(_written_by_pillow().items()))
def test_looks_like_image_knows_each_format_pillow_writes(name, data):
    assert Image.open(io.BytesIO(data)).size  # Pillow reads it ...
    assert looks_like_image(data[:SNIFF_BYTES]) and looks_like_image(data)  # ... and its first bytes say so


@pytest.mark.parametrize("head", [b"", b"hello, world\n", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", b"PK\x03\x04\x14\0",
                                  b"BMW service history, 2019-2024\n", b"P5", b"Pizza\n", b"RIFF\x24\0\0\0WAVEfmt ",
                                  b"\0\0\0\x20ftypisom\0\0\x02\0"])
def test_looks_like_image_refuses_other_bytes(head):
    assert not looks_like_image(head)


def test_image_extensions():
    assert {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".pnm", ".gif", ".tif",
            ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert (".avif" in IMAGE_EXTENSIONS) == features.check("avif")
    assert set(Image.registered_extensions()) >= IMAGE_EXTENSIONS  # each one a format this Pillow opens


# ---- sizes from the header


def test_image_size_is_the_decoded_size():
    rotated_tiff = _save(Image.new("RGB", (40, 20), RED), "TIFF", exif=_exif_orientation(6))  # Pillow turns it on load
    for data, size in [(_marked_jpeg(), (40, 20)), (_marked_jpeg(6), (20, 40)), (_marked_jpeg(8), (20, 40)),
                       (_marked_jpeg(3), (40, 20)), (_save(Image.new("RGB", (40, 20)), "PNG"), (40, 20)),
                       (rotated_tiff, (20, 40)), (_marked_jpeg(exif=b"Exif\0\0" + bytes(64)), (40, 20))]:
        assert image_size(io.BytesIO(data)) == decode_rgb(data).size == size


def test_image_size_reads_only_the_header(tmp_path):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8))
    for data in (_save(noise, "JPEG", exif=_exif_orientation(6)), _save(noise, "PNG")):
        cut = data[: len(data) // 3]
        with pytest.raises(BadImage):
            decode_rgb(cut)  # the pixels are not all there ...
        assert image_size(io.BytesIO(cut)) == decode_rgb(data).size  # ... but the header is
    path = tmp_path / "images.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("a/b")
        info.size = len(data := _marked_jpeg(6))
        tar.addfile(info, io.BytesIO(data))
    with tarfile.open(path) as tar:
        assert image_size(tar.extractfile("a/b")) == (20, 40)


def test_image_size_of_a_non_image_is_a_bad_image():
    with pytest.raises(BadImage, match="not a format Pillow can identify"):
        image_size(io.BytesIO(b"hello, world\n"))


# ---- the guarantees kept


def test_truncated_and_oversized_images_are_bad_images(monkeypatch):
    data = _save(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(BadImage):
        decode_rgb(data[: len(data) // 2])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels: over twice the limit
    with pytest.raises(BadImage, match=r"^refused: "):
        decode_rgb(data)


@pytest.mark.parametrize(("mode", "color"), [("RGBA", (10, 20, 30, 0)), ("LA", (40, 0)),
                                              ("RGB", (10, 20, 30)), ("L", 40)])
def test_transparent_pixels_are_white(mode, color):
    """Alpha, and a PNG tRNS colour key on gray or RGB (which the old code ignored), composite on white."""
    keyed = {"transparency": color} if mode in ("RGB", "L") else {}
    data = _save(Image.new(mode, (2, 2), color), "PNG", **keyed)
    assert np.asarray(decode_rgb(data))[0, 0].tolist() == [255, 255, 255]


def test_a_32_bit_integer_image_holding_16_bit_values_is_refused_by_name():
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 40000, dtype=np.int32)).save(buf, format="TIFF")  # mode I, SampleFormat 2
    with pytest.raises(BadImage, match=r"^32-bit integer image with values in \[40000, 40000\]: .* save it as 16-bit"):
        decode_rgb(buf.getvalue())
