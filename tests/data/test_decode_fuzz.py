"""Damaged image bytes: decoding gives an RGB image or a BadImage, never another error or a hang."""

import io

import torch
from hypothesis import given
from PIL import Image

from tests.fuzz import FUZZ, damaged, no_hang
from vggnet.data.cifar import _unpickle
from vggnet.data.decode import BadImage, decode_rgb
from vggnet.errors import DataError


def _image(mode: str, fmt: str) -> bytes:
    g = torch.Generator().manual_seed(len(mode) + len(fmt))
    pixels = torch.randint(0, 256, (12, 10, len(Image.new(mode, (1, 1)).getbands())), generator=g,
                           dtype=torch.uint8).squeeze(-1).numpy()
    buf = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = [_image("RGB", "JPEG"), _image("CMYK", "JPEG"), _image("L", "PNG"), _image("RGBA", "PNG"),
         _image("RGB", "BMP"), _image("RGB", "TIFF"), _image("L", "GIF"), _image("RGB", "WEBP")]


def test_every_seed_decodes_to_rgb():
    assert all(decode_rgb(seed).mode == "RGB" for seed in SEEDS)


@FUZZ
@given(damaged(SEEDS))
def test_damaged_images_decode_or_raise_bad_image(data):
    with no_hang():
        try:
            image = decode_rgb(data)
        except BadImage as err:
            assert str(err) and "\n" not in str(err)
        else:
            assert image.mode == "RGB" and min(image.size) >= 1


def _batch_pickle() -> bytes:
    import pickle

    import numpy as np

    batch = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1], b"batch_label": b"x"}
    return pickle.dumps(batch, protocol=2)


@FUZZ
@given(damaged([_batch_pickle()]))
def test_damaged_cifar_batches_are_a_data_error(data):
    with no_hang():
        try:
            batch = _unpickle(data, "data_batch_1")
        except DataError as err:
            assert "\n" not in str(err)
        else:
            assert isinstance(batch, dict)
