import errno
import json
import logging
import os

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from vggnet.data import array_cache
from vggnet.data.array_cache import cache_entries, cache_folder, clear_cache, entry_path, read_cached, write_cached
from vggnet.data.arrays import ImageArrays
from vggnet.errors import DataError

NAMES_OF_EVERY_KIND = ["a/0.jpg", "b/\u00e9t\u00e9.png", "c/\udcff.jpg", "a/\u65e5\u672c.jpg", "b/ .jpg", 'c/"q".jpg']


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VGGNET_CACHE_MAX_GB", raising=False)
    return tmp_path / "home"


def make_arrays(n: int = 6, side: int = 8, names: list[str] | None = None, seed: int = 0) -> ImageArrays:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)
    names = names if names is not None else [f"c{i % 3}/{i}.jpg" for i in range(n)]
    return ImageArrays(images, torch.arange(n) % 3, ["a", "b", "c"], {"bad/\udcfe.jpg": "not an image"}, names=names)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vggnet" and r.levelno == logging.WARNING]


def assert_damaged(caplog, key: str, why: str) -> None:
    path = entry_path(key)
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        assert read_cached(key) is None
    (message,) = warnings_of(caplog)
    assert message.startswith(f"decoded-image cache entry {path} is damaged (")
    assert message.endswith("); decoding again")
    assert why in message and "\n" not in message
    assert not path.exists()  # removed: the next run does not meet it again


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_round_trip_keeps_everything_including_undecodable_names():
    arrays = make_arrays(names=NAMES_OF_EVERY_KIND)
    write_cached("k1", arrays)
    assert files_in(cache_folder()) == ["k1.safetensors"]  # no temporary file left
    back = read_cached("k1")
    assert torch.equal(back.images, arrays.images) and torch.equal(back.labels, arrays.labels)
    assert back.labels.dtype == torch.int64
    assert back.classes == ["a", "b", "c"]
    assert back.skipped == {"bad/\udcfe.jpg": "not an image"}
    assert back.names == NAMES_OF_EVERY_KIND
    assert os.fsencode(back.names[2]) == b"c/\xff.jpg"  # the same bytes as the file on disk


def test_round_trip_without_names():
    arrays = ImageArrays(torch.zeros((2, 3, 4, 4), dtype=torch.uint8), torch.tensor([0, 1]), ["x", "y"])
    write_cached("k", arrays)
    back = read_cached("k")
    assert back.names is None and back.skipped == {} and back.labels.tolist() == [0, 1]


def test_absent_entry_is_none_without_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        assert read_cached("nothing") is None
    assert warnings_of(caplog) == []


def test_a_good_read_marks_the_entry_recently_used():
    write_cached("k", make_arrays())
    os.utime(entry_path("k"), (1000, 1000))
    assert read_cached("k") is not None
    assert entry_path("k").stat().st_mtime > 1000


@pytest.mark.parametrize("keep", [0, 7, 100, -1])
def test_truncated_entry_is_removed_and_decoded_again(caplog, keep):
    write_cached("k", make_arrays())
    path = entry_path("k")
    data = path.read_bytes()
    path.write_bytes(data[: keep if keep >= 0 else len(data) - 1])
    assert_damaged(caplog, "k", "")


@pytest.mark.parametrize("content", [b"\0" * 4096, b"garbage, not a safetensors file" * 10, os.urandom(333)])
def test_garbage_entry_is_removed(caplog, content):
    cache_folder().mkdir(parents=True)
    entry_path("k").write_bytes(content)
    assert_damaged(caplog, "k", "")


def good_tensors(n: int = 4) -> dict[str, torch.Tensor]:
    return {"images": torch.zeros((n, 3, 4, 4), dtype=torch.uint8), "labels": torch.zeros(n, dtype=torch.int64)}


def good_meta(n: int = 4) -> dict[str, str]:
    from vggnet.data.array_cache import _digest

    t = good_tensors(n)
    return {"classes": '["a", "b"]', "skipped": "{}", "names": json.dumps([f"{i}.jpg" for i in range(n)]),
            "checksum": _digest(t["images"], t["labels"])}


@pytest.mark.parametrize(
    ("tensors", "meta", "why"),
    [
        ({"images": torch.zeros((4, 3, 4, 4))}, {}, "float32, not uint8"),
        ({"labels": torch.zeros(4, dtype=torch.int32)}, {}, "labels are torch.int32"),
        ({"labels": torch.zeros(4, dtype=torch.float64)}, {}, "labels are torch.float64"),
        ({"images": torch.zeros((4, 1, 4, 4), dtype=torch.uint8)}, {}, "not (N, 3, H, W)"),
        ({"images": torch.zeros((4, 48), dtype=torch.uint8)}, {}, "not (N, 3, H, W)"),
        ({"labels": torch.zeros(3, dtype=torch.int64)}, {}, "4 images but 3 labels"),
        ({"labels": torch.tensor([0, 1, 2, 0])}, {}, "1 labels out of range [0, 2), e.g. 2"),
        ({"labels": torch.tensor([0, -1, 1, 0])}, {}, "1 labels out of range [0, 2), e.g. -1"),
        ({}, {"classes": "[\"a\", "}, "classes is not JSON"),
        ({}, {"classes": '{"a": 1}'}, "classes is not a list of names"),
        ({}, {"classes": "[1, 2]"}, "classes is not a list of names"),
        ({}, {"skipped": '["x"]'}, "skipped is not a map"),
        ({}, {"skipped": '{"x": 3}'}, "skipped is not a map"),
        ({}, {"names": '["only-one.jpg"]'}, "4 images but 1 names"),
        ({}, {"names": "[1, 2, 3, 4]"}, "names is not a list"),
        ({}, {"names": "nope"}, "names is not JSON"),
    ],
)
def test_wrong_content_is_removed(caplog, tensors, meta, why):
    cache_folder().mkdir(parents=True)
    save_file({**good_tensors(), **tensors}, str(entry_path("k")), metadata={**good_meta(), **meta})
    assert_damaged(caplog, "k", why)


@pytest.mark.parametrize("drop", ["classes", "skipped"])
def test_missing_metadata_is_removed(caplog, drop):
    cache_folder().mkdir(parents=True)
    meta = good_meta()
    del meta[drop]
    save_file(good_tensors(), str(entry_path("k")), metadata=meta)
    assert_damaged(caplog, "k", f"no {drop} in its metadata")


def test_missing_tensor_is_removed(caplog):
    cache_folder().mkdir(parents=True)
    save_file({"images": good_tensors()["images"]}, str(entry_path("k")), metadata=good_meta())
    assert_damaged(caplog, "k", "no labels tensor")


def test_names_may_be_absent_or_null():
    cache_folder().mkdir(parents=True)
    meta = good_meta()
    meta["names"] = "null"
    save_file(good_tensors(), str(entry_path("k")), metadata=meta)
    assert read_cached("k").names is None
    del meta["names"]  # entries written before names were kept
    save_file(good_tensors(), str(entry_path("k")), metadata=meta)
    assert read_cached("k").names is None


def assert_not_written(caplog, folder_shown) -> str:
    (message,) = warnings_of(caplog)
    assert message.startswith(f"cannot write the decoded-image cache in {folder_shown} (")
    assert message.endswith("); going on without it")
    return message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_folder_is_a_warning(caplog):
    folder = cache_folder()
    folder.mkdir(parents=True)
    folder.chmod(0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="vggnet"):
            write_cached("k", make_arrays())
        assert "Permission denied" in assert_not_written(caplog, folder)
        assert files_in(folder) == []
    finally:
        folder.chmod(0o700)


def test_disk_full_at_the_rename_is_a_warning_and_leaves_no_file(caplog, monkeypatch):
    write_cached("k", make_arrays(seed=1))
    before = entry_path("k").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="vggnet"):
        m.setattr(os, "replace", full)
        assert write_cached("k", make_arrays(seed=2)) is None
        write_cached("other", make_arrays(seed=2))
    expected = (f"cannot write the decoded-image cache in {cache_folder()} "
                "(No space left on device); going on without it")
    assert warnings_of(caplog) == [expected, expected]
    assert files_in(cache_folder()) == ["k.safetensors"]  # no temporary file, no "other"
    assert entry_path("k").read_bytes() == before  # the previous entry is untouched and still good
    assert torch.equal(read_cached("k").images, make_arrays(seed=1).images)


def test_disk_full_inside_safetensors_is_a_warning(caplog, monkeypatch):
    import safetensors.torch

    def half_written(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", half_written)
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        write_cached("k", make_arrays())
    assert "(No space left on device)" in assert_not_written(caplog, cache_folder())
    assert files_in(cache_folder()) == []


def test_home_that_is_a_file_is_a_warning(caplog, home, monkeypatch):
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        write_cached("k", make_arrays())
        assert read_cached("k") is None
    assert_not_written(caplog, cache_folder())
    assert home.read_text() == "not a folder"
    assert cache_entries() == [] and clear_cache() == (0, 0)


def entry_size() -> int:
    write_cached("probe", make_arrays())
    size = entry_path("probe").stat().st_size
    entry_path("probe").unlink()
    return size


def test_least_recently_used_entries_are_evicted_to_the_bound(monkeypatch):
    size = entry_size()
    for t, key in enumerate(["a", "b", "c"], start=1):
        write_cached(key, make_arrays())
        os.utime(entry_path(key), (t * 1000, t * 1000))
    assert read_cached("a") is not None  # now the most recently used
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", repr(2.5 * size / 2**30))
    write_cached("d", make_arrays())
    assert files_in(cache_folder()) == ["a.safetensors", "d.safetensors"]  # b (oldest), then c


def test_the_entry_just_written_is_never_evicted(monkeypatch):
    write_cached("a", make_arrays())
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", "0")
    write_cached("b", make_arrays())
    assert files_in(cache_folder()) == ["b.safetensors"]
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", "1e-12")
    write_cached("c", make_arrays())
    assert files_in(cache_folder()) == ["c.safetensors"] and read_cached("c") is not None


def test_under_the_bound_nothing_is_evicted(monkeypatch):
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", "0.001")  # about 1 MB
    for key in "abc":
        write_cached(key, make_arrays())
    assert files_in(cache_folder()) == ["a.safetensors", "b.safetensors", "c.safetensors"]


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "inf", "20GB"])
def test_invalid_bound_is_a_one_line_error(monkeypatch, value):
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", value)
    with pytest.raises(DataError) as err:
        write_cached("k", make_arrays())
    assert str(err.value) == f"VGGNET_CACHE_MAX_GB must be a number of GiB >= 0 (e.g. 20 or 0.5), got {value!r}"
    assert not entry_path("k").exists()


def test_default_bound_is_20_gib(monkeypatch):
    assert array_cache.max_bytes() == 20 * 2**30
    monkeypatch.setenv("VGGNET_CACHE_MAX_GB", " 0.5 ")
    assert array_cache.max_bytes() == 2**29


def test_entries_are_described_from_their_headers():
    write_cached("small", make_arrays(n=6, side=8))
    write_cached("big", make_arrays(n=9, side=16))
    os.utime(entry_path("small"), (1000, 1000))
    entry_path("bad").write_bytes(b"\0" * 100)
    os.utime(entry_path("bad"), (500, 500))
    big, small, bad = cache_entries()  # most recently used first
    assert (big.path, big.images, big.side, big.classes, big.damaged) == (entry_path("big"), 9, 16, 3, None)
    assert (small.images, small.side, small.classes, small.mtime) == (6, 8, 3, 1000)
    assert small.size == entry_path("small").stat().st_size
    assert bad.damaged and bad.images is None and bad.size == 100
    assert entry_path("bad").exists()  # listing reports, it does not remove


def test_clear_removes_entries_and_stale_temporaries_only(home):
    write_cached("a", make_arrays())
    write_cached("b", make_arrays(n=12))
    folder = cache_folder()
    stale = folder / ".a.safetensors.x1y2.tmp"
    stale.write_bytes(b"x" * 10)
    os.utime(stale, (1000, 1000))
    fresh = folder / ".b.safetensors.z3w4.tmp"  # another run may be writing it now
    fresh.write_bytes(b"y")
    note = folder / "README.txt"
    note.write_text("mine")
    downloads = home / "cifar10" / "cifar-10-python.tar.gz"
    weights = home / "weights" / "vgg11.safetensors"
    for p in (downloads, weights):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"keep")
    sizes = entry_path("a").stat().st_size + entry_path("b").stat().st_size
    assert clear_cache() == (2, sizes + 10)
    assert files_in(folder) == [fresh.name, note.name]
    assert downloads.read_bytes() == b"keep" and weights.read_bytes() == b"keep"
    assert clear_cache() == (0, 0)


def test_stale_temporaries_are_swept_after_a_write():
    cache_folder().mkdir(parents=True)
    stale = cache_folder() / ".k.safetensors.abcd.tmp"
    stale.write_bytes(b"x")
    os.utime(stale, (1000, 1000))
    write_cached("k", make_arrays())
    assert files_in(cache_folder()) == ["k.safetensors"]


def test_clear_with_no_cache_folder():
    assert clear_cache() == (0, 0) and cache_entries() == []


def test_keys_are_plain_names():
    with pytest.raises(ValueError, match="cache key"):
        read_cached("../escape")


def test_a_valid_file_whose_pixels_or_labels_changed_is_damaged(caplog):
    arrays = ImageArrays(torch.arange(48, dtype=torch.uint8).view(1, 3, 4, 4).repeat(4, 1, 1, 1),
                         torch.tensor([0, 1, 0, 1]), ["a", "b"], names=[f"{i}.jpg" for i in range(4)])
    write_cached("k", arrays)
    from safetensors import safe_open

    with safe_open(str(entry_path("k")), "pt") as f:
        meta, labels = f.metadata(), f.get_tensor("labels")
        images = f.get_tensor("images")
    save_file({"images": images, "labels": 1 - labels}, str(entry_path("k")), metadata=meta)  # labels swapped
    assert read_cached("k") is None and "do not match their checksum" in caplog.text
