"""How prepared shards are dealt to ranks and workers: whole batches for training, every image
once for evaluation, and a one-line stop at a shard that is not the one recorded."""

import json
import shutil
from collections import Counter

import pytest
import torch

from tests.data.test_prepare import decode_code, make_data
from vggnet.data.datasets import load_data
from vggnet.data.loader import make_batches
from vggnet.data.prepare import Options, prepare
from vggnet.data.shard_stream import stream_slices
from vggnet.data.shards import MANIFEST
from vggnet.errors import DataError


@pytest.mark.parametrize(("total", "world", "workers", "batch"),
                         [(5000, 1, 16, 256), (50_000, 8, 8, 64), (63, 2, 2, 3), (20, 1, 3, 8), (5, 2, 2, 4)])
def test_training_slices_are_whole_batches_and_leave_out_less_than_one_global_batch(total, world, workers, batch):
    slices = stream_slices(total, world, workers, batch, train=True)
    per_rank = [sum(b - a for a, b in slices[r * workers:(r + 1) * workers]) for r in range(world)]
    assert len(set(per_rank)) == 1 and per_rank[0] > 0  # every rank as many images; never an empty epoch
    if total >= world * batch:
        assert all((b - a) % batch == 0 for a, b in slices)
        assert slices[-1][1] <= total and total - slices[-1][1] < world * batch  # each image at most once
    assert all(a <= b for a, b in slices) and all(slices[i][1] == slices[i + 1][0] for i in range(len(slices) - 1))


@pytest.mark.parametrize(("total", "world", "workers"), [(63, 1, 3), (5, 2, 2), (1, 2, 3), (64, 2, 2)])
def test_evaluation_slices_cover_every_image_and_keep_ranks_equal(total, world, workers):
    slices = stream_slices(total, world, workers, 4, train=False)
    seen = Counter(p % total for a, b in slices for p in range(a, b))
    assert set(seen) == set(range(total))
    per_rank = {sum(b - a for a, b in slices[r * workers:(r + 1) * workers]) for r in range(world)}
    assert len(per_rank) == 1 and sum(seen.values()) - total < world  # padding: at most world - 1 images


def _codes(batches) -> list[int]:
    return [decode_code(x[:, 0, 0].tolist()) for images, _ in batches for x in images]


def test_one_process_with_workers_sees_every_image_once(tmp_path):
    data = make_data(tmp_path / "data")
    prepare(data, tmp_path / "out", Options(short_side=64, shard_size=4), workers=1, progress=False)
    val = load_data(tmp_path / "out", whole=True, progress=False).val
    for workers in (0, 1, 3):
        batches = make_batches(val, 4, train=False, device=torch.device("cpu"), crop=48, scale=(64, 64),
                               workers=workers)
        yielded = list(batches)
        codes = _codes(yielded)
        assert len(batches) == len(yielded) in (2, 3)  # 4 + 2 (one stream), 3 + 3 or 2 + 2 + 2 (cores permitting)
        assert len(codes) == len(set(codes)) == 6


def test_a_tiny_training_set_still_gives_a_batch(tmp_path):
    data = make_data(tmp_path / "data", per_class=(2, 2, 2), val=1)
    prepare(data, tmp_path / "out", Options(short_side=64, shard_size=4), workers=1, progress=False)
    train = load_data(tmp_path / "out", progress=False).train
    batches = make_batches(train, 8, train=True, device=torch.device("cpu"), crop=48, scale=(64, 64), workers=3)
    batches.set_epoch(0)
    assert len(batches) >= 1 and sorted(_codes(batches)) == list(range(6))


def test_a_shard_copied_over_another_stops_instead_of_mislabelling(tmp_path):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    prepare(data, out, Options(short_side=64, shard_size=4), workers=1, progress=False)
    assert (out / "train-000000.tar").stat().st_size == (out / "train-000001.tar").stat().st_size
    shutil.copy(out / "train-000001.tar", out / "train-000000.tar")  # same size: the manifest check passes
    train = load_data(out, progress=False).train
    batches = make_batches(train, 4, train=True, device=torch.device("cpu"), crop=48, scale=(64, 64), workers=1)
    batches.set_epoch(0)
    with pytest.raises(DataError, match="not the one its manifest records") as err:
        list(batches)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
    prepare(data, out, Options(short_side=64, shard_size=4), workers=1, progress=False)  # its checksum: rewritten
    batches = make_batches(load_data(out, progress=False).train, 4, train=True, device=torch.device("cpu"), crop=48,
                           scale=(64, 64), workers=1)
    batches.set_epoch(0)
    assert len(_codes(batches)) == 16


@pytest.mark.parametrize("hostile", ["bool_labels", "float_labels", "duplicate_names", "duplicate_shard",
                                     "complete_no", "linked_index", "string_count", "short_side"])
def test_a_hostile_manifest_or_index_is_one_line(tmp_path, hostile):
    data = make_data(tmp_path / "data")
    out = tmp_path / "out"
    prepare(data, out, Options(short_side=48, shard_size=4), workers=1, progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    index = json.loads((out / "train-index.json").read_text())
    if hostile == "bool_labels":
        index["labels"] = [bool(x) for x in index["labels"]]
    elif hostile == "float_labels":
        index["labels"] = [float(x) for x in index["labels"]]
    elif hostile == "duplicate_names":
        index["names"][1] = index["names"][0]
    elif hostile == "duplicate_shard":
        manifest["splits"]["train"]["shards"][1] = manifest["splits"]["train"]["shards"][0]
    elif hostile == "complete_no":
        manifest["complete"] = "no"
    elif hostile == "string_count":
        manifest["splits"]["train"]["shards"][0]["images"] = "4"
    elif hostile == "short_side":
        manifest["short_side"] = "abc"
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "train-index.json").write_text(json.dumps(index))
    if hostile == "linked_index":
        (tmp_path / "other.json").write_text(json.dumps(index))
        (out / "train-index.json").unlink()
        (out / "train-index.json").symlink_to(tmp_path / "other.json")
    with pytest.raises(DataError) as err:
        load_data(out, progress=False)
    assert "\n" not in str(err.value)


def test_strict_stops_at_an_image_left_out_when_prepared(tmp_path):
    data = make_data(tmp_path / "data")
    (data / "train" / "cat" / "cat_0.jpg").write_bytes(b"garbage")
    prepare(data, tmp_path / "out", Options(short_side=48), workers=1, progress=False)
    assert len(load_data(tmp_path / "out", progress=False).train) == 17
    with pytest.raises(DataError, match="cat_0"):
        load_data(tmp_path / "out", progress=False, strict=True)
    with pytest.raises(DataError, match="cat_0"):
        prepare(data, tmp_path / "out", Options(short_side=48), workers=1, progress=False, strict=True)
