import errno
from pathlib import Path

import pytest
import torch

from vggnet.errors import CheckpointError
from vggnet.models import create_model
from vggnet.runs import checkpoint as ck

META = {"model": "vgg11_bn", "model_kwargs": {"num_classes": 3, "head": "linear"}, "classes": ["a", "b", "c"]}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("vgg11_bn", num_classes=3, head="linear")


def _state(epoch):
    """The shape of what training saves (ck.STATE_KEYS), small."""
    return {"epoch": epoch, "optimizer": {}, "scheduler": {}, "rng": {"torch": torch.get_rng_state()},
            "history": [{"epoch": e, "val_top1": 0.5} for e in range(1, epoch + 1)], "stats": {}}


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
    with monkeypatch.context() as patch, pytest.raises(CheckpointError, match=r"No space left on device.*previous"):
        patch.setattr(ck.torch, "save", full) if where == "state" else patch.setattr(ck, "save_weights", full)
        ck.save_checkpoint(tmp_path, 2, model, META, _state(2))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["LATEST", "epoch-0001"]
    loaded = ck.load_checkpoint(tmp_path)
    assert loaded.meta["epoch"] == 1 and loaded.state["epoch"] == 1
    assert not torch.equal(loaded.weights["features.0.weight"], model.features[0].weight)


def test_bad_checkpoints_are_one_line_errors(model, tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at"):
        ck.find_checkpoint(tmp_path)
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"cannot read"):
        ck.load_checkpoint(tmp_path / "x.safetensors")
    ck.save_weights(tmp_path / "plain.safetensors", model, {})
    with pytest.raises(CheckpointError, match=r"has no vggnet metadata"):
        ck.model_from_checkpoint(tmp_path / "plain.safetensors")
    ck.save_weights(tmp_path / "other.safetensors", model, {**META, "model": "vgg13_bn"})
    with pytest.raises(CheckpointError, match=r"does not fit vgg13_bn"):
        ck.model_from_checkpoint(tmp_path / "other.safetensors")


def test_state_file_is_loaded_weights_only(model, tmp_path):
    path = ck.save_checkpoint(tmp_path, 1, model, META, _state(1))
    torch.save({"epoch": 1, "evil": ck.Checkpoint}, path / "state.pt")  # a pickled class, not plain data
    with pytest.raises(CheckpointError, match=r"cannot read"):
        ck.load_checkpoint(tmp_path)


@pytest.mark.parametrize("where", ["weights", "state"])
def test_a_real_failed_write_is_one_line_and_keeps_the_last_checkpoint(tmp_path, where):
    """A real write error from safetensors' or torch's own writer (a file size limit stands in for
    a full disk: the same failed write() underneath), not a mock."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import resource, signal, sys, torch
        from vggnet.errors import CheckpointError
        from vggnet.models import create_model
        from vggnet.runs import checkpoint as ck
        model = create_model("vgg11_bn", num_classes=3, head="linear")
        state = {{"epoch": 1, "optimizer": {{}}, "scheduler": {{}}, "rng": {{}}, "stats": {{}},
                  "history": [{{"epoch": 1}}]}}
        ck.save_checkpoint({str(tmp_path)!r}, 1, model, {{}}, state)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if {where!r} == "state":
            state["big"] = torch.zeros(2**22)  # 16 MB of state, the weights fit under the limit
        limit = 16 * 2**20 if {where!r} == "state" else 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            ck.save_checkpoint({str(tmp_path)!r}, 2, model, {{}}, {{**state, "epoch": 2, "history": [{{"epoch": 2}}]}})
        except CheckpointError as err:
            print(err)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    line = out.stdout.strip()
    assert "\n" not in line and "cannot write checkpoint" in line and "previous checkpoint is kept" in line, line
    assert "weights_only" not in line
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["LATEST", "epoch-0001"]
    assert ck.load_checkpoint(tmp_path).state["epoch"] == 1
