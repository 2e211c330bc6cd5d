import errno
from pathlib import Path

import pytest
import torch

from vggnet.errors import CheckpointError
from vggnet.models import create_model
from vggnet.train import checkpoint as ck

META = {"model": "vgg11_bn", "model_kwargs": {"num_classes": 3, "head": "linear"}, "classes": ["a", "b", "c"]}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("vgg11_bn", num_classes=3, head="linear")


def _state(epoch):
    return {"epoch": epoch, "rng": {"torch": torch.get_rng_state()}, "history": [{"epoch": epoch, "val_top1": 0.5}]}


def test_round_trip_rebuilds_the_model_from_metadata(model, tmp_path):
    ck.save_checkpoint(tmp_path, 1, model, META, _state(1))
    rebuilt, meta = ck.model_from_checkpoint(tmp_path)
    assert meta["classes"] == ["a", "b", "c"] and meta["epoch"] == 1
    for (k, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    loaded = ck.load_checkpoint(tmp_path / "checkpoints" / "epoch-0001")
    assert loaded.state["history"] == [{"epoch": 1, "val_top1": 0.5}]
    assert ck.find_checkpoint(tmp_path / "checkpoints" / "epoch-0001" / "model.safetensors").is_file()


def test_only_the_newest_checkpoints_are_kept(model, tmp_path):
    for epoch in range(1, 5):
        ck.save_checkpoint(tmp_path, epoch, model, META, _state(epoch), keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["LATEST", "epoch-0003", "epoch-0004"]
    assert (tmp_path / "checkpoints" / "LATEST").read_text() == "epoch-0004\n"


@pytest.mark.parametrize("where", ["weights", "state"])
def test_disk_full_during_a_write_keeps_the_last_good_checkpoint(model, tmp_path, monkeypatch, where):
    ck.save_checkpoint(tmp_path, 1, model, META, _state(1))

    def full(*args, **kwargs):
        path = args[1] if where == "state" else args[0]
        Path(path).write_bytes(b"\0" * 100)  # a partial file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    with torch.no_grad():
        model.features[0].weight.add_(1)
    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        patch.setattr(ck.torch, "save", full) if where == "state" else patch.setattr(ck, "save_weights", full)
        ck.save_checkpoint(tmp_path, 2, model, META, _state(2))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["LATEST", "epoch-0001"]
    loaded = ck.load_checkpoint(tmp_path)
    assert loaded.meta["epoch"] == 1 and loaded.state["epoch"] == 1
    assert not torch.equal(loaded.weights["features.0.weight"], model.features[0].weight)


def test_bad_checkpoints_are_one_line_errors(model, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        ck.find_checkpoint(tmp_path)
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        ck.load_checkpoint(tmp_path / "x.safetensors")
    ck.save_weights(tmp_path / "plain.safetensors", model, {})
    with pytest.raises(CheckpointError, match="has no vggnet metadata"):
        ck.model_from_checkpoint(tmp_path / "plain.safetensors")
    ck.save_weights(tmp_path / "other.safetensors", model, {**META, "model": "vgg13_bn"})
    with pytest.raises(CheckpointError, match="does not fit vgg13_bn"):
        ck.model_from_checkpoint(tmp_path / "other.safetensors")


def test_state_file_is_loaded_weights_only(model, tmp_path):
    path = ck.save_checkpoint(tmp_path, 1, model, META, _state(1))
    torch.save({"epoch": 1, "evil": ck.Checkpoint}, path / "state.pt")  # a pickled class, not plain data
    with pytest.raises(CheckpointError, match="cannot read"):
        ck.load_checkpoint(tmp_path)
