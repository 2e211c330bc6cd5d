import json
import shutil

import pytest

from tests.helpers import colour_folders
from vggnet.errors import DataError, VggnetError
from vggnet.evaluate.predict import predict_images
from vggnet.evaluate.run import evaluate_checkpoint
from vggnet.train.loop import train
from vggnet.train.recipes import get_recipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    mp = pytest.MonkeyPatch()
    mp.setenv("VGGNET_HOME", str(root / "cache"))
    data = root / "colours"  # the ImageNet layout: given train/ and val/ splits
    colour_folders(data / "train", per_class=18)
    colour_folders(data / "val", per_class=6, seed=1)
    recipe = get_recipe("cifar", {"epochs": "3", "batch_size": "16", "lr": "0.01"})
    train("vgg11_bn", data, recipe, root / "run", progress=False)
    yield root, data
    mp.undo()


def test_evaluate_a_whole_folder_writes_metrics_json(trained):
    root, _ = trained
    other = colour_folders(root / "unseen", per_class=5, seed=7)
    m = evaluate_checkpoint(root / "run", other, root / "ev", progress=False)
    on_disk = json.loads((root / "ev" / "metrics.json").read_text())
    assert on_disk["images"] == 15 == sum(map(sum, on_disk["confusion_matrix"]))  # all of it, no split
    assert on_disk["top1"] == m["top1"] >= 0.8
    assert (root / "ev" / "confusion.png").stat().st_size > 0 and (root / "ev" / "report.md").exists()


def test_evaluate_val_split_matches_the_training_report(trained):
    root, data = trained
    m = evaluate_checkpoint(root / "run", data, root / "ev2", split="val", progress=False)
    trained_metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert m["images"] == trained_metrics["images"] == 18
    assert m["confusion_matrix"] == trained_metrics["confusion_matrix"]


def test_evaluate_refuses_other_classes_and_missing_splits(trained, tmp_path):
    root, data = trained
    with pytest.raises(DataError, match=r"has no 'test' split; it has train, val"):
        evaluate_checkpoint(root / "run", data, tmp_path / "ev", split="test", progress=False)
    (tmp_path / "y" / "cats").mkdir(parents=True)
    shutil.copy(data / "val" / "red" / "0.png", tmp_path / "y" / "cats" / "0.png")  # leave the data whole
    with pytest.raises(DataError, match=r"class folders are not the checkpoint's 3 classes; missing: blue, green, red; "
                                        r"not known to it: cats: one folder per class, named exactly as its classes "
                                        r"\(blue, green, red\)$"):
        evaluate_checkpoint(root / "run", tmp_path / "y", tmp_path / "ev", progress=False)


def test_predict_ranks_labels_with_probabilities(trained, tmp_path):
    root, data = trained
    results = predict_images(root / "run", [data / "val" / "green" / "1.png", data / "val" / "blue" / "2.png"], top_k=3)
    assert [r["top3"][0]["label"] for r in results] == ["green", "blue"]
    for r in results:
        probs = [t["probability"] for t in r["top3"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-5)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff junk")
    with pytest.raises(DataError, match=r"bad\.jpg: not a readable image"):
        predict_images(root / "run", [tmp_path / "bad.jpg"])


def test_cifar_archive_trains_and_evaluates_on_the_official_test_batch(tmp_path):
    from tests.helpers import make_cifar_archive

    archive = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz", n_per_batch=20, n_test=30)
    recipe = get_recipe("cifar", {"epochs": "1", "batch_size": "32"})
    train("vgg11_bn", archive, recipe, tmp_path / "run", progress=False)
    val = evaluate_checkpoint(tmp_path / "run", archive, tmp_path / "val", split="val", progress=False)
    test = evaluate_checkpoint(tmp_path / "run", archive, tmp_path / "test", split="test", progress=False)
    assert (val["images"], test["images"]) == (10, 30)  # the seeded 10% of 100, and test_batch
    assert val["classes"] == test["classes"] == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                  "horse", "ship", "truck"]


def test_ensemble_of_one_checkpoint_twice_equals_the_single_model(trained):
    root, data = trained
    single = evaluate_checkpoint(root / "run", data, root / "e1", progress=False)
    twice = evaluate_checkpoint([root / "run", root / "run"], data, root / "e2", progress=False)
    assert twice["confusion_matrix"] == single["confusion_matrix"] and twice["top1"] == single["top1"]
    assert twice["loss"] == pytest.approx(single["loss"], rel=1e-4)
    dense = evaluate_checkpoint(root / "run", data, root / "e3", protocol="dense", scales=[32, 40], progress=False)
    assert (dense["protocol"], dense["scales"], dense["images"]) == ("dense", [32, 40], 18)


def test_protocols_on_streamed_images_of_different_sizes(tmp_path):
    import torch
    from PIL import Image

    from tests.helpers import image_bytes
    from vggnet.data.folders import scan_folder
    from vggnet.evaluate.protocol_run import protocol_predictions
    from vggnet.models import create_model

    root = tmp_path / "f"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("RGB", (120, 80), (200, 0, 0)).save(root / "a" / "wide.jpg")
    (root / "b" / "square.jpg").write_bytes(image_bytes((0, 0, 200), size=90))
    (root / "b" / "bad.jpg").write_bytes(b"\xff\xd8 nope")
    model = create_model("vgg11", num_classes=2, head="small", dropout=0.0)
    meta = {"image_size": 64, "mean": [0.5] * 3, "std": [0.25] * 3}
    for protocol in ("center", "dense", "multi-crop", "dense+multi-crop"):
        pred = protocol_predictions([(model, meta)], scan_folder(root).splits["all"], protocol, [64, 72],
                                    device=torch.device("cpu"), progress=False)
        assert (len(pred), pred.skipped) == (2, 1) and pred.topk.shape == (2, 2)


def test_evaluate_never_writes_into_a_training_run_or_the_users_folder(trained, tmp_path):
    root, data = trained
    before = {p.name: p.read_bytes() for p in (root / "run").iterdir() if p.is_file()}
    with pytest.raises(VggnetError, match="holds a training run, not an evaluation: choose another --out"):
        evaluate_checkpoint(root / "run", data, root / "run", progress=False)
    assert {p.name: p.read_bytes() for p in (root / "run").iterdir() if p.is_file()} == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "report.md").write_text("my report")
    with pytest.raises(VggnetError, match="is not empty and holds no vggnet evaluate output"):
        evaluate_checkpoint(root / "run", data, tmp_path / "notes", progress=False)
    assert (tmp_path / "notes" / "report.md").read_text() == "my report"
    with pytest.raises(VggnetError, match="unknown split"):
        evaluate_checkpoint(root / "run", data, tmp_path / "new", split="bogus", progress=False)
    assert not (tmp_path / "new").exists()
    evaluate_checkpoint(root / "run", data, tmp_path / "ev", progress=False)
    evaluate_checkpoint(root / "run", data, tmp_path / "ev", protocol="multi-crop", progress=False)  # its own
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["protocol"] == "multi-crop"
