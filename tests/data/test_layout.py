"""The layout rule on generated trees (directories, tar and zip alike) and on the folders people
really bring: stray files, split folders in any case, links, hard links, odd names, litter."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import image_bytes
from vggnet.data.datasets import load_data
from vggnet.data.folders import scan_folder
from vggnet.errors import DataError

JPEG = image_bytes((200, 30, 30), size=8)
PNG = image_bytes((30, 30, 200), size=8, fmt="PNG")

# ---- an independent statement of the rule, over a tree description -------------------------------
# A tree is {path: bytes}. The generator below knows what every file is; `expected` states the rule
# from that knowledge alone: {split: {file: class}} for the images that must be used, everything else
# must be ignored.

SPLIT_SPELLINGS = {"train": ["train", "Train", "TRAINING", "training"], "val": ["val", "Valid", "validation"],
                   "test": ["test", "Testing", "TEST"]}
SPLIT_WORDS = {"train", "training", "val", "valid", "validation", "test", "testing"}
NAME = st.text(alphabet="abcxyzé日-_ 0", min_size=1, max_size=6).filter(
    lambda s: s.strip() == s and s.lower() not in SPLIT_WORDS)


@st.composite
def trees(draw):
    wrap = draw(st.lists(NAME, max_size=2))
    splits = draw(st.one_of(st.just([]), st.lists(st.sampled_from(["train", "val", "test"]), min_size=1, max_size=3,
                                                  unique=True)))
    classes = draw(st.lists(NAME, min_size=2, max_size=4, unique_by=str.lower))
    files, expected = {}, {}
    base = "/".join(wrap)
    for split in splits or ["all"]:
        folder = f"{base}/{draw(st.sampled_from(SPLIT_SPELLINGS[split]))}" if split != "all" else base
        for cls in classes:
            for i in range(draw(st.integers(1, 3))):
                kind = draw(st.sampled_from(["jpg", "JPG", "png", "none"]))
                name = f"{folder}/{cls}/{i}" + ("" if kind == "none" else f".{kind}")
                files[name.lstrip("/")] = PNG if kind in ("png", "none") else JPEG
                expected.setdefault(split, {})[name.lstrip("/")] = cls
    noise = [{f"{base}/preview.jpg": JPEG}, {f"{base}/.hidden/{classes[0]}/x.jpg": JPEG},
             {f"{base}/__MACOSX/{classes[0]}/._0.jpg": b"\x00\x05\x16\x07"}, {f"{base}/{classes[0]}-notes.txt": b"hi"},
             {f"{base}/Thumbs.db": b"\x00"},
             {f"{base}/run/report.md": b"# r", f"{base}/run/run.json": b"{}", f"{base}/run/curves.png": PNG}]
    for group in draw(st.lists(st.sampled_from(range(len(noise))), unique=True)):
        files.update({k.lstrip("/"): v for k, v in noise[group].items()})
    return files, expected


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_tar_of(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip_of(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def mapping(path: Path) -> dict[str, dict[str, str]]:
    scan = scan_folder(path)
    return {split: {name: index.classes[label] for name, label in index.entries}
            for split, index in scan.splits.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees())
def test_generated_trees_give_the_rules_classes_as_folders_and_archives(tree, tmp_path_factory):
    files, expected = tree
    where = tmp_path_factory.mktemp("tree")
    made = (write_dir(where / "d", files), write_tar_of(where / "t.tar", files), write_zip_of(where / "z.zip", files))
    for path in made:
        assert mapping(path) == expected, path
        scan = scan_folder(path)
        used = {n for split in expected.values() for n in split}
        unused = {n.lstrip("/") for n in files} - used  # every other file is listed, or its folder is
        assert all(n in scan.ignored or any(n.startswith(f) for f in scan.ignored if f.endswith("/")) for n in unused)


# ---- the rows of the issue, one by one ---------------------------------------------------------------

def cats_and_dogs(root: Path, per_class: int = 3) -> Path:
    return write_dir(root, {f"{c}/{i}.jpg": JPEG for c in ("cat", "dog") for i in range(per_class)})


def test_a_stray_image_beside_class_folders_is_listed_not_a_class(tmp_path, caplog):
    root = cats_and_dogs(tmp_path / "data" / "mydata")
    (root / "preview.jpg").write_bytes(JPEG)
    with caplog.at_level("WARNING", logger="vggnet"):
        splits = load_data(tmp_path / "data", progress=False, whole=True)
    assert splits.classes == ["cat", "dog"] and len(splits.val) == 6
    assert splits.ignored["mydata/preview.jpg"] == "not in a class folder"
    assert "mydata/preview.jpg (not in a class folder)" in caplog.text


@pytest.mark.parametrize("names", [("Train", "Test", "Validation"), ("training", "testing"), ("TRAIN", "VAL")])
def test_split_folders_in_any_case_and_spelling_are_splits(tmp_path, names):
    for name in names:
        cats_and_dogs(tmp_path / "d" / name)
    scan = scan_folder(tmp_path / "d")
    canonical = {"train": "train", "training": "train", "test": "test", "testing": "test", "validation": "val",
                 "val": "val"}
    assert set(scan.splits) == {canonical[n.lower()] for n in names}
    assert all(index.classes == ["cat", "dog"] for index in scan.splits.values())


def test_images_directly_in_split_folders_stop_with_one_line(tmp_path):
    write_dir(tmp_path / "d", {f"{s}/{i}.jpg": JPEG for s in ("train", "test") for i in range(3)})
    with pytest.raises(DataError, match=r"(train|test) holds images directly, but it is named like a split") as err:
        scan_folder(tmp_path / "d")
    assert "\n" not in str(err.value)


def test_a_class_named_like_a_split_among_others_is_a_class(tmp_path):
    write_dir(tmp_path / "d", {f"{c}/0.jpg": JPEG for c in ("bus", "car", "train")})  # CIFAR-100 has 'train'
    assert scan_folder(tmp_path / "d").splits["all"].classes == ["bus", "car", "train"]


def test_unlabelled_test_images_beside_class_splits_are_listed(tmp_path):
    cats_and_dogs(tmp_path / "d" / "train")
    write_dir(tmp_path / "d", {"test/1.jpg": JPEG, "test/2.jpg": JPEG})
    scan = scan_folder(tmp_path / "d")
    assert set(scan.splits) == {"train"} and scan.ignored["test/1.jpg"].startswith("directly in a split folder")


@pytest.mark.parametrize("tree", [
    {"train/cat/0.jpg": JPEG, "train/dog/0.jpg": JPEG, "extra/cat/0.jpg": JPEG},  # split and non-split
    {"a/cat/0.jpg": JPEG, "a/dog/0.jpg": JPEG, "b/c/bird/0.jpg": JPEG},  # classes at two depths
    {"x/train/cat/0.jpg": JPEG, "x/train/dog/0.jpg": JPEG, "x/x/train/cat/0.jpg": JPEG},  # two copies
])
def test_ambiguous_layouts_stop_with_one_line(tmp_path, tree):
    with pytest.raises(DataError) as err:
        scan_folder(write_dir(tmp_path / "d", tree))
    assert "\n" not in str(err.value) and ("two places" in str(err.value) or "outside them" in str(err.value))


def test_images_with_no_class_folder_at_all(tmp_path):
    write_dir(tmp_path / "d", {"0.jpg": JPEG, "1.jpg": JPEG})
    with pytest.raises(DataError, match="holds images but no class folders"):
        scan_folder(tmp_path / "d")


def test_a_symlinked_class_folder_is_a_class_and_a_cycle_is_listed(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    elsewhere = write_dir(tmp_path / "elsewhere", {"bird/0.jpg": JPEG, "bird/1.jpg": JPEG})
    os.symlink(elsewhere / "bird", root / "bird")
    os.symlink(root, root / "cat" / "loop")  # back to an ancestor
    os.symlink(tmp_path / "nowhere", root / "dog" / "broken.jpg")
    scan = scan_folder(root)
    assert scan.splits["all"].classes == ["bird", "cat", "dog"] and len(scan.splits["all"]) == 8
    assert scan.ignored["cat/loop/"] == "the same folder as ., read once"
    assert scan.ignored["dog/broken.jpg"] == "a broken link"


def test_hard_links_and_symlinks_in_a_tar_resolve_to_their_data(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    os.link(root / "cat" / "0.jpg", root / "cat" / "copy.jpg")
    os.link(root / "dog" / "0.jpg", root / "dog" / "copy.jpg")
    os.symlink("cat", root / "kitty")
    with tarfile.open(tmp_path / "d.tar", "w") as tar:  # plain tar stores the repeats as links
        tar.add(root, arcname="d")
    with tarfile.open(tmp_path / "d.tar") as tar:
        kinds = {m.name: m.type for m in tar.getmembers()}
    assert kinds["d/dog/copy.jpg"] == tarfile.LNKTYPE or kinds["d/dog/0.jpg"] == tarfile.LNKTYPE
    splits = load_data(tmp_path / "d.tar", whole=True, progress=False)
    assert splits.classes == ["cat", "dog"] and len(splits.val) == 8 and not splits.skipped
    assert splits.ignored["d/kitty/"] == "the same folder as d/cat, read once"  # not the same images twice


def test_links_out_of_an_archive_are_ignored(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    with tarfile.open(tmp_path / "d.tar", "w") as tar:
        tar.add(root, arcname=".")
        for name, target in (("cat/passwd.jpg", "/etc/passwd"), ("dog/up.jpg", "../../etc/passwd")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    scan = scan_folder(tmp_path / "d.tar")
    assert len(scan.splits["all"]) == 6
    assert scan.ignored["cat/passwd.jpg"] == scan.ignored["dog/up.jpg"] == "a link to a file outside the archive"


def test_names_that_are_not_utf8_and_non_ascii_classes_work(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    (root / "café").mkdir()
    for i in range(2):
        (root / "café" / f"{i}.jpg").write_bytes(JPEG)
    os.rename(root / "dog" / "0.jpg", os.path.join(os.fsencode(root / "dog"), b"\xff\xfe.jpg"))
    splits = load_data(root, whole=True, progress=False)
    assert splits.classes == ["café", "cat", "dog"] and len(splits.val) == 8
    assert "dog/\udcff\udcfe.jpg" in splits.val.names


def test_extensionless_images_are_recognised_by_content_and_other_files_listed(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    (root / "cat" / "IMG_0001").write_bytes(PNG)
    (root / "cat" / "LICENSE").write_bytes(b"MIT")
    (root / "dog" / "labels.csv").write_bytes(b"a,b")
    scan = scan_folder(root)
    names = {n for n, _ in scan.splits["all"].entries}
    assert "cat/IMG_0001" in names and len(names) == 7
    assert scan.ignored["cat/LICENSE"].startswith("no extension") and scan.ignored["dog/labels.csv"].endswith("(.csv)")


def test_a_run_folder_inside_the_dataset_is_never_data(tmp_path):
    from vggnet.train.loop import train
    from vggnet.train.recipes import get_recipe

    root = write_dir(tmp_path / "d", {f"{c}/{i}.png": image_bytes(col, size=32, fmt="PNG")
                                      for c, col in (("red", (250, 0, 0)), ("blue", (0, 0, 250))) for i in range(6)})
    recipe = get_recipe("cifar", {"epochs": "1", "batch_size": "4", "val_fraction": "0.34", "workers": "0"})
    train("vgg11", root, recipe, out=root / "runs" / "first", progress=False, device="cpu")
    assert (root / "runs" / "first" / "curves.png").exists()
    scan = scan_folder(root)
    assert scan.splits["all"].classes == ["blue", "red"] and scan.ignored["runs/first/curves.png"].startswith("inside")


# ---- found by an adversarial pass ----------------------------------------------------------------------

def test_a_tar_whose_last_member_is_a_zip_is_read_as_the_tar(tmp_path):
    inner = write_zip_of(tmp_path / "old.zip", {"x/0.jpg": JPEG, "y/0.jpg": JPEG})
    files = {f"ds/{c}/{i}.jpg": JPEG for c in ("cat", "dog", "bird") for i in range(2)}
    files["ds/old_version.zip"] = inner.read_bytes()  # zipfile.is_zipfile says yes to this tar
    scan = scan_folder(write_tar_of(tmp_path / "t.tar", files))
    assert scan.splits["all"].classes == ["bird", "cat", "dog"]


def test_a_tar_cut_at_a_block_boundary_is_refused(tmp_path):
    whole = write_tar_of(tmp_path / "t.tar", {f"{c}/{i}.jpg": JPEG for c in ("ant", "bee", "cat") for i in range(3)})
    data = whole.read_bytes()
    with tarfile.open(whole) as tar:
        cut = tar.getmembers()[-1].offset  # the last member's header: the file ends cleanly before it
    (tmp_path / "cut.tar").write_bytes(data[:cut])
    with pytest.raises(DataError, match=r"cut.tar is truncated .*: a partial download or copy\? fetch it again$"):
        scan_folder(tmp_path / "cut.tar")


def test_links_fanning_out_to_the_same_folders_are_read_once(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    level = root / ".cache"  # 40 levels of two links each: 2**40 paths if every path were walked
    level.mkdir()
    for _ in range(40):
        nxt = level / "n"
        nxt.mkdir()
        os.symlink(nxt, level / "a")
        os.symlink(nxt, level / "b")
        level = nxt
    fan = root / "fan"
    os.symlink(root / "cat", fan)  # a second name for a class folder: not its images twice
    scan = scan_folder(root)
    assert scan.splits["all"].classes == ["cat", "dog"] and scan.ignored[".cache/"] == "hidden"
    assert scan.ignored["fan/"] == "the same folder as cat, read once"


def test_a_cifar_release_beside_class_folders_stops(tmp_path):
    from tests.helpers import cifar_batches

    root = cats_and_dogs(tmp_path / "d")
    (root / "cifar-10-batches-py").mkdir()
    for name, data in cifar_batches(n_per_batch=2, n_test=2).items():
        (root / "cifar-10-batches-py" / name).write_bytes(data)
    with pytest.raises(DataError, match="holds both a CIFAR-10 release and image class folders"):
        load_data(root, progress=False)


def test_swapped_class_folders_with_identical_files_are_not_read_from_a_stale_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    root = tmp_path / "d"
    dark, light = (image_bytes((c, c, c), size=8, fmt="BMP") for c in (10, 240))  # same size in bytes
    write_dir(root, {**{f"cat/{i}.bmp": dark for i in range(3)}, **{f"dog/{i}.bmp": light for i in range(3)}})
    for f in root.rglob("*.bmp"):
        os.utime(f, ns=(1_700_000_000_000_000_000,) * 2)  # as an unzip leaves them: equal times
    first = load_data(root, whole=True, progress=False).val
    os.rename(root / "cat", root / "tmp")
    os.rename(root / "dog", root / "cat")
    os.rename(root / "tmp", root / "dog")
    again = load_data(root, whole=True, progress=False).val
    assert first.images[first.labels == 0].float().mean() < 50 < again.images[again.labels == 0].float().mean()


def test_a_class_name_that_is_not_utf8_trains_and_reports(tmp_path, monkeypatch):
    from vggnet.train.loop import train
    from vggnet.train.recipes import get_recipe

    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    root = tmp_path / "d"
    for raw, colour in ((b"caf\xe9", (250, 0, 0)), (b"plain", (0, 0, 250))):
        folder = os.path.join(os.fsencode(root), raw)
        os.makedirs(folder)
        for i in range(6):
            with open(os.path.join(folder, b"im\xff%d.png" % i), "wb") as f:
                f.write(image_bytes(colour, fmt="PNG"))
    recipe = get_recipe("cifar", {"epochs": "1", "batch_size": "4", "val_fraction": "0.34", "workers": "0"})
    result = train("vgg11", root, recipe, out=tmp_path / "run", progress=False, device="cpu")
    assert result.metrics["classes"] == ["caf\udce9", "plain"]
    assert "caf\\xe9" in (tmp_path / "run" / "report.md").read_text()


def test_a_class_of_photos_pillow_cannot_read_stops_rather_than_vanishing(tmp_path):
    root = cats_and_dogs(tmp_path / "d")
    write_dir(root, {f"bird/IMG_{i}.HEIC": b"\x00\x00\x00\x18ftypheic" for i in range(3)})
    with pytest.raises(DataError, match=r"bird holds 3 .heic files and no image vggnet can read: convert them"):
        scan_folder(root)


def test_class_names_equal_but_for_unicode_normalisation_stop(tmp_path):
    import unicodedata

    root = cats_and_dogs(tmp_path / "d")
    for form in ("NFC", "NFD"):
        write_dir(root, {f"{unicodedata.normalize(form, 'café')}/0.jpg": JPEG})
    with pytest.raises(DataError, match="different Unicode forms"):
        scan_folder(root)


def test_an_archive_inside_the_folder_is_named_when_no_images_are_found(tmp_path):
    inner = write_tar_of(tmp_path / "inner.tar", {"cat/0.jpg": JPEG, "dog/0.jpg": JPEG})
    outer = write_tar_of(tmp_path / "outer.tar", {"photos.tar": inner.read_bytes()})
    with pytest.raises(DataError, match=r"it holds an archive, photos.tar: extract it, or pass it to --data"):
        scan_folder(outer)


def test_a_folder_that_cannot_be_listed_stops(tmp_path, monkeypatch):
    root = cats_and_dogs(tmp_path / "d")
    real = os.scandir

    def scandir(path):
        if str(path).endswith("/dog"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError, match=r"/d/dog: a folder that cannot be listed \(Permission denied\); fix its perm"):
        scan_folder(root)
