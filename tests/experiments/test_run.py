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


def test_a_study_resumed_on_another_machine_names_both(colours, tmp_path, monkeypatch):
    out = tmp_path / "lrn"
    run_study("lrn", colours, out, overrides=TINY, progress=False)
    result = json.loads((out / "results.json").read_text())
    assert ";" not in result["machine"] and result["precision"] == "fp32"
    assert "Machine: " + result["machine"] + "; trained in fp32; " in (out / "report.md").read_text()
    run_json = out / "a-lrn" / "run.json"  # as if A-LRN had trained in another session, elsewhere
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "machines": ["AMD EPYC 9R14, 2 cores"]}))
    again = run_study("lrn", colours, out, overrides=TINY, progress=False)
    assert again["machine"].split("; ")[1].startswith("AMD EPYC 9R14, 2 cores")
    assert [s["machines"] for a in again["arms"] for s in a["seeds"]][1] == ["AMD EPYC 9R14, 2 cores"]
    assert "Machines: " in (out / "report.md").read_text() and "trained on more than one" in (
        out / "report.md").read_text()
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "machines": "NVIDIA H100"}))  # damaged
    assert ";" not in run_study("lrn", colours, out, overrides=TINY, progress=False)["machine"]  # not N; V; I; ...


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
        **{**studies.STUDIES["init"].__dict__, "arms": arms, "claims": ()}))
    result = run_study("init", colours, tmp_path / "init", overrides=TINY, progress=False)
    assert result["arms"][1]["init_from"] == str(tmp_path / "init" / "a-donor")
    assert result["arms"][0]["settings"] == {"epochs": "2"}  # the donor's own (TINY's 2 x 1.25), in the report
    assert "| A (donor) | `vgg11` | kaiming | `epochs=2` |" in (tmp_path / "init" / "report.md").read_text()


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


def test_the_medium_budget_trains_two_seeds_per_arm_thinned_and_judges_the_claim(colours, tmp_path):
    out = tmp_path / "lrn"
    result = run_study("lrn", colours, out, budget="medium", overrides=TINY, progress=False)
    assert result["seeds"] == [0, 1]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a-lrn-seed0", "a-lrn-seed1", "a-seed0", "a-seed1"]
    run = json.loads((out / "a-seed1" / "run.json").read_text())
    assert run["seed"] == 1 and run["model_kwargs"]["width"] == 0.25 and run["recipe"]["width"] == 0.25
    for arm in result["arms"]:
        scores = [s["top1"] for s in arm["seeds"]]
        assert [s["seed"] for s in arm["seeds"]] == [0, 1]
        assert arm["top1"] == pytest.approx(sum(scores) / 2)
        assert arm["spread"] == pytest.approx(max(scores) - min(scores))
        assert len(arm["train_loss"]) == 2
    [claim] = result["claims"]
    assert claim["first"] == "A-LRN" and claim["verdict"] in ("agrees", "disagrees", "not resolved")
    report = (out / "report.md").read_text()
    assert "## Findings" in report and "The paper: A-LRN gains nothing over A." in report
    assert "2 seeds (0, 1) per arm" in report and "at 0.25 of Table 1's channels (`width=0.25`)" in report
    assert "| val top-1 (mean) | each seed | spread |" in report


def test_a_medium_study_cut_between_seeds_trains_only_what_is_missing(colours, tmp_path, monkeypatch):
    out = tmp_path / "lrn"
    first = run_study("lrn", colours, out, budget="medium", overrides=TINY, progress=False)
    import shutil

    shutil.rmtree(out / "a-lrn-seed1")  # as if the study stopped before this arm's second seed
    trained = []
    real = run_module.train
    monkeypatch.setattr(run_module, "train", lambda *a, **k: trained.append(a[3].name) or real(*a, **k))
    again = run_study("lrn", colours, out, budget="medium", overrides=TINY, progress=False)
    assert trained == ["a-lrn-seed1"]
    assert [a["seeds"][0]["top1"] for a in again["arms"]] == [a["seeds"][0]["top1"] for a in first["arms"]]


def test_a_donor_trains_its_epochs_factor_and_each_seed_starts_from_its_own_donor(colours, tmp_path, monkeypatch):
    from vggnet.experiments import studies

    arms = tuple(a for a in studies.STUDIES["init"].arms if a.label in ("A (donor)", "D, from A"))
    monkeypatch.setitem(studies.STUDIES, "init", studies.STUDIES["init"].__class__(
        **{**studies.STUDIES["init"].__dict__, "arms": arms, "claims": ()}))
    result = run_study("init", colours, tmp_path / "init", budget="medium", overrides={**TINY, "epochs": "4"},
                       progress=False)
    donor, deep = result["arms"]
    assert donor["settings"] == {"epochs": "5"} and len(donor["train_loss"]) == 5  # 4 x 1.25
    assert len(deep["train_loss"]) == 4
    for s in (0, 1):
        run = json.loads((tmp_path / "init" / f"d-from-a-seed{s}" / "run.json").read_text())
        assert run["recipe"]["init_from"] == str(tmp_path / "init" / f"a-donor-seed{s}")


def test_an_arm_whose_donor_diverged_is_reported_not_trained(colours, tmp_path, monkeypatch):
    from vggnet.experiments import studies

    arms = tuple(a for a in studies.STUDIES["init"].arms if a.label in ("A (donor)", "D, from A"))
    monkeypatch.setitem(studies.STUDIES, "init", studies.STUDIES["init"].__class__(
        **{**studies.STUDIES["init"].__dict__, "arms": arms, "claims": ()}))
    result = run_study("init", colours, tmp_path / "init", overrides={**TINY, "lr": "1e8"}, progress=False)
    deep = result["arms"][1]
    assert deep["top1"] is None and deep["diverged"].startswith("its donor A (donor) diverged")
    assert "not trained: its donor A (donor) diverged" in (tmp_path / "init" / "report.md").read_text()


def test_a_bad_epochs_override_is_one_line_before_anything_trains(colours, tmp_path):
    with pytest.raises(VggnetError, match=r"recipe field epochs \(int\) cannot be '8.0'"):
        run_study("init", colours, tmp_path / "s", overrides={**TINY, "epochs": "8.0"}, progress=False)
    assert not (tmp_path / "s").exists()
