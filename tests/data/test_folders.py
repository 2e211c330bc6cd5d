import re
import tarfile

import pytest
import torch

from tests.helpers import image_bytes, write_class_folders
from vggnet.data.datasets import load_data
from vggnet.data.folders import FolderDataset, decode_rgb, load_folder_arrays, scan_folder
from vggnet.data.loader import make_batches
from vggnet.data.transforms import RescaleCrop
from vggnet.errors import DataError

RED, BLUE = (200, 30, 30), (30, 30, 200)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))


@pytest.fixture
def messy(tmp_path):
    """Two classes; 'red' also holds a corrupt JPEG, a CMYK JPEG, a grayscale and a PNG with alpha."""
    root = write_class_folders(tmp_path / "messy", {"blue": [BLUE] * 3, "red": [RED] * 3})
    good = image_bytes(RED)
    (root / "red" / "corrupt.jpg").write_bytes(good[: len(good) // 2])
    (root / "red" / "cmyk.jpg").write_bytes(image_bytes((0, 200, 200, 0), mode="CMYK"))
    (root / "red" / "gray.jpg").write_bytes(image_bytes((128,), mode="L"))
    (root / "red" / "alpha.png").write_bytes(image_bytes((255, 0, 0, 0), mode="RGBA", fmt="PNG"))
    (root / "red" / "palette.gif").write_bytes(image_bytes(RED, fmt="GIF"))
    (root / "red" / "notes.txt").write_text("not an image")
    return root


def test_messy_folder_converts_what_it_can_and_counts_the_rest(messy):
    splits = load_data(messy, whole=True, progress=False)
    images = splits.val
    assert splits.classes == ["blue", "red"]
    assert len(images) == 10 and list(splits.skipped) == ["red/corrupt.jpg"]
    assert images.images.shape == (10, 3, 32, 32) and images.labels.tolist() == [0] * 3 + [1] * 7
    by_name = dict(zip([n for n, _ in scan_folder(messy).splits["all"].entries if "corrupt" not in n], images.images,
                       strict=True))
    assert torch.equal(by_name["red/gray.jpg"][:, 0, 0], torch.tensor([128, 128, 128], dtype=torch.uint8))
    assert torch.equal(by_name["red/alpha.png"][:, 0, 0], torch.tensor([255, 255, 255], dtype=torch.uint8))
    cmyk = by_name["red/cmyk.jpg"][:, 0, 0].tolist()
    assert cmyk[0] > 200 and cmyk[1] < 80 and cmyk[2] < 80  # C=0, M=Y=200/255 reads as red
    assert by_name["red/palette.gif"][:, 0, 0].tolist() == list(RED)


def test_directory_tar_and_tar_gz_give_the_same_arrays(messy, tmp_path):
    for mode, suffix in (("w", ".tar"), ("w:gz", ".tar.gz")):
        with tarfile.open(tmp_path / f"messy{suffix}", mode) as tar:
            tar.add(messy, arcname="wrapped")  # one wrapping folder is peeled off
    direct = load_data(messy, whole=True, progress=False).val
    for suffix in (".tar", ".tar.gz"):
        packed = load_data(tmp_path / f"messy{suffix}", whole=True, progress=False).val
        assert torch.equal(direct.images, packed.images) and torch.equal(direct.labels, packed.labels)


def test_decoded_arrays_are_cached_and_refreshed_when_files_change(messy, tmp_path):
    folder = scan_folder(messy).splits["all"]
    first = load_folder_arrays(folder, 32, progress=False)
    assert len(list((tmp_path / "cache" / "folders").iterdir())) == 1
    again = load_folder_arrays(folder, 32, progress=False)
    assert torch.equal(first.images, again.images) and again.skipped == first.skipped
    (messy / "blue" / "000.jpg").write_bytes(image_bytes(RED))
    changed = load_folder_arrays(scan_folder(messy).splits["all"], 32, progress=False)
    assert not torch.equal(first.images, changed.images)


def test_split_layout_and_seeded_split_of_a_flat_folder(tmp_path):
    root = tmp_path / "imagenet"
    write_class_folders(root / "train", {"a": [RED] * 10, "b": [BLUE] * 10})
    write_class_folders(root / "val", {"a": [RED] * 2, "b": [BLUE] * 2})
    splits = load_data(root, progress=False)
    assert (len(splits.train), len(splits.val), splits.test) == (20, 4, None)
    flat = write_class_folders(tmp_path / "flat", {"a": [RED] * 10, "b": [BLUE] * 10})
    one, two = load_data(flat, seed=1, progress=False), load_data(flat, seed=1, progress=False)
    assert (len(one.train), len(one.val)) == (18, 2) and one.val.labels.tolist() == [0, 1]
    assert torch.equal(one.train.labels, two.train.labels)


def test_large_images_stream_and_the_loader_drops_bad_files_naming_them(tmp_path):
    root = tmp_path / "big"
    (root / "a").mkdir(parents=True)
    (root / "a" / "0.jpg").write_bytes(image_bytes(RED, size=300))
    (root / "a" / "1.jpg").write_bytes(b"\xff\xd8 broken")
    splits = load_data(root, whole=True, progress=False)
    assert not splits.in_memory
    args = {"train": False, "device": torch.device("cpu"), "crop": 224, "scale": (256, 256), "workers": 0}
    batches = make_batches(splits.val, 2, **args)
    (images, labels), *rest = list(batches)
    assert images.shape == (1, 3, 224, 224) and images.dtype == torch.uint8 and labels.tolist() == [0] and not rest
    bad = str(root / "a" / "1.jpg")
    assert batches.skipped == {bad: "cannot be decoded"}
    with pytest.raises(DataError, match=f"^cannot decode {re.escape(bad)}; without --strict it is skipped$"):
        next(iter(make_batches(splits.val, 2, strict=True, **args)))


def test_strict_loading_stops_at_the_first_bad_file_and_names_it(messy, caplog):
    bad = re.escape(str(messy / "red" / "corrupt.jpg"))
    with pytest.raises(DataError, match=f"cannot decode {bad} \\(.+\\); without --strict it is skipped"):
        load_data(messy, whole=True, progress=False, strict=True)
    with caplog.at_level("WARNING", logger="vggnet"):
        assert len(load_data(messy, whole=True, progress=False).val) == 10  # decoded and cached, one skipped
    assert "1 images in messy cannot be decoded and are skipped (first: red/corrupt.jpg" in caplog.text
    with pytest.raises(DataError, match=f"cannot decode {bad}"):  # the cache remembers it
        load_data(messy, whole=True, progress=False, strict=True)


def test_dataset_workers_reopen_tar_handles(tmp_path):
    root = write_class_folders(tmp_path / "f", {"a": [RED] * 2}, size=100)
    with tarfile.open(tmp_path / "f.tar", "w") as tar:
        tar.add(root, arcname=".")
    folder = scan_folder(tmp_path / "f.tar").splits["all"]
    ds = FolderDataset(folder, RescaleCrop(96, 96, random=False), fallback_side=96)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    images, labels, bad = next(iter(loader))
    assert images.shape == (2, 3, 96, 96) and labels.tolist() == [0, 0] and bad.tolist() == [-1, -1]


@pytest.mark.parametrize("make", ["missing", "empty", "no_images", "all_bad"])
def test_unusable_folders_are_one_line_errors(tmp_path, make):
    root = tmp_path / "d"
    if make != "missing":
        (root / "cls").mkdir(parents=True)
    if make == "no_images":
        (root / "cls" / "readme.txt").write_text("x")
    if make == "all_bad":
        (root / "cls" / "x.jpg").write_bytes(b"garbage")
    expected = {"missing": "unknown dataset", "empty": "no images found", "no_images": "no images found",
                "all_bad": "can be decoded"}[make]
    with pytest.raises(DataError, match=expected) as err:
        load_data(root, progress=False)
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_a_tar_is_one_line_saying_so(tmp_path):
    (tmp_path / "bad.tar.gz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad.tar.gz: not a tar or zip archive, or a damaged one$") as err:
        load_data(tmp_path / "bad.tar.gz", progress=False)
    assert "\n" not in str(err.value)


def test_decode_rgb_rejects_non_images():
    from vggnet.data.decode import BadImage

    with pytest.raises(BadImage):
        decode_rgb(b"GIF89a-truncated")
