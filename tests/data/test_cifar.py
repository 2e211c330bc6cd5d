import pickle
import tarfile

import numpy as np
import pytest
import torch

from tests.helpers import CIFAR_CLASSES, FileServer, cifar_batches, make_cifar_archive, md5, write_tar
from vggnet.data import cifar
from vggnet.data.datasets import load_data
from vggnet.errors import ChecksumError, DataError, DownloadError


def test_archive_reads_as_the_official_layout(tmp_path):
    archive = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz", n_per_batch=20, n_test=12)
    data = cifar.load_cifar10(archive)
    assert data["train"].images.shape == (100, 3, 32, 32) and data["test"].images.shape == (12, 3, 32, 32)
    assert data["train"].classes == CIFAR_CLASSES
    # Row-major (3, 32, 32): the first 1024 bytes of a row are the red plane.
    batch = pickle.loads(cifar_batches(n_per_batch=20, n_test=12)["data_batch_2"])
    assert torch.equal(data["train"].images[20, 0].flatten(), torch.from_numpy(batch[b"data"][0, :1024]))
    assert data["train"].labels[20:40].tolist() == batch[b"labels"]


def test_extracted_folder_and_its_parent_read_the_same(tmp_path):
    archive = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    a = cifar.load_cifar10(archive)["train"]
    for root in (tmp_path / "x", tmp_path / "x" / "cifar-10-batches-py"):
        b = cifar.load_cifar10(root)["train"]
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_download_into_cache_with_md5_then_split(tmp_path, monkeypatch):
    archive = make_cifar_archive(tmp_path / "src.tar.gz", n_per_batch=40)
    server = FileServer(archive.read_bytes())
    try:
        monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
        monkeypatch.setattr(cifar, "MD5", md5(archive))
        monkeypatch.setattr(cifar, "SIZE", archive.stat().st_size)
        monkeypatch.setattr(cifar, "URL", server.url)
        splits = load_data("cifar10", val_fraction=0.1, seed=3, progress=False)
        assert (tmp_path / "home" / "cifar10" / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
        assert (len(splits.train), len(splits.val), len(splits.test)) == (180, 20, 20)
        again = load_data("cifar10", val_fraction=0.1, seed=3, progress=False)
        assert len(server.requests) == 1  # cached
        assert torch.equal(again.val.images, splits.val.images)  # the seeded split is stable
    finally:
        server.close()


def test_wrong_md5_download_is_refused(tmp_path, monkeypatch):
    archive = make_cifar_archive(tmp_path / "src.tar.gz")
    server = FileServer(archive.read_bytes())
    try:
        monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
        monkeypatch.setattr(cifar, "SIZE", archive.stat().st_size)
        monkeypatch.setattr(cifar, "URL", server.url)  # the real MD5 cannot match this archive
        with pytest.raises(ChecksumError, match="expected c58f30108f718f92721af3b95e74349a"):
            cifar.load_cifar10(progress=False)
        assert not (tmp_path / "home" / "cifar10" / "cifar-10-python.tar.gz").exists()
    finally:
        server.close()


def test_labels_out_of_range_are_refused(tmp_path):
    archive = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz", bad_label=True)
    with pytest.raises(DataError, match=r"1 labels out of range \[0, 10\), e.g. 10"):
        cifar.load_cifar10(archive)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    files = cifar_batches()
    files["data_batch_1"] = pickle.dumps({b"data": Evil()}, protocol=2)
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", files, prefix="cifar-10-batches-py/")
    with pytest.raises(DataError, match=r"refers to \S*print, which the format never uses"):
        cifar.load_cifar10(archive)


def test_missing_batch_and_wrong_shape_are_one_line(tmp_path):
    files = cifar_batches()
    del files["test_batch"]
    with pytest.raises(DataError, match="has no test_batch"):
        cifar.load_cifar10(write_tar(tmp_path / "a.tar.gz", files))
    files = cifar_batches()
    files["data_batch_1"] = pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}, protocol=2)
    with pytest.raises(DataError, match=r"must be \(N, 3072\) uint8"):
        cifar.load_cifar10(write_tar(tmp_path / "b.tar.gz", files))
    (tmp_path / "c.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DataError, match="cannot open CIFAR archive"):
        cifar.load_cifar10(tmp_path / "c.tar.gz")


def test_a_damaged_memo_index_is_refused_before_it_allocates(tmp_path):
    batch = {b"data": np.zeros((10000, 3072), dtype=np.uint8), b"labels": [0] * 10000, b"batch_label": b"x"}
    good = pickle.dumps(batch, protocol=2)
    assert cifar._unpickle(good, "data_batch_1")["data"].shape == (10000, 3072)  # a full-size batch passes
    # one PUT rewritten to index 2^31: the C unpickler would size its memo table to 16 GiB
    damaged = good.replace(b"q\x00", b"r" + (2**31).to_bytes(4, "little"), 1)
    with pytest.raises(DataError, match="cannot read CIFAR batch data_batch_1: memo index 2147483648"):
        cifar._unpickle(damaged, "data_batch_1")


def _archive_with_labels(path, labels, batch="data_batch_2", **extra):
    """The fake release with one batch's ``labels`` replaced (``labels=None``: the key removed)."""
    files = cifar_batches()
    content = pickle.loads(files[batch])
    if labels is None:
        del content[b"labels"]
    else:
        content[b"labels"] = labels
    content.update(extra)
    files[batch] = pickle.dumps(content, protocol=2)
    return write_tar(path, files, prefix="cifar-10-batches-py/")


def _one_line_error(archive) -> str:
    with pytest.raises(DataError) as err:
        cifar.load_cifar10(archive)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_labels_name_the_batch(tmp_path):
    message = _one_line_error(_archive_with_labels(tmp_path / "a.tar.gz", None))
    assert message == "CIFAR batch data_batch_2 has no labels"


@pytest.mark.parametrize(
    ("bad", "found"),
    [
        (3.7, "float 3.7"),
        (3.0, "float 3.0"),  # integral, still not an integer: the file is not what it claims
        ("cat", "str 'cat'"),
        (b"3", "bytes b'3'"),
        (True, "bool True"),
        (None, "NoneType None"),
    ],
)
def test_labels_that_are_not_integers_are_refused(tmp_path, bad, found):
    labels = [1] * 20
    labels[5] = bad
    message = _one_line_error(_archive_with_labels(tmp_path / "a.tar.gz", labels))
    assert message.startswith(f"CIFAR batch data_batch_2: labels must be integers, found {found}")
    assert message.endswith("(label 5)")


def test_labels_float_array_is_refused_not_truncated(tmp_path):
    labels = np.full(20, 3.7)
    message = _one_line_error(_archive_with_labels(tmp_path / "a.tar.gz", labels))
    assert "CIFAR batch data_batch_2: labels must be integers, found float 3.7" in message


def test_labels_that_are_not_a_list_are_refused(tmp_path):
    message = _one_line_error(_archive_with_labels(tmp_path / "a.tar.gz", 7))
    assert message == "CIFAR batch data_batch_2: labels must be a list of integers, got int"
    message = _one_line_error(_archive_with_labels(tmp_path / "b.tar.gz", np.zeros((4, 5), np.int64)))
    assert message == "CIFAR batch data_batch_2: labels must be a 1-D list of integers, got shape (4, 5)"


@pytest.mark.parametrize("count", [19, 21, 0])
def test_label_count_must_match_the_images(tmp_path, count):
    message = _one_line_error(_archive_with_labels(tmp_path / "a.tar.gz", [0] * count))
    assert message == f"CIFAR batch data_batch_2: 20 images but {count} labels"


@pytest.mark.parametrize(("bad", "shown"), [(-1, "-1"), (10, "10"), (2**70, str(2**70))])
def test_labels_out_of_range_name_the_batch(tmp_path, bad, shown):
    labels = [0] * 20
    labels[3] = bad
    message = _one_line_error(_archive_with_labels(tmp_path / "a.tar.gz", labels, batch="test_batch"))
    assert message == f"CIFAR batch test_batch: 1 labels out of range [0, 10), e.g. {shown}"


def test_labels_as_an_integer_array_are_read(tmp_path):
    labels = np.arange(20, dtype=np.uint8) % 10
    data = cifar.load_cifar10(_archive_with_labels(tmp_path / "a.tar.gz", labels))
    assert data["train"].labels.dtype == torch.int64
    assert data["train"].labels[20:40].tolist() == labels.tolist()
    out_of_range = np.array([0] * 19 + [200], dtype=np.uint8)
    message = _one_line_error(_archive_with_labels(tmp_path / "b.tar.gz", out_of_range))
    assert message == "CIFAR batch data_batch_2: 1 labels out of range [0, 10), e.g. 200"


def test_a_file_put_in_the_cache_by_hand_is_checked_and_offline_says_where_a_copy_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(cifar, "URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens: offline
    with pytest.raises(DownloadError, match=r"offline, put cifar-10-python.tar.gz at .*home/cifar10/cifar-10-python"
                                        r"\.tar\.gz or pass its path with --data$"):
        cifar.load_cifar10(progress=False)
    cached = tmp_path / "home" / "cifar10" / "cifar-10-python.tar.gz"
    make_cifar_archive(cached)  # a 'cifar-10-python.tar.gz' that is not the release
    with pytest.raises(DataError, match=r"is not the official cifar-10-python.tar.gz \(its size or md5 differs\)"):
        load_data("cifar10", progress=False)
    assert cached.exists()  # said, not deleted: the user's file


def test_the_first_member_is_found_past_pax_entries_in_any_compression_and_reads_are_bounded(tmp_path):
    import bz2
    import gzip
    import io
    import lzma

    plain = tmp_path / "pax.tar"
    with tarfile.open(plain, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.pax_headers = {"comment": "x" * 3000}  # a PAX entry before the member
        tar.addfile(info, io.BytesIO(b""))
    raw = plain.read_bytes()
    for name, packed in (("a.tar", raw), ("a.tgz", gzip.compress(raw)), ("a.tbz", bz2.compress(raw)),
                         ("a.txz", lzma.compress(raw))):
        (tmp_path / name).write_bytes(packed)
        assert cifar.first_member(tmp_path / name) == "cifar-10-batches-py/batches.meta", name
        assert cifar.is_cifar_source(tmp_path / name)
    endless_name = tmp_path / "name.gz"  # a gzip header whose file name never ends
    endless_name.write_bytes(b"\x1f\x8b\x08\x08\0\0\0\0\0\x03" + b"a" * (3 * cifar.SNIFF_RAW))
    empty_members = tmp_path / "empty.gz"
    empty_members.write_bytes(gzip.compress(b"") * 200_000)
    for hostile in (endless_name, empty_members):
        assert cifar.first_member(hostile) == ""


def test_a_binary_release_beside_class_folders_does_not_hide_them(tmp_path):
    from tests.helpers import write_class_folders

    root = write_class_folders(tmp_path / "d", {"cat": [(200, 0, 0)] * 3, "dog": [(0, 0, 200)] * 3})
    (root / "cifar-10-batches-bin").mkdir()
    (root / "cifar-10-batches-bin" / "batches.meta.txt").write_text("cat\ndog\n")
    assert not cifar.is_cifar_source(root) and load_data(root, whole=True, progress=False).classes == ["cat", "dog"]


def test_a_renamed_release_is_known_by_its_first_member_and_nothing_else_is(tmp_path):
    renamed = make_cifar_archive(tmp_path / "cifar-10-python (1).tar.gz")
    assert cifar.is_cifar_source(renamed) and cifar.first_member(renamed).startswith("cifar-10-batches-py/")
    folders = write_tar(tmp_path / "classes.tar.gz", {"cat/0.png": b"x"})
    assert not cifar.is_cifar_source(folders)
    for junk in (b"", b"\x1f\x8b not gzip at all", bytes(100)):
        (tmp_path / "junk.tar.gz").write_bytes(junk)
        assert not cifar.is_cifar_source(tmp_path / "junk.tar.gz")
