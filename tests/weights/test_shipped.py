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


SHIPPED = [("vgg_fast.cifar10", "The `cifar-fast` recipe"), ("vgg11_bn.cifar10", "vggnet's `cifar` recipe")]


def test_every_shipped_file_is_tested_here():
    assert sorted(w.name for w in hub.SHIPPED_WEIGHTS) == sorted(name for name, _ in SHIPPED)


@pytest.mark.parametrize(("name", "recipe"), SHIPPED)
def test_the_shipped_file_is_listed_with_its_card_and_checked_before_use(name, recipe):
    row = next(r for r in hub.list_weights() if r["name"] == name)
    assert row["cached"] and row["url"] == "(inside the vggnet package)" and row["source"] == "vggnet"
    card = hub.KNOWN_WEIGHTS[name].card.read_text()
    assert recipe in card and hub.KNOWN_WEIGHTS[name].checksum in card and "Held-out accuracy" in card
    path = hub.fetch_weights(name)
    assert path.parent == hub.SHIPPED and path.stat().st_size == hub.KNOWN_WEIGHTS[name].size
    with pytest.raises(VggnetError, match="ships inside vggnet; it has no download"):
        hub.fetch_weights(name, url="http://127.0.0.1:9/x")


@pytest.mark.parametrize("name", [name for name, _ in SHIPPED])
def test_a_damaged_or_missing_packaged_file_is_one_line(name, tmp_path, monkeypatch):
    w = hub.KNOWN_WEIGHTS[name]
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
    assert "among them every image of the sample" in out.stderr and "--split test" in out.stderr
    assert not (tmp_path / "e").exists()
    copy = tmp_path / "mine.tar.gz"
    shutil.copy(sample_archive(), copy)  # the same archive under another name: the same images
    again = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", copy, "--out", tmp_path / "e")
    assert again.exit_code == 2 and "among them every image of the sample" in again.stderr
    for split in ("all", "val"):  # no split of it is a test of these weights; no escape that then fails
        other = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", "sample", "--split", split, "--out",
                    tmp_path / "e")
        assert other.exit_code == 2 and "among them every image of the sample" in other.stderr


def test_cifar10_val_is_refused_for_weights_that_trained_on_its_training_split(tmp_path):
    out = run("evaluate", "--weights", "vgg_fast.cifar10", "--data", "cifar10", "--split", "val", "--out",
              tmp_path / "e")
    assert out.exit_code == 2 and "score it with --split test (the default)" in out.stderr  # before any download
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(("model", "weights", "extra"), [
    ("vgg_fast", "vgg_fast.cifar10", ()),
    ("vgg11_bn", "vgg11_bn.cifar10", ("--set", "val_fraction=0")),  # the sample brings its own val/ regardless
])
def test_fine_tuning_them_on_the_sample_is_refused_before_any_data_is_read(model, weights, extra, tmp_path):
    out = run("train", "--model", model, "--data", "sample", "--set", f"weights={weights}", *extra,
              "--out", tmp_path / "r")
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "the sample's val split would score images the weights already saw" in out.stderr
    assert not (tmp_path / "r").exists()


def test_vgg11_bn_cifar10_is_a_standard_vgg11_bn_with_a_linear_head_beside_torchvisions(sample_folder, tmp_path):
    model, meta = model_for_inference("vgg11_bn.cifar10")
    same = create_model("vgg11_bn", weights="vgg11_bn.cifar10").eval()
    assert meta["classes"] == CIFAR10 and meta["storage"] == "bf16" and meta["model_kwargs"]["head"] == "linear"
    # Table 1's A: 9,220,480 in its convolutions (torchvision's vgg11 features), 2 x 2,752 in BatchNorm, 512 x 10 + 10
    assert sum(p.numel() for p in model.parameters()) == 9_220_480 + 5_504 + 5_130
    assert [k for k in model.state_dict() if k.startswith("features.")][:2] == ["features.0.weight", "features.0.bias"]
    for (k, a), b in zip(model.state_dict().items(), same.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    features = create_model("vgg11_bn", weights="vgg11_bn.cifar10", features_only=True)
    assert torch.equal(dict(features.named_parameters())["features.0.weight"], model.features[0].weight)
    from vggnet.models.pretrained import default_weights

    assert default_weights("vgg11_bn") == "vgg11_bn.torchvision"  # pretrained=True keeps ImageNet's weights

    out = run("evaluate", "--weights", "vgg11_bn.cifar10", "--data", sample_folder, "--out", tmp_path / "e")
    assert out.exit_code == 0, out.output
    assert "trained on 45,000 of the 50,000 CIFAR-10 training images" in out.stderr
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["images"] == 200 and metrics["top1"] >= 0.85  # most of them training images: loading works

    refused = run("evaluate", "--weights", "vgg11_bn.cifar10", "--data", "sample", "--out", tmp_path / "s")
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
    # counted by content (tools/ship_weights.py): 552 of the sample's images are among the run's 5,000 held out
    assert "among them 4,448 of the sample's 5,000 images" in refused.stderr
    assert "4,448 of the embedded sample's 5,000 images" in hub.KNOWN_WEIGHTS["vgg11_bn.cifar10"].card.read_text()
    assert len(meta["held_out_record"]["held_out"]) == 5_000 and meta["held_out_record"]["data"] is None


def test_a_malformed_held_out_record_in_a_weights_file_is_one_line(sample_folder, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from vggnet.runs.checkpoint import META_KEY

    source = hub.fetch_weights("vgg_fast.cifar10")
    with safe_open(str(source), "pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    meta["held_out_record"] = {"held_out": "airplane/0001.jpg", "held_out_bytes": 1}
    save_file(tensors, str(tmp_path / "odd.safetensors"), metadata={META_KEY: json.dumps(meta)})
    out = run("evaluate", "--weights", tmp_path / "odd.safetensors", "--data", sample_folder, "--out", tmp_path / "e")
    assert out.exit_code == 2 and "held_out_record is not a list of image names" in out.stderr
    assert not (tmp_path / "e").exists()
