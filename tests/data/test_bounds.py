"""Every file read as data is a regular file within ``$VGGNET_MAX_FILE_MB``, refused by what it
declares before it is read; CIFAR batches are bounded by what the format allows before any array
is built. Hostile inputs are made cheaply (sparse tars, FIFOs, a lowered bound), and each refusal
must arrive at once, as one line, without the memory a declared size asks for."""

import os
import pickle
import time
import tracemalloc

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.data.hostile import GIB, fifo, finishes, sparse_tar
from tests.helpers import cifar_batches, image_bytes, write_tar
from vggnet.cli import cli
from vggnet.data import cifar
from vggnet.data.sources import open_source
from vggnet.errors import DataError
from vggnet.evaluate.predict import predict_images
from vggnet.files import FileRefused, max_file_bytes
from vggnet.models import create_model

MIB = 1 << 20


def refused_fast(fn, exc=DataError, seconds: float = 2.0) -> str:
    """``fn`` raises ``exc`` within ``seconds`` and without allocating 64 MiB on the way; the message."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(exc) as err:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < seconds
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB allocated before the refusal"
    message = str(err.value)
    assert "\n" not in message
    return message


# -- the bound -----------------------------------------------------------------------------------


def test_the_bound_is_one_setting_from_the_environment(monkeypatch):
    monkeypatch.delenv("VGGNET_MAX_FILE_MB", raising=False)
    assert max_file_bytes() == 1024 * MIB
    monkeypatch.setenv("VGGNET_MAX_FILE_MB", "2.5")
    assert max_file_bytes() == int(2.5 * MIB)
    for bad in ("lots", "0", "-1", "nan", "inf"):
        monkeypatch.setenv("VGGNET_MAX_FILE_MB", bad)
        with pytest.raises(DataError, match=rf"VGGNET_MAX_FILE_MB must be a number of MiB > 0 .*got '{bad}'"):
            max_file_bytes()


def test_a_folder_image_over_the_bound_is_refused_unread(tmp_path, monkeypatch):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "big.png").write_bytes(image_bytes((1, 2, 3), fmt="PNG") + bytes(2 * MIB))
    fifo(tmp_path / "cat" / "pipe.png")
    monkeypatch.setenv("VGGNET_MAX_FILE_MB", "1")
    source = open_source(tmp_path)
    message = refused_fast(lambda: source.read("cat/big.png"), FileRefused)
    assert message == "2 MiB, over the 1 MiB that vggnet reads (set VGGNET_MAX_FILE_MB to raise it)"
    assert source.read("cat/big.png", limit=8) == b"\x89PNG\r\n\x1a\n"  # a header read is bounded by itself
    pipe = tmp_path / "cat" / "pipe.png"
    message = finishes(lambda: refused_fast(lambda: source.read("cat/pipe.png"), FileRefused), pipe)
    assert message == "not a regular file (a FIFO)"


def test_an_archive_member_over_the_bound_is_refused_by_its_header(tmp_path, monkeypatch):
    # a gzip of zeros: 2 KB on disk for a 2 MiB member; the real attack is GiBs, the bound says MiB here
    archive = write_tar(tmp_path / "data.tar.gz", {"cat/big.png": bytes(2 * MIB), "cat/ok.png": image_bytes((9, 9, 9))})
    monkeypatch.setenv("VGGNET_MAX_FILE_MB", "1")
    source = open_source(archive)
    assert "over the 1 MiB that vggnet reads" in refused_fast(lambda: source.read("cat/big.png"), FileRefused)
    assert source.read("cat/ok.png") == image_bytes((9, 9, 9))
    monkeypatch.delenv("VGGNET_MAX_FILE_MB")
    sparse = open_source(sparse_tar(tmp_path / "sparse.tar", "cat/huge.png"))  # 3 KB declaring 8 GiB
    assert (tmp_path / "sparse.tar").stat().st_size < 20_000 and sparse.size("cat/huge.png") == 8 * GIB
    message = refused_fast(lambda: sparse.read("cat/huge.png"), FileRefused)
    assert message.startswith("8.0 GiB, over the 1.0 GiB that vggnet reads")


# -- CIFAR-10 ------------------------------------------------------------------------------------


class _Alloc:
    """Pickles as ``numpy.ndarray((400000, 3072), 'u1')``: 1.2 GB of uninitialised (black) images."""

    def __reduce__(self):
        return np.ndarray, ((400_000, 3072), "u1")


class _EarlyShape:
    """Pickles as numpy's own ``_reconstruct`` asked for the full shape before any data."""

    def __reduce__(self):
        return np.ndarray.__reduce__(np.zeros(0, np.uint8))[0], (np.ndarray, (400_000, 3072), b"B")


class _ShortState:
    """A genuine array pickle whose state claims 400,000 rows while holding 100 bytes."""

    def __reduce__(self):
        fn, args, state = np.zeros(100, np.uint8).__reduce__()
        return fn, args, (state[0], (400_000, 3072), *state[2:])


@pytest.mark.parametrize(("payload", "why"), [
    (_Alloc(), "numpy.ndarray called directly (an array whose data is not in the file)"),
    (_EarlyShape(), "an array rebuilt as (400000, 3072) before its data"),
    (_ShortState(), "an array of shape (400000, 3072), larger than a batch holds (10000 x 3072)"),
])
def test_a_batch_array_is_bounded_before_it_is_built(payload, why):
    data = pickle.dumps({b"data": payload, b"labels": [0]}, protocol=2)
    assert len(data) < 400  # a few hundred bytes
    message = refused_fast(lambda: cifar._unpickle(data, "data_batch_1"))
    assert message.startswith(f"cannot read CIFAR batch data_batch_1: {why}")


def test_a_batch_with_more_rows_than_the_format_is_refused(tmp_path):
    files = cifar_batches()
    files["data_batch_1"] = pickle.dumps({b"data": np.zeros((10_001, 3072), np.uint8), b"labels": [0] * 10_001},
                                         protocol=2)
    with pytest.raises(DataError) as err:
        cifar.load_cifar10(write_tar(tmp_path / "cifar-10-python.tar", files, mode="w"))
    assert str(err.value).startswith("cannot read CIFAR batch data_batch_1: an array of shape (10001, 3072)")
    full = {b"data": np.zeros((10_000, 3072), np.uint8), b"labels": [0] * 10_000}  # the release's own size
    assert cifar._unpickle(pickle.dumps(full, protocol=2), "data_batch_1")["data"].shape == (10_000, 3072)


def test_a_batch_array_short_of_its_bytes_is_refused_not_zero_filled():
    good = pickle.dumps({b"data": np.ones((20, 3072), np.uint8), b"labels": [0] * 20}, protocol=2)
    def blob(n: int) -> bytes:  # the pickled str that holds the pixels: BINUNICODE, its length, its bytes
        return b"X" + n.to_bytes(4, "little") + b"\x01" * n

    short = good.replace(blob(3072 * 20), blob(3072 * 2))  # the same shape over a tenth of the bytes
    assert len(short) < len(good)
    with pytest.raises(DataError, match=r"cannot read CIFAR batch data_batch_1: .*size"):
        cifar._unpickle(short, "data_batch_1")


def test_a_cifar_member_declaring_gigabytes_is_refused_unread(tmp_path, monkeypatch):
    release = {f"cifar-10-batches-py/{k}": v for k, v in cifar_batches().items() if k != "data_batch_1"}
    archive = sparse_tar(tmp_path / "cifar-10-python.tar", "cifar-10-batches-py/data_batch_1", before=release)
    message = refused_fast(lambda: cifar.load_cifar10(archive))
    assert "member cifar-10-batches-py/data_batch_1 declares 8,589,934,592 bytes" in message
    assert "at most 67,108,864 read" in message
    folder = tmp_path / "cifar-10-batches-py"  # the extracted release: the same bound, by the file's size
    folder.mkdir()
    for name, data in cifar_batches().items():
        (folder / name).write_bytes(data)
    with open(folder / "data_batch_4", "r+b") as f:
        f.truncate(8 * GIB)  # a sparse file: no disk used
    message = refused_fast(lambda: cifar.load_cifar10(folder))
    assert message.startswith(f"{folder / 'data_batch_4'} declares 8,589,934,592 bytes; a CIFAR-10 batch is about")
    monkeypatch.setenv("VGGNET_MAX_FILE_MB", "0.01")  # the format's bound, lowered further by the setting
    message = refused_fast(lambda: cifar.load_cifar10(write_tar(tmp_path / "small.tar.gz", cifar_batches())))
    assert "declares" in message and "at most 10,485 read" in message


def test_a_fifo_or_device_as_cifar_data_is_refused(tmp_path):
    pipe = fifo(tmp_path / "cifar-10-python.tar.gz")
    message = finishes(lambda: refused_fast(lambda: cifar.load_cifar10(pipe)), pipe)
    assert message == f"{pipe}: not a regular file (a FIFO)"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in cifar_batches().items():
        if name != "data_batch_3":
            (folder / name).write_bytes(data)
    os.symlink("/dev/zero", folder / "test_batch.tmp")
    os.replace(folder / "test_batch.tmp", folder / "test_batch")
    pipe = fifo(folder / "data_batch_3")
    message = finishes(lambda: refused_fast(lambda: cifar.load_cifar10(folder)), pipe)
    assert message.startswith(f"{pipe}: not a regular file (a FIFO)")
    os.remove(pipe)
    (folder / "data_batch_3").write_bytes(cifar_batches()["data_batch_3"])
    message = finishes(lambda: refused_fast(lambda: cifar.load_cifar10(folder)))
    assert message.startswith(f"{folder / 'test_batch'}: not a regular file (a character device)")


# -- images given to predict ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "vgg11.pth"
    torch.save(create_model("vgg11", head="linear", num_classes=3).state_dict(), path)
    return path


def test_predict_refuses_a_fifo_image_at_once(weights, tmp_path):
    pipe = fifo(tmp_path / "photo.jpg")
    message = finishes(lambda: refused_fast(lambda: predict_images(weights, [pipe], model_name="vgg11")), pipe)
    assert message == f"{pipe}: not a regular file (a FIFO); pass an image file"
    result = finishes(lambda: CliRunner().invoke(cli, ["predict", str(pipe), "--weights", str(weights)]), pipe)
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}"


def test_predict_refuses_dev_zero_and_an_image_over_the_bound(weights, tmp_path, monkeypatch):
    message = finishes(lambda: refused_fast(lambda: predict_images(weights, ["/dev/zero"], model_name="vgg11")))
    assert message == "/dev/zero: not a regular file (a character device); pass an image file"
    big = tmp_path / "big.png"
    big.write_bytes(image_bytes((1, 2, 3), fmt="PNG") + bytes(2 * MIB))
    monkeypatch.setenv("VGGNET_MAX_FILE_MB", "1")
    message = refused_fast(lambda: predict_images(weights, [big], model_name="vgg11"))
    assert message.startswith(f"{big}: 2 MiB, over the 1 MiB that vggnet reads (set VGGNET_MAX_FILE_MB")
    monkeypatch.delenv("VGGNET_MAX_FILE_MB")
    small = tmp_path / "ok.png"
    small.write_bytes(image_bytes((200, 0, 0), fmt="PNG"))
    assert len(predict_images(weights, [small], top_k=2, model_name="vgg11")[0]["top2"]) == 2
