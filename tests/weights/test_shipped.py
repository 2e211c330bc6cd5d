"""The weights vggnet trained and ships: found inside the package, checked before use, loaded and
used offline by create_model, predict and evaluate, and never scored on their own training images
as if those were a test."""

import dataclasses
import json
import shutil
import tarfile

import pytest
import torch
from click.testing import CliRunner

from vggnet.cli import cli
from vggnet.data.datasets import sample_archive
from vggnet.errors import DownloadError, VggnetError
from vggnet.models import create_model
from vggnet.weights import hub
from vggnet.weights.load import model_for_inference

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network and an empty cache: everything here must come from the package."""
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(hub, "download", lambda *a, **k: pytest.fail("a packaged file was downloaded"))


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory):
    """20 images per class from the embedded sample, in class folders (images the weights trained on)."""
    root = tmp_path_factory.mktemp("seen")
    counts: dict[str, int] = {}
    with tarfile.open(sample_archive()) as tar:
        for member in tar:
            cls = member.name.split("/")[-2] if member.isfile() else None
            if cls is None or counts.get(cls, 0) >= 20:
                continue
            counts[cls] = counts.get(cls, 0) + 1
            (root / cls).mkdir(exist_ok=True)
            (root / cls / member.name.split("/")[-1]).write_bytes(tar.extractfile(member).read())
    assert sorted(counts) == CIFAR10
    return root


def test_the_shipped_file_is_listed_with_its_card_and_checked_before_use():
    row = next(r for r in hub.list_weights() if r["name"] == "vgg_fast.cifar10")
    assert row["cached"] and row["url"] == "(inside the vggnet package)" and row["source"] == "vggnet"
    card = hub.KNOWN_WEIGHTS["vgg_fast.cifar10"].card
    assert card.is_file() and "cifar-fast" in card.read_text() and "sha256" in card.read_text()
    path = hub.fetch_weights("vgg_fast.cifar10")
    assert path.parent == hub.SHIPPED and path.stat().st_size == hub.KNOWN_WEIGHTS["vgg_fast.cifar10"].size
    with pytest.raises(VggnetError, match="ships inside vggnet; it has no download"):
        hub.fetch_weights("vgg_fast.cifar10", url="http://127.0.0.1:9/x")


def test_a_damaged_or_missing_packaged_file_is_one_line(tmp_path, monkeypatch):
    w = hub.KNOWN_WEIGHTS["vgg_fast.cifar10"]
    monkeypatch.setattr(hub, "SHIPPED", tmp_path)
    with pytest.raises(DownloadError, match="is missing from this install of vggnet; reinstall vggnet"):
        hub.fetch_weights(w.name)
    data = bytearray((hub.Path(hub.__file__).parent / "shipped" / w.filename).read_bytes())
    data[-1] ^= 1  # one bit of one weight
    (tmp_path / w.filename).write_bytes(bytes(data))
    with pytest.raises(DownloadError, match=r"is damaged \(its size or sha256 differs"):
        hub.fetch_weights(w.name)
    monkeypatch.setitem(hub.KNOWN_WEIGHTS, w.name, dataclasses.replace(w, size=w.size + 1))
    with pytest.raises(DownloadError, match="is damaged"):
        hub.fetch_weights(w.name)


def test_create_model_pretrained_loads_the_shipped_weights_in_fp32():
    model = create_model("vgg_fast", pretrained=True).eval()
    same, meta = model_for_inference("vgg_fast.cifar10")
    assert meta["classes"] == CIFAR10 and meta["name"] == "vgg_fast.cifar10" and meta["storage"] == "bf16"
    for (k, a), b in zip(model.state_dict().items(), same.state_dict().values(), strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), k
    assert model.classifier.weight.dtype == torch.float32


def test_predict_and_evaluate_use_them_offline_and_score_the_images_they_trained_on(sample_folder, tmp_path):
    images = sorted(sample_folder.glob("*/*.jpg"))[::20]  # one per class
    result = run("predict", "--weights", "vgg_fast.cifar10", *images, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sum(r["top5"][0]["label"] == img.parent.name for img, r in zip(images, rows, strict=True)) >= 9
    out = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", sample_folder, "--out", tmp_path / "e")
    assert out.exit_code == 0, out.output
    assert "trained on all 50,000 CIFAR-10 training images" in out.stderr
    assert "a training score, not a test" in out.stderr
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["images"] == 200 and metrics["top1"] >= 0.9  # its own training images: a check of the loading


def test_the_embedded_sample_is_refused_as_a_test_of_the_weights_that_trained_on_it(tmp_path):
    out = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", "sample", "--out", tmp_path / "e")
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "vgg_fast.cifar10 trained on every image of the sample" in out.stderr and "--split all" in out.stderr
    assert not (tmp_path / "e").exists()
    copy = tmp_path / "mine.tar.gz"
    shutil.copy(sample_archive(), copy)  # the same archive under another name: the same images
    again = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", copy, "--out", tmp_path / "e")
    assert again.exit_code == 2 and "trained on every image of the sample" in again.stderr


def test_cifar10_val_is_refused_for_weights_that_trained_on_its_training_split(tmp_path):
    out = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", "cifar10", "--split", "val", "--out",
              tmp_path / "e")
    assert out.exit_code == 2 and "score it with --split test (the default)" in out.stderr  # before any download
    assert not (tmp_path / "e").exists()


def test_fine_tuning_them_on_the_sample_is_refused_before_any_data_is_read(tmp_path):
    out = run("train", "--model", "vgg_fast", "--data", "sample", "--set", "weights=vgg_fast.cifar10",
              "--out", tmp_path / "r")
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "a val split of it would score images the weights already saw" in out.stderr
