import torch

from vggnet.data.arrays import ImageArrays
from vggnet.data.datasets import take_balanced
from vggnet.data.folders import FolderIndex
from vggnet.data.sources import FileSource


def test_take_balanced_keeps_class_shares_and_is_fixed_by_the_seed():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    arrays = ImageArrays(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 3, 2, 2).clone(),
                         labels, ["a", "b", "c"])
    sub = take_balanced(arrays, 20, seed=1)
    assert len(sub) == 20 and torch.bincount(sub.labels).tolist() == [12, 6, 2]
    assert torch.equal(take_balanced(arrays, 20, seed=1).images, sub.images)
    assert not torch.equal(take_balanced(arrays, 20, seed=2).images, sub.images)
    assert take_balanced(arrays, 0, seed=1) is arrays and take_balanced(arrays, 500, seed=1) is arrays
    entries = [(f"{i}.png", int(c)) for i, c in enumerate(labels)]
    index = FolderIndex.of(FileSource.__new__(FileSource), entries, ["a", "b", "c"])
    names = [n for n, _ in take_balanced(index, 20, seed=1).entries]
    assert names == [f"{i}.png" for i in sub.images[:, 0, 0, 0].tolist()]  # the same images either way


def test_image_size_is_measured_over_the_dataset_not_taken_from_the_first_file(tmp_path, caplog):
    from tests.helpers import image_bytes
    from vggnet.data.datasets import load_data

    root = tmp_path / "d"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            (root / cls / f"{i}.jpg").write_bytes(image_bytes((9, 9, 9), size=48 if (cls, i) == ("a", 0) else 200))
    splits = load_data(root, whole=True, progress=False)
    assert not splits.in_memory  # streamed at the recipe's size, not decoded at 48 px
    assert (splits.survey.min_side, splits.survey.max_side, splits.survey.median_side) == (48, 200, 200)
    (root / "a" / "0.jpg").write_bytes(image_bytes((9, 9, 9), size=32))  # mostly small, one 48 px: in memory at 32
    for cls in ("a", "b"):
        for i in range(6):
            if (cls, i) != ("a", 0):
                (root / cls / f"{i}.jpg").write_bytes(image_bytes((9, 9, 9), size=48 if (cls, i) == ("b", 5) else 32))
    with caplog.at_level("WARNING", logger="vggnet"):
        small = load_data(root, whole=True, progress=False)
    assert small.in_memory and small.val.images.shape == (12, 3, 32, 32)
    assert "image sizes vary (32 to 48 px in a sample of 12): each image is resized to 32x32" in caplog.text


def test_one_cache_entry_per_dataset_whatever_the_seed(tmp_path, monkeypatch):
    from tests.helpers import image_bytes
    from vggnet.data.datasets import load_data

    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    root = tmp_path / "d"
    for cls, colour in (("a", (250, 0, 0)), ("b", (0, 0, 250))):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            (root / cls / f"{i}.png").write_bytes(image_bytes(colour, fmt="PNG"))
    one, two = load_data(root, seed=1, progress=False), load_data(root, seed=2, progress=False)
    assert one.val.names != two.val.names  # different splits ...
    assert len(list((tmp_path / "cache" / "folders").glob("*.safetensors"))) == 1  # ... of one decoded copy


def test_summary_lists_classes_sizes_and_what_was_not_used(tmp_path):
    from tests.helpers import image_bytes
    from vggnet.data.datasets import load_data
    from vggnet.data.summary import format_summary, summarize

    root = tmp_path / "d"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            (root / cls / f"{i}.jpg").write_bytes(image_bytes((1, 2, 3)))
    (root / "notes.txt").write_text("x")
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    summary = summarize(load_data(root, progress=False, val_fraction=0.25))
    assert summary["images"] == {"train": 6, "val": 2} and summary["per_class"]["train"] == [3, 3]
    assert summary["ignored"]["count"] == 1 and summary["undecodable"]["count"] == 1
    text = format_summary(summary)
    assert "2 classes; images: train 6, val 2 (val held out with the seed)" in text
    assert "notes.txt (not an image (.txt))" in text and "dog/broken.jpg" in text and "image sides 32 to 32 px" in text


def _two_colours(root):
    from tests.helpers import image_bytes

    for cls, colour in (("a", (250, 0, 0)), ("b", (0, 0, 250))):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            (root / cls / f"{i}.png").write_bytes(image_bytes(colour, fmt="PNG"))
    return root


def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(tmp_path, monkeypatch, caplog):
    from vggnet.data.datasets import load_data

    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    root = _two_colours(tmp_path / "d")
    first = load_data(root, whole=True, progress=False).val
    (entry,) = (tmp_path / "cache" / "folders").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    with caplog.at_level("WARNING", logger="vggnet"):
        again = load_data(root, whole=True, progress=False).val
    assert torch.equal(first.images, again.images) and "is damaged" in caplog.text
    assert load_data(root, whole=True, progress=False).val.names == first.names  # rebuilt entry reads back


def test_an_unwritable_cache_only_warns(tmp_path, monkeypatch, caplog):
    from vggnet.data.datasets import load_data

    (tmp_path / "home").write_text("a file, not a folder")  # every cache write fails
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    with caplog.at_level("WARNING", logger="vggnet"):
        splits = load_data(_two_colours(tmp_path / "d"), whole=True, progress=False)
    assert len(splits.val) == 10 and "cannot write the decoded-image cache" in caplog.text


def test_leftover_held_out_images_are_spread_over_classes_by_the_seed():
    from vggnet.data.arrays import stratified_split

    labels = torch.arange(1000).repeat_interleave(2)  # 1000 classes of 2: 200 held out, 0.2 per class
    picked = [set(labels[stratified_split(labels, 0.1, seed)[1]].tolist()) for seed in (0, 1)]
    assert all(len(p) == 200 for p in picked) and picked[0] != picked[1]
    assert max(picked[0]) > 900  # not the first 200 classes by name


def test_mixed_small_sizes_are_said_once(tmp_path, monkeypatch, caplog):
    from tests.helpers import image_bytes
    from vggnet.data.datasets import load_data

    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    root = tmp_path / "d"
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(4):
                (root / split / cls / f"{i}.png").write_bytes(image_bytes((9, 9, 9), size=40 if i == 0 else 32,
                                                                           fmt="PNG"))
    with caplog.at_level("WARNING", logger="vggnet"):
        load_data(root, progress=False)
    assert [r.getMessage().startswith("image sizes vary") for r in caplog.records] == [True]
