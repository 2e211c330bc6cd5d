import json
import math

import pytest

from tests.helpers import colour_folders
from vggnet.errors import VggnetError
from vggnet.experiments import run as run_module
from vggnet.experiments.report import diverged, stalled
from vggnet.experiments.run import run_study

TINY = {"epochs": "2", "batch_size": "16", "train_images": "48", "val_images": "18", "val_fraction": "0.25",
        "precision": "fp32"}


@pytest.fixture
def colours(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    return colour_folders(tmp_path / "colours")


def test_a_study_trains_each_arm_and_reports(colours, tmp_path):
    out = tmp_path / "lrn"
    result = run_study("lrn", colours, out, overrides=TINY, progress=False)
    assert [a["label"] for a in result["arms"]] == ["A", "A-LRN"]
    for arm in result["arms"]:
        assert arm["train_images"] == 48 and arm["val_images"] == 18 and len(arm["train_loss"]) == 2
        assert 0 <= arm["top1"] <= 1 and math.isfinite(arm["val_loss"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["arms"] == result["arms"] and "machine" in saved and saved["command"].startswith("vggnet experiment")
    report = (out / "report.md").read_text()
    assert "| A-LRN | `vgg11_lrn` |" in report and "Table 3" in report
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_finished_arms_are_read_not_trained_again(colours, tmp_path, monkeypatch):
    out = tmp_path / "lrn"
    first = run_study("lrn", colours, out, overrides=TINY, progress=False)
    monkeypatch.setattr(run_module, "train", lambda *a, **k: pytest.fail("trained again"))
    again = run_study("lrn", colours, out, overrides=TINY, progress=False)
    assert len(again["arms"]) == 2
    assert again["wall_seconds"] == first["wall_seconds"] > 0  # the arms' time, not the re-reading's


def test_an_arm_cut_mid_way_resumes_from_its_checkpoint(colours, tmp_path, monkeypatch):
    from vggnet.data import transforms

    straight = run_study("lrn", colours, tmp_path / "straight", overrides=TINY, progress=False)
    out, calls, real = tmp_path / "cut", {"n": 0}, transforms.BatchTransform.__call__

    def interrupt(self, x, train, generator=None):
        calls["n"] += train
        if calls["n"] == 5:  # arm A, the second batch of epoch 2 (3 batches per epoch)
            raise KeyboardInterrupt
        return real(self, x, train, generator)

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(transforms.BatchTransform, "__call__", interrupt)
        run_study("lrn", colours, out, overrides=TINY, progress=False)
    assert (out / "a" / "checkpoints" / "LATEST").read_text().strip() == "epoch-0001"
    epoch_1 = (out / "a" / "metrics.csv").read_text().splitlines()[1]
    result = run_study("lrn", colours, out, overrides=TINY, progress=False)
    assert (out / "a" / "metrics.csv").read_text().splitlines()[1] == epoch_1  # kept, not trained again
    for cut, whole in zip(result["arms"], straight["arms"], strict=True):
        assert cut["train_loss"] == pytest.approx(whole["train_loss"], abs=1e-5)
        assert cut["top1"] == pytest.approx(whole["top1"])


def test_the_init_study_starts_deep_nets_from_its_donor(colours, tmp_path, monkeypatch):
    from vggnet.experiments import studies

    arms = tuple(a for a in studies.STUDIES["init"].arms if a.label in ("A (donor)", "D, from A"))
    monkeypatch.setitem(studies.STUDIES, "init", studies.STUDIES["init"].__class__(
        **{**studies.STUDIES["init"].__dict__, "arms": arms}))
    result = run_study("init", colours, tmp_path / "init", overrides=TINY, progress=False)
    assert result["arms"][1]["init_from"] == str(tmp_path / "init" / "a-donor")
    assert result["arms"][0]["settings"] == {"epochs": "10"}  # the donor's own, shown in the report
    assert "| A (donor) | `vgg11` | kaiming | `epochs=10` |" in (tmp_path / "init" / "report.md").read_text()


def test_stalled_and_diverged_flags():
    row = {"train_loss": [2.31, 2.302], "val_loss": 2.30}
    assert stalled(row) and not diverged(row)
    blown = {"train_loss": [1e6], "val_loss": float("nan")}
    assert diverged(blown) and not stalled(blown)
    assert not stalled({"train_loss": [2.3, 1.1], "val_loss": 1.2})


def test_an_arm_whose_loss_blows_up_is_a_result_not_a_crash(colours, tmp_path):
    result = run_study("lrn", colours, tmp_path / "lrn", overrides={**TINY, "lr": "1e8"}, progress=False)
    for arm in result["arms"]:
        assert arm["top1"] is None and arm["diverged"].startswith("the loss became") and diverged(arm)
    report = (tmp_path / "lrn" / "report.md").read_text()
    assert report.count("stopped: non-finite loss in epoch 1 **diverged**") == 2
    assert (tmp_path / "lrn" / "a" / "diverged.json").exists()


def test_a_study_never_writes_among_the_users_files(colours, tmp_path):
    from vggnet.runs import RunDirError

    mine = tmp_path / "mine"
    (mine / "a").mkdir(parents=True)
    (mine / "a" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="is not empty and holds no vggnet study output"):
        run_study("lrn", colours, mine, overrides=TINY, progress=False)
    assert [p.relative_to(mine).as_posix() for p in sorted(mine.rglob("*"))] == ["a", "a/notes.txt"]


def test_a_study_never_reports_a_foreign_run_as_an_arm_or_mixes_studies(colours, tmp_path):
    from vggnet.runs import RunDir, RunDirError

    with RunDir(tmp_path / "lrn", "study").claim(), RunDir(tmp_path / "lrn" / "a").claim():
        (tmp_path / "lrn" / "a" / "run.json").write_text(json.dumps(  # arm A's folder: a run of another network
            {"model": "vgg16", "data": "x", "seed": 0, "deterministic": False, "recipe": {}}))
        (tmp_path / "lrn" / "a" / "metrics.json").write_text("{}")
    with pytest.raises(RunDirError, match=r"holds a run of vgg16, not the arm A \(vgg11\)"):
        run_study("lrn", colours, tmp_path / "lrn", overrides=TINY, progress=False)
    (tmp_path / "lrn" / "a" / "run.json").write_text(json.dumps(
        {"model": "vgg11", "data": "x", "seed": 0, "deterministic": False, "recipe": {"lr": 5.0}}))
    with pytest.raises(RunDirError, match=r"holds a run with other lr, not the arm A"):
        run_study("lrn", colours, tmp_path / "lrn", overrides=TINY, progress=False)
    with pytest.raises(RunDirError, match="holds other work"):
        run_study("augment", colours, tmp_path / "lrn", overrides=TINY, progress=False)


def test_a_study_refuses_val_fraction_0_before_it_trains(colours, tmp_path):
    with pytest.raises(VggnetError, match="a study compares its arms' held-out scores"):
        run_study("lrn", colours, tmp_path / "s", overrides={"val_fraction": "0"}, progress=False)
    assert not (tmp_path / "s").exists()
