"""The split is part of the run: resume keeps it, evaluate scores exactly the held-out images, and
a dataset that cannot train a classifier stops before any work."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.helpers import colour_folders
from vggnet.errors import DataError, VggnetError
from vggnet.evaluate.run import evaluate_checkpoint
from vggnet.train.loop import train
from vggnet.train.recipes import get_recipe

RECIPE = {"epochs": "1", "batch_size": "16", "lr": "0.01", "val_fraction": "0.25", "workers": "0"}


@pytest.fixture
def flat_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    data = colour_folders(tmp_path / "colours", per_class=12)  # flat: vggnet makes the val split
    train("vgg11_bn", data, get_recipe("cifar", RECIPE), tmp_path / "run", progress=False, device="cpu")
    return tmp_path, data


def held_out(run) -> list[str]:
    return json.loads((run / "split.json").read_text())["held_out"]


def test_run_records_its_held_out_images(flat_run):
    root, _ = flat_run
    held = held_out(root / "run")
    assert len(held) == 9 and {h.split("/")[0] for h in held} == {"red", "green", "blue"}
    summary = json.loads((root / "run" / "run.json").read_text())["data_summary"]
    assert summary["images"] == {"train": 27, "val": 9} and summary["per_class"]["train"] == [9, 9, 9]


def test_evaluate_on_the_training_folder_scores_only_held_out_images(flat_run):
    root, data = flat_run
    m = evaluate_checkpoint(root / "run", data, root / "ev", progress=False)
    assert (m["split"], m["images"]) == ("val", 9) and m["images_are"] == "the 9 images the run held out"
    trained = json.loads((root / "run" / "metrics.json").read_text())
    assert m["confusion_matrix"] == trained["confusion_matrix"]
    everything = evaluate_checkpoint(root / "run", data, root / "ev-all", split="all", progress=False)
    assert everything["images"] == 36 and "training images included" in everything["images_are"]
    copy = root / "copy"  # the same images under another path: still only the held-out ones
    shutil.copytree(data, copy)
    assert evaluate_checkpoint(root / "run", copy, root / "ev-copy", progress=False)["images"] == 9
    other = colour_folders(root / "other", per_class=12, seed=5)  # the same file names, other images
    m = evaluate_checkpoint(root / "run", other, root / "ev-other", progress=False)
    assert (m["split"], m["images"], m["images_are"]) == ("all", 36, f"every image of {other}")
    with pytest.raises(VggnetError, match="did not train on it: --split all"):
        evaluate_checkpoint(root / "run", other, root / "ev-x", split="val", progress=False)


def test_resume_after_images_were_added_and_removed_keeps_the_held_out_images(flat_run, caplog):
    root, data = flat_run
    held = held_out(root / "run")
    (data / held[0]).unlink()  # one held-out image gone
    trained_on = next(p for p in (data / "red").iterdir() if f"red/{p.name}" not in held)
    shutil.copy(trained_on, data / "red" / "new.png")  # one new image
    with caplog.at_level("WARNING", logger="vggnet"):
        train(None, None, None, root / "run", resume=True, epochs=2, progress=False, device="cpu")
    assert "1 training image added, 1 held-out image gone" in caplog.text
    assert held_out(root / "run") == held  # the record stands
    run = json.loads((root / "run" / "run.json").read_text())
    assert (run["train_images"], run["val_images"]) == (28, 8)
    m = evaluate_checkpoint(root / "run", data, root / "ev", progress=False)
    assert m["images"] == 8  # no training image moved into validation


def test_one_class_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    data = colour_folders(tmp_path / "c", per_class=6)
    shutil.rmtree(data / "green")
    shutil.rmtree(data / "blue")
    with pytest.raises(DataError, match=r"has one class \(red\): a classifier needs at least two") as err:
        train("vgg11_bn", data, get_recipe("cifar", RECIPE), tmp_path / "run", progress=False, device="cpu")
    assert "\n" not in str(err.value) and not (tmp_path / "run").exists()


def test_a_constant_channel_does_not_divide_by_zero(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    import io

    import torch
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for c, name in enumerate(["red", "green"]):
        (tmp_path / "c" / name).mkdir(parents=True)
        for i in range(12):
            img = torch.randint(0, 100, (32, 32, 3), generator=g, dtype=torch.uint8)
            img[..., c] += 150
            img[..., 2] = 0  # blue is 0 everywhere
            buf = io.BytesIO()
            Image.fromarray(img.numpy()).save(buf, format="PNG")
            (tmp_path / "c" / name / f"{i}.png").write_bytes(buf.getvalue())
    recipe = get_recipe("cifar", {**RECIPE, "normalize_std": "true"})
    with caplog.at_level("WARNING", logger="vggnet"):
        result = train("vgg11_bn", tmp_path / "c", recipe, tmp_path / "run", progress=False, device="cpu")
    assert "channel B is constant" in caplog.text
    assert result.history[0]["train_loss"] == result.history[0]["train_loss"]  # not NaN
    assert json.loads((tmp_path / "run" / "run.json").read_text())["recipe"]["normalize_std"] is True


def test_resume_refuses_changed_classes_and_warns_without_a_split_record(flat_run, caplog):
    root, data = flat_run
    (root / "run" / "split.json").unlink()
    with caplog.at_level("WARNING", logger="vggnet"):
        train(None, None, None, root / "run", resume=True, epochs=2, progress=False, device="cpu")
    assert "the run has no split.json" in caplog.text
    os.rename(data / "red", data / "zebra")
    with pytest.raises(DataError, match=r"classes of .* changed since the run started \(gone: red; new: zebra\)"):
        train(None, None, None, root / "run", resume=True, epochs=3, progress=False, device="cpu")


def test_a_wrapped_archive_of_the_training_folder_is_still_the_runs_data(flat_run):
    import tarfile

    root, data = flat_run
    with tarfile.open(root / "colours.tar", "w") as tar:
        tar.add(data, arcname="colours")  # held-out names now sit under a wrapping folder
    m = evaluate_checkpoint(root / "run", root / "colours.tar", root / "ev-tar", progress=False)
    assert (m["split"], m["images"]) == ("val", 9)


def test_subsets_of_a_split_do_not_look_like_changed_data_on_resume(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    data = colour_folders(tmp_path / "colours", per_class=12)
    recipe = get_recipe("cifar", {**RECIPE, "train_images": "12", "val_images": "6"})
    train("vgg11_bn", data, recipe, tmp_path / "run", progress=False, device="cpu")
    with caplog.at_level("WARNING", logger="vggnet"):
        train(None, None, None, tmp_path / "run", resume=True, epochs=2, progress=False, device="cpu")
    assert "changed since the run started" not in caplog.text


def test_data_that_moved_resumes_with_data_and_keeps_the_split(flat_run):
    root, data = flat_run
    held = held_out(root / "run")
    moved = root / "moved"
    os.rename(data, moved)
    with pytest.raises(DataError, match="unknown dataset"):
        train(None, None, None, root / "run", resume=True, epochs=2, progress=False, device="cpu")
    train(None, moved, None, root / "run", resume=True, epochs=2, progress=False, device="cpu")
    assert held_out(root / "run") == held
    assert evaluate_checkpoint(root / "run", moved, root / "ev", progress=False)["images"] == 9


def test_a_class_without_validation_images_is_said(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    data = colour_folders(tmp_path / "colours", per_class=6)
    for extra in range(3):  # red has 9 images, the others 6: 10% of 24 gives 2 held out for 3 classes
        shutil.copy(data / "red" / "0.png", data / "red" / f"extra{extra}.png")
    with caplog.at_level("WARNING", logger="vggnet"):
        train("vgg11_bn", data, get_recipe("cifar", {**RECIPE, "val_fraction": "0.1"}), tmp_path / "run",
              progress=False, device="cpu")
    assert "1 of 3 classes have no validation image" in caplog.text


def test_held_out_images_all_gone_is_one_line_not_an_empty_score(flat_run):
    root, data = flat_run
    for key in held_out(root / "run"):
        (data / key).unlink()
    with pytest.raises(DataError, match=r"no images to score in .*the 0 images the run held out") as err:
        evaluate_checkpoint(root / "run", data, root / "ev", progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no validation images left"):
        train(None, None, None, root / "run", resume=True, epochs=2, progress=False, device="cpu")


def test_an_ensemble_is_scored_on_the_images_every_member_held_out(flat_run):
    root, data = flat_run
    train("vgg11_bn", data, get_recipe("cifar", RECIPE), root / "other", seed=5, progress=False, device="cpu")
    both = set(held_out(root / "run")) & set(held_out(root / "other"))
    m = evaluate_checkpoint([root / "run", root / "other"], data, root / "ev", progress=False)
    assert m["images"] == len(both) < 9 and m["images_are"] == f"the {len(both)} images every member held out"


def test_a_prepared_copy_of_the_training_folder_scores_the_held_out_images_both_ways(flat_run):
    """Shards re-encode the images (other sizes), but prepare keeps their names and records where
    they came from: evaluating the run on its data's prepared folder, or a run trained on shards on
    their source folder, still scores exactly the held-out images."""
    from vggnet.data.prepare import Options, prepare

    root, data = flat_run
    prepare(data, root / "shards", Options(short_side=32), workers=1, progress=False)
    m = evaluate_checkpoint(root / "run", root / "shards", root / "ev-shards", progress=False)
    assert (m["split"], m["images"], m["images_are"]) == ("val", 9, "the 9 images the run held out")
    other = colour_folders(root / "other", per_class=12, seed=5)  # same names, not the source: all of it
    prepare(other, root / "other-shards", Options(short_side=32), workers=1, progress=False)
    m = evaluate_checkpoint(root / "run", root / "other-shards", root / "ev-other", progress=False)
    assert (m["split"], m["images"]) == ("all", 36)
    train("vgg11_bn", root / "shards", get_recipe("cifar", RECIPE), root / "run-shards", progress=False,
          device="cpu")
    held = held_out(root / "run-shards")
    m = evaluate_checkpoint(root / "run-shards", data, root / "ev-back", progress=False)
    assert len(held) == 9 and (m["split"], m["images"]) == ("val", 9)


def test_a_lone_train_folder_is_scored_like_a_flat_one(flat_run):
    """train/<class>/ with no val/: the val split is vggnet's own, so another run's checkpoint
    scores every image (labelled all), never a seeded tenth called the dataset's own val."""
    root, data = flat_run
    wrapped = root / "wrapped"
    shutil.copytree(data, wrapped / "train")
    m = evaluate_checkpoint(root / "run", wrapped, root / "ev-wrapped", progress=False)
    assert (m["split"], m["images"]) == ("val", 9) and m["images_are"] == "the 9 images the run held out"
    other = root / "other"
    shutil.copytree(colour_folders(root / "o", per_class=12, seed=5), other / "train")
    m = evaluate_checkpoint(root / "run", other, root / "ev-other", progress=False)
    assert (m["split"], m["images"], m["images_are"]) == ("all", 36, f"every image of {other}")
    assert evaluate_checkpoint(root / "run", other, root / "ev-all", split="all", progress=False)["images"] == 36
