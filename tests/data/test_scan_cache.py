"""The folder-index cache: reused only while no folder (and no ground-truth file) changed; damaged,
unwritable or too-fresh entries never change an answer."""

import os

import pytest

from tests.helpers import image_bytes, write_class_folders
from vggnet.data import scan_cache
from vggnet.data.folders import scan_folder
from vggnet.data.sources import DirectorySource

OLD = 1_600_000_000  # 2020: long before any test runs


def _age(root):
    """Make every folder and file look untouched for years (a fresh folder is too racy to cache)."""
    for folder, _, files in os.walk(root):
        for f in files:
            os.utime(os.path.join(folder, f), (OLD, OLD))
        os.utime(folder, (OLD, OLD))


def _tree(root):
    write_class_folders(root, {"cat": [(200, 0, 0)] * 3, "dog": [(0, 0, 200)] * 2}, size=8)
    _age(root)
    return root


def _seen(root):
    scan = scan_folder(root)
    return {split: sorted(zip(index.names(), index.label_array.tolist(), strict=True))
            for split, index in scan.splits.items()}


@pytest.fixture
def no_listing(monkeypatch):
    """From now on, listing a directory fails the test: the answer must come from the cache."""
    def forbid():
        monkeypatch.setattr(DirectorySource, "files", lambda *a, **k: pytest.fail("listed the folder again"))
    return forbid


def test_an_unchanged_folder_is_not_listed_again(tmp_path, no_listing):
    root = _tree(tmp_path / "d")
    first = _seen(root)
    assert first == {"all": [("cat/000.jpg", 0), ("cat/001.jpg", 0), ("cat/002.jpg", 0),
                             ("dog/000.jpg", 1), ("dog/001.jpg", 1)]}
    no_listing()
    assert _seen(root) == first


@pytest.mark.parametrize("change", ["add", "remove", "rename_class", "new_class", "fifo", "link"])
def test_a_changed_folder_is_listed_again(tmp_path, change):
    root = _tree(tmp_path / "d")
    before = _seen(root)
    if change == "add":
        (root / "dog" / "new.jpg").write_bytes(image_bytes((0, 0, 9), 8))
    elif change == "remove":
        (root / "cat" / "001.jpg").unlink()
    elif change == "rename_class":
        (root / "dog").rename(root / "wolf")
    elif change == "new_class":
        write_class_folders(root, {"emu": [(9, 9, 9)]}, size=8)
    elif change == "fifo":  # a file swapped for a FIFO must not be read as the image it was
        (root / "cat" / "002.jpg").unlink()
        os.mkfifo(root / "cat" / "002.jpg")
    else:  # a class folder that becomes a link to another one
        (root / "dog" / "000.jpg").unlink()
        (root / "dog" / "001.jpg").unlink()
        (root / "dog").rmdir()
        (root / "dog").symlink_to(root / "cat")
    after = scan_folder(root, use_cache=False)
    assert _seen(root) == {s: sorted(zip(i.names(), i.label_array.tolist(), strict=True))
                           for s, i in after.splits.items()} != before


def test_a_changed_ground_truth_file_relabels_the_flat_val_folder(tmp_path):
    root = tmp_path / "imagenet"
    write_class_folders(root / "train", {"n01440764": [(1, 1, 1)], "n01443537": [(2, 2, 2)]}, size=8)
    (root / "val").mkdir()
    (root / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(image_bytes((3, 3, 3), 8))
    csv = root / "LOC_val_solution.csv"
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    _age(root)
    assert scan_folder(root).splits["val"].label_array.tolist() == [0]
    csv.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01443537 1 2 3 4\n")
    os.utime(root, (OLD, OLD))  # the folder looks untouched: only the file's own stamp tells
    assert scan_folder(root).splits["val"].label_array.tolist() == [1]


def test_a_folder_changed_moments_ago_is_not_cached(tmp_path, monkeypatch):
    """A coarse clock could hide a change made in the same tick as the listing."""
    root = write_class_folders(tmp_path / "d", {"a": [(1, 2, 3)], "b": [(3, 2, 1)]}, size=8)
    entry = scan_cache.index_folder() / f"{scan_cache._key(root)}{scan_cache.SUFFIX}"
    scan_folder(root)
    assert not entry.exists()
    monkeypatch.setattr(scan_cache, "RACY_S", -60.0)  # the check, switched off, would have cached it
    scan_folder(root)
    assert entry.exists()


def test_a_damaged_entry_is_listed_again_with_a_warning(tmp_path, caplog):
    root = _tree(tmp_path / "d")
    first = _seen(root)
    (entry,) = [p for p in scan_cache.index_folder().glob("*.safetensors")
                if scan_cache._key(root) in p.name]
    entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level("WARNING", logger="vggnet"):
        assert _seen(root) == first
    assert "folder index cache entry" in caplog.text and "damaged" in caplog.text


def test_an_unwritable_cache_costs_a_warning_not_the_answer(tmp_path, monkeypatch, caplog):
    root = _tree(tmp_path / "d")
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("VGGNET_HOME", str(blocker))
    with caplog.at_level("WARNING", logger="vggnet"):
        assert len(scan_folder(root).splits["all"]) == 5
    assert "cannot write the folder index cache" in caplog.text


def test_an_archive_is_never_cached(tmp_path):
    import tarfile

    root = _tree(tmp_path / "d")
    with tarfile.open(tmp_path / "d.tar", "w") as tar:
        tar.add(root, arcname=".")
    assert len(scan_folder(tmp_path / "d.tar").splits["all"]) == 5
    assert not (scan_cache.index_folder() / f"{scan_cache._key(tmp_path / 'd.tar')}{scan_cache.SUFFIX}").exists()


def test_a_change_made_while_listing_and_its_time_set_back_is_seen(tmp_path, monkeypatch):
    """tar -x, rsync -a and cp -p set a folder's mtime back after filling it; its change time moves
    on, and the folder was stamped before it was listed, so the next run lists it again."""
    root = _tree(tmp_path / "d")
    real = DirectorySource.files

    def files_then_change(self, *args, **kwargs):
        listing = real(self, *args, **kwargs)
        (root / "dog" / "late.jpg").write_bytes(image_bytes((0, 0, 9), 8))
        os.utime(root / "dog", (OLD, OLD))
        return listing

    monkeypatch.setattr(DirectorySource, "files", files_then_change)
    assert len(scan_folder(root).splits["all"]) == 5  # what the listing saw
    monkeypatch.setattr(DirectorySource, "files", real)
    assert len(scan_folder(root).splits["all"]) == 6
