"""vggnet prepare: WebDataset-layout shards that other tools read, that vggnet reads back as the
same dataset, that resume after an interruption, and that refuse what is not theirs."""

import io
import json
import os
import tarfile

import pytest
from click.testing import CliRunner
from PIL import Image

from vggnet.cli import cli
from vggnet.data import prepare as prep
from vggnet.data.datasets import labels_of, load_data, names_of
from vggnet.data.folders import scan_folder
from vggnet.data.prepare import Options, prepare
from vggnet.data.shards import MANIFEST
from vggnet.errors import DataError, VggnetError

CLASSES = ("cat", "dog", "emu")


def code(i: int) -> tuple[int, int, int]:
    """A colour that survives JPEG: image i is (10a+5, 10b+5, 128) for i = 25b + a."""
    return 10 * (i % 25) + 5, 10 * (i // 25) + 5, 128


def decode_code(pixel) -> int:
    r, g = (int(v) for v in pixel[:2])
    return round((r - 5) / 10) + 25 * round((g - 5) / 10)


def make_data(root, per_class=(7, 5, 6), val=2, size=(120, 90)):
    """train/<class>/ and val/<class>/ of solid-colour JPEGs, each colour naming its image."""
    i = 0
    for split, counts in (("train", per_class), ("val", (val,) * 3)):
        for c, n in zip(CLASSES, counts, strict=True):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                Image.new("RGB", size, code(i)).save(root / split / c / f"{c}_{k}.jpg", quality=95)
                i += 1
    return root


def members(path):
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]


def test_shards_are_webdataset_samples_in_order_and_mix_the_classes(tmp_path):
    data = make_data(tmp_path / "data")
    manifest = prepare(data, tmp_path / "out", Options(short_side=64, shard_size=4), workers=1, progress=False)
    assert manifest["classes"] == list(CLASSES) and manifest["splits"]["train"]["images"] == 18
    index = json.loads((tmp_path / "out" / "train-index.json").read_text())
    labels_in_shards, sides = [], set()
    for shard in manifest["splits"]["train"]["shards"]:
        items = members(tmp_path / "out" / shard["file"])
        assert [n.rsplit(".", 1)[1] for n, _ in items] == ["jpg", "cls"] * (len(items) // 2)  # key.jpg, key.cls
        assert all(a.split(".")[0] == b.split(".")[0] for (a, _), (b, _) in zip(items[::2], items[1::2], strict=True))
        for (_, jpg), (_, cls) in zip(items[::2], items[1::2], strict=True):
            image = Image.open(io.BytesIO(jpg))
            sides.add(image.size)
            labels_in_shards.append(int(cls))
    assert labels_in_shards == index["labels"] and sides == {(85, 64)}  # 120x90 -> shorter side 64
    assert labels_in_shards[:6] != sorted(labels_in_shards[:6])  # training shards are shuffled, not class by class
    source = scan_folder(data).splits["train"]
    assert sorted(zip(index["names"], index["labels"], strict=True)) == sorted(source.entries)


def test_the_prepared_folder_is_the_same_dataset(tmp_path):
    data = make_data(tmp_path / "data")
    prepare(data, tmp_path / "out", Options(short_side=64, shard_size=5), workers=2, progress=False)
    raw, shards = load_data(data, progress=False), load_data(tmp_path / "out", progress=False)
    assert shards.classes == raw.classes and not shards.in_memory
    for split in ("train", "val"):
        a, b = getattr(raw, split), getattr(shards, split)
        assert sorted(zip(names_of(b), labels_of(b).tolist(), strict=True)) == \
            sorted(zip(names_of(a), labels_of(a).tolist(), strict=True))


def test_a_pool_is_split_by_seed_and_by_a_runs_record(tmp_path):
    data = tmp_path / "flat"
    make_data(tmp_path / "data")
    (tmp_path / "data" / "train").rename(data)
    prepare(data, tmp_path / "out", Options(short_side=64, shard_size=5), workers=1, progress=False)
    splits = load_data(tmp_path / "out", val_fraction=0.34, seed=3, progress=False)
    assert len(splits.train) + len(splits.val) == 18 and splits.held_out == names_of(splits.val)
    again = load_data(tmp_path / "out", held_out=splits.held_out, progress=False)
    assert sorted(names_of(again.val)) == sorted(splits.held_out)
    assert len(load_data(tmp_path / "out", whole=True, progress=False).val) == 18


def test_an_interrupted_pass_resumes_keeping_the_shards_it_wrote(tmp_path):
    data = make_data(tmp_path / "data")
    bad = data / "val" / "emu" / "emu_1.jpg"  # the last shard planned
    good = bad.read_bytes()
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"emu_1\.jpg"):
        prepare(data, out, Options(short_side=64, shard_size=4), workers=1, progress=False, strict=True)
    assert not (out / MANIFEST).exists()
    with pytest.raises(DataError, match="only partly prepared"):
        load_data(out, progress=False)
    written = {p.name: p.stat().st_ino for p in out.glob("train-*.tar")}
    assert len(written) == 5
    bad.write_bytes(good)  # fixed: the same names and labels, so the same plan
    prepare(data, out, Options(short_side=64, shard_size=4), workers=1, progress=False)
    assert {p.name: p.stat().st_ino for p in out.glob("train-*.tar")} == written  # kept, not rewritten
    assert len(load_data(out, progress=False).val) == 6


def test_undecodable_images_are_left_out_and_listed(tmp_path):
    data = make_data(tmp_path / "data")
    (data / "train" / "dog" / "dog_2.jpg").write_bytes(b"garbage")
    manifest = prepare(data, tmp_path / "out", Options(short_side=64, shard_size=4), workers=1, progress=False)
    assert list(manifest["skipped"]) == ["train/dog/dog_2.jpg"] and manifest["splits"]["train"]["images"] == 17
    splits = load_data(tmp_path / "out", progress=False)
    assert "train/dog/dog_2.jpg" not in names_of(splits.train) and len(splits.train) == 17


def test_imagenets_flat_val_folder_is_prepared_with_its_labels(tmp_path):
    root = tmp_path / "imagenet"
    wnids = ["n01440764", "n01443537"]
    for w in wnids:
        (root / "train" / w).mkdir(parents=True)
        Image.new("RGB", (80, 60), (9, 9, 9)).save(root / "train" / w / f"{w}_1.JPEG")
    (root / "val").mkdir()
    for k in (1, 2):
        Image.new("RGB", (80, 60), (200, 9, 9)).save(root / "val" / f"ILSVRC2012_val_0000000{k}.JPEG")
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01443537 1 2 3 4\n"
                                               "ILSVRC2012_val_00000002,n01440764 1 2 3 4\n")
    prepare(root, tmp_path / "out", Options(short_side=48), workers=1, progress=False)
    val = load_data(tmp_path / "out", progress=False).val
    assert dict(zip(names_of(val), labels_of(val).tolist(), strict=True)) == {
        "val/ILSVRC2012_val_00000001.JPEG": 1, "val/ILSVRC2012_val_00000002.JPEG": 0}


def run(*args):
    return CliRunner().invoke(cli, ["prepare", *(str(a) for a in args)])


@pytest.mark.parametrize("case", ["foreign", "inside", "quality", "side", "workers", "prepared_input"])
def test_what_is_not_ours_or_not_valid_stops_in_one_line(tmp_path, case, monkeypatch):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    args = [data, out]
    if case == "foreign":
        out.mkdir()
        (out / "thesis.tex").write_text("mine")
    elif case == "inside":
        args = [data, data / "shards"]
    elif case == "prepared_input":
        prepare(data, out, Options(short_side=48), workers=1, progress=False)
        args = [out, tmp_path / "again"]
    extra = {"quality": ["--quality", "0"], "side": ["--short-side", "8"], "workers": ["--workers", "0"]}.get(case, [])
    monkeypatch.setattr(prep, "scan_folder", lambda *a, **k: pytest.fail("read the data before checking"))
    result = run(*args, *extra)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and result.output.startswith("error: ")
    expected = {"foreign": "holds other files", "inside": "inside the dataset", "quality": "--quality 0",
                "side": "--short-side 8", "workers": "--workers 0", "prepared_input": "already prepared"}[case]
    assert expected in result.output
    if case == "foreign":
        assert sorted(os.listdir(out)) == ["thesis.tex"]


def test_another_pass_into_a_prepared_folder_is_refused_unless_identical(tmp_path):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    assert run(data, out, "--short-side", "48", "--workers", "1").exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert run(data, out, "--short-side", "48", "--workers", "1").exit_code == 0  # nothing to do
    result = run(data, out, "--short-side", "64", "--workers", "1")
    assert result.exit_code == 2 and "it was prepared with --short-side 48 (now 64)" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("damage", ["truncated", "link", "name", "missing", "labels"])
def test_a_damaged_prepared_folder_is_one_line(tmp_path, damage):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    prepare(data, out, Options(short_side=48, shard_size=4), workers=1, progress=False)
    shard = out / "train-000001.tar"
    manifest = json.loads((out / MANIFEST).read_text())
    if damage == "truncated":
        shard.write_bytes(shard.read_bytes()[:1000])
    elif damage == "link":
        (tmp_path / "elsewhere.tar").write_bytes(shard.read_bytes())
        shard.unlink()
        shard.symlink_to(tmp_path / "elsewhere.tar")
    elif damage == "name":
        manifest["splits"]["train"]["shards"][1]["file"] = "../elsewhere.tar"
    elif damage == "missing":
        shard.unlink()
    else:
        index = json.loads((out / "train-index.json").read_text())
        index["labels"][0] = 99
        (out / "train-index.json").write_text(json.dumps(index))
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(VggnetError) as err:
        load_data(out, progress=False)
    assert "\n" not in str(err.value)


def test_a_shard_deleted_after_the_pass_is_written_again(tmp_path):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    prepare(data, out, Options(short_side=48, shard_size=4), workers=1, progress=False)
    kept = (out / "train-000000.tar").stat().st_ino
    (out / "train-000002.tar").unlink()
    with pytest.raises(DataError, match=r"train-000002\.tar is missing"):
        load_data(out, progress=False)
    prepare(data, out, Options(short_side=48, shard_size=4), workers=1, progress=False)
    assert len(load_data(out, progress=False).train) == 18 and (out / "train-000000.tar").stat().st_ino == kept


def test_a_second_pass_into_the_same_folder_at_once_is_refused(tmp_path):
    from vggnet.data.prepare_state import locked

    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    with locked(out), pytest.raises(VggnetError, match="another vggnet prepare is writing"):
        prepare(data, out, Options(short_side=48), workers=1, progress=False)


def test_a_pass_stopped_before_its_first_shard_resumes(tmp_path, monkeypatch):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep, "_write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(data, out, Options(short_side=48), workers=1, progress=False)
    monkeypatch.undo()
    prepare(data, out, Options(short_side=48), workers=1, progress=False)
    assert len(load_data(out, progress=False).train) == 18


def test_a_seed_holds_out_the_same_images_of_a_folder_and_of_its_shards(tmp_path):
    (tmp_path / "d").mkdir()
    make_data(tmp_path / "d", per_class=(9, 8, 7))
    data = tmp_path / "d" / "train"  # a flat pool: vggnet holds out the val images
    prepare(data, tmp_path / "out", Options(short_side=48, shard_size=5), workers=1, progress=False)
    for seed in (0, 7):
        folder = load_data(data, val_fraction=0.3, seed=seed, progress=False)
        shards = load_data(tmp_path / "out", val_fraction=0.3, seed=seed, progress=False)
        assert sorted(shards.held_out) == sorted(folder.held_out) and len(folder.held_out) == 7


def test_a_shard_or_a_flat_imagenet_val_as_data_says_where_to_point(tmp_path):
    data = make_data(tmp_path / "data")
    prepare(data, tmp_path / "out", Options(short_side=48), workers=1, progress=False)
    with pytest.raises(DataError, match="one shard of a folder vggnet prepare wrote"):
        load_data(tmp_path / "out" / "train-000000.tar", progress=False)
    (tmp_path / "val").mkdir()
    Image.new("RGB", (80, 60)).save(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DataError, match="ImageNet's flat validation folder"):
        load_data(tmp_path / "val", progress=False)


def test_files_the_shards_will_not_hold_are_named_before_the_pass(tmp_path, caplog):
    data = make_data(tmp_path / "data")
    (data / "train" / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING", logger="vggnet"):
        prepare(data, tmp_path / "out", Options(short_side=48), workers=1, progress=False)
    assert "1 files in data are not used: train/notes.txt (not an image (.txt))" in caplog.text
