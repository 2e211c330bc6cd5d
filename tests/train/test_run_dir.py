"""Training owns its run directory: locked while it trains, never the user's files, a damaged
state or run.json an error (never a restart), a non-finite validation loss an error."""

import json
import math

import pytest
import torch

from vggnet.errors import CheckpointError, DivergedError, VggnetError
from vggnet.evaluate.metrics import Predictions
from vggnet.runs import RunDir, RunDirError, load_checkpoint
from vggnet.train import loop, setup
from vggnet.train.recipes import get_recipe

SETS = {"batch_size": "16", "lr": "0.01", "val_fraction": "0.25", "precision": "fp32", "epochs": "1"}


def _train(data, out, **kwargs):
    return loop.train("vgg11_bn", data, get_recipe("cifar", SETS), out, seed=0, progress=False, **kwargs)


def test_a_locked_run_is_refused_before_any_data_is_read(tmp_path, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("data was read")

    monkeypatch.setattr(setup, "load_data", no_data)
    with RunDir(tmp_path / "run").claim():
        with pytest.raises(RunDirError, match=r"is in use by another vggnet process"):
            _train(tmp_path / "no-such-data", tmp_path / "run")
        with pytest.raises(RunDirError, match=r"is in use by another vggnet process"):
            loop.train(None, None, None, tmp_path / "run", resume=True, progress=False)


def test_training_into_the_users_folder_is_refused_and_loses_nothing(colours, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"mine": true}')
    with pytest.raises(RunDirError, match=r"is not empty and holds no vggnet train output"):
        _train(colours, mine)
    assert [p.name for p in mine.iterdir()] == ["metrics.json"]


def test_a_bad_option_leaves_no_folder_behind(colours, tmp_path):
    with pytest.raises(Exception, match=r"unknown model|not a registered|vgg99"):
        loop.train("vgg99", colours, get_recipe("cifar", SETS), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_damaged_state_or_run_json_stops_the_resume_and_keeps_the_run(colours, tmp_path):
    _train(colours, tmp_path / "run")
    latest = tmp_path / "run" / "checkpoints" / "epoch-0001"
    good_state = (latest / "state.pt").read_bytes()
    torch.save({}, latest / "state.pt")
    with pytest.raises(CheckpointError, match=r"state.pt is damaged"):
        loop.train(None, None, None, tmp_path / "run", resume=True, epochs=2, progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["LATEST", "epoch-0001"]
    (latest / "state.pt").write_bytes(good_state)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({**run, "recipe": {**run["recipe"], "wings": 2}}))
    with pytest.raises(CheckpointError, match=r"run.json is damaged: its recipe does not fit"):
        loop.train(None, None, None, tmp_path / "run", resume=True, epochs=2, progress=False)
    (tmp_path / "run" / "run.json").write_text(json.dumps({**run, "seed": "0"}))
    with pytest.raises(CheckpointError, match=r"run.json is damaged: 'seed' must be a whole number"):
        loop.train(None, None, None, tmp_path / "run", resume=True, epochs=2, progress=False)
    assert load_checkpoint(tmp_path / "run").state["epoch"] == 1


def test_a_non_finite_validation_loss_ends_the_run_with_an_error(colours, tmp_path, monkeypatch):
    real = loop.predict

    def overflowing(*args, **kwargs):
        result = real(*args, **kwargs)
        return Predictions(result.labels, result.topk, math.nan, result.skipped)

    monkeypatch.setattr(loop, "predict", overflowing)
    with pytest.raises(DivergedError, match=r"the validation loss became nan after epoch 1 .* no checkpoint was "
                                            r"written"):
        _train(colours, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "LATEST").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_resume_extends_and_never_shortens_a_run(colours, tmp_path):
    loop.train("vgg11_bn", colours, get_recipe("cifar", {**SETS, "epochs": "2"}), tmp_path / "run", seed=0,
               progress=False)
    with pytest.raises(VggnetError, match="has trained 2 epochs already: --epochs extends a run"):
        loop.train(None, None, None, tmp_path / "run", resume=True, epochs=1, progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["recipe"]["epochs"] == 2
