"""`vggnet weights` and `vggnet predict --weights`: published files, fetched from a local server,
classifying images with the preprocessing of their origin, checked against a hand computation."""

import dataclasses
import hashlib
import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from tests.helpers import FileServer, keras_forward, keras_vgg_layers, write_keras_h5
from vggnet.cli import cli
from vggnet.data.imagenet import imagenet_classes, imagenet_wnids
from vggnet.models import HEADS, create_model
from vggnet.models.vgg import Head
from vggnet.weights import hub


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def photo(tmp_path):
    """A 300x260 RGB photo-like image: smaller side rescaled to 256, then a centre 224 crop."""
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 256, (260, 300, 3), dtype=np.uint8)).save(path, quality=95)
    return path


def test_imagenet_classes_are_shipped_in_index_order():
    classes, wnids = imagenet_classes(), imagenet_wnids()
    assert len(classes) == len(set(classes)) == 1000 and wnids == sorted(wnids)
    assert (classes[0], wnids[0], classes[1], classes[999]) == ("tench", "n01440764", "goldfish", "toilet tissue")


def test_list_download_and_offline(vgg11_file, tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    listed = json.loads(run("weights", "list", "--json").stdout)
    assert len(listed) == 14 and [r["name"] for r in listed if r["cached"]] == ["vgg_fast.cifar10", "vgg11_bn.cifar10"]
    assert "vgg19.keras-notop" in run("weights", "list").stdout
    payload = vgg11_file.read_bytes()
    fake = dataclasses.replace(hub.KNOWN_WEIGHTS["vgg11.torchvision"], checksum=hashlib.sha256(payload).hexdigest()[:8])
    monkeypatch.setitem(hub.KNOWN_WEIGHTS, "vgg11.torchvision", fake)
    server = FileServer(payload)
    try:
        result = run("weights", "download", "vgg11", "--url", server.url, "--quiet")
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "home" / "weights" / "vgg11-8a719046.pth")
    assert {r["name"]: r["cached"] for r in json.loads(run("weights", "list", "--json").stdout)}["vgg11.torchvision"]
    offline = run("weights", "download", "vgg13", "--url", server.url, "--quiet")  # the server is gone
    assert offline.exit_code == 2 and "offline? put vgg13-19584684.pth in" in offline.stderr
    assert len(offline.stderr.strip().splitlines()) == 1
    unknown = run("weights", "download", "vgg17")
    assert unknown.exit_code == 2 and "unknown weights 'vgg17'; known: vgg11.torchvision" in unknown.stderr


def test_predict_with_torchvision_weights_matches_a_hand_computation(vgg11_file, photo, tmp_path, monkeypatch):
    result = run("predict", "--weights", vgg11_file, photo, "--json")
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.stdout)
    assert set(answer) == {"image", "top5"} and answer["image"] == str(photo)
    assert [set(t) for t in answer["top5"]] == [{"index", "label", "probability"}] * 5
    # The same by hand: smaller side to 256 (bilinear), centre 224, RGB, ImageNet mean and std.
    img = Image.open(photo).convert("RGB")
    img = img.resize((round(300 * 256 / 260), 256), Image.BILINEAR)
    left, top = (img.width - 224) // 2, (img.height - 224) // 2
    x = torch.from_numpy(np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255)
    x = (x - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    model = create_model("vgg11")
    model.load_state_dict(torch.load(vgg11_file, weights_only=True))
    with torch.no_grad():
        probs = torch.softmax(model.eval()(x.permute(2, 0, 1)[None]), 1)[0]
    top = probs.topk(5)
    assert [t["index"] for t in answer["top5"]] == top.indices.tolist()
    assert [t["label"] for t in answer["top5"]] == [imagenet_classes()[i] for i in top.indices.tolist()]
    np.testing.assert_allclose([t["probability"] for t in answer["top5"]], top.values.numpy(), rtol=1e-4, atol=1e-6)
    # Converted to a vggnet checkpoint, the file predicts the same through --checkpoint.
    converted = run("weights", "convert", vgg11_file, tmp_path / "vgg11.safetensors")
    assert converted.exit_code == 0, converted.output
    again = run("predict", "--checkpoint", tmp_path / "vgg11.safetensors", photo, "--json")
    assert json.loads(again.stdout) == [answer]


def test_predict_with_keras_weights_feeds_bgr_minus_the_caffe_mean(tmp_path, monkeypatch):
    monkeypatch.setitem(HEADS, "tiny", Head(pool=2, hidden=(16, 16)))  # 64x64 inputs, a small top
    layers = keras_vgg_layers(dense=(16, 16, 5), pool=2, seed=4)
    layers[0][1][0] /= 300  # inputs span 0..255, not 0..1: keep the logits small enough to rank
    h5 = write_keras_h5(tmp_path / "vgg16_tiny.h5", layers)
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    (tmp_path / "x.png").write_bytes(buf.getvalue())
    result = run("predict", "--weights", h5, tmp_path / "x.png", "--json", "--top-k", "3")
    assert result.exit_code == 0, result.output
    bgr = pixels[..., ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    logits = keras_forward(layers, bgr)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    (answer,) = json.loads(result.stdout)
    assert [t["index"] for t in answer["top3"]] == list(np.argsort(-probs)[:3])
    np.testing.assert_allclose([t["probability"] for t in answer["top3"]], np.sort(probs)[::-1][:3], rtol=1e-3)


def test_predict_bad_input_is_one_line(vgg11_file, photo, tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not a zip")
    for args, message in [
        (["predict", photo], "predict needs one of --checkpoint or --weights"),
        (["predict", "--weights", "vgg17", photo], "unknown weights 'vgg17'"),
        (["predict", "--weights", tmp_path / "missing.pth", photo], "no weight file"),
        (["predict", "--weights", tmp_path / "broken.pth", photo], "cannot read weights"),
        (["predict", "--weights", vgg11_file, "--model", "vgg13", photo], "weights do not fit vgg13"),
        (["weights", "convert", vgg11_file, tmp_path / "out.pth"], "name it *.safetensors"),
    ]:
        result = run(*args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.pth").exists()


def test_list_fits_80_columns_and_keeps_every_url_whole(tmp_path, monkeypatch):
    """The table (name, model, source, size, cached) within 80 columns; each URL whole on a
    `name: URL` line of its own, the only lines allowed past 80 columns."""
    import io

    from rich.console import Console

    from vggnet.cli.weights import url_lines, weights_table

    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    rows = hub.list_weights()
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(weights_table(rows))
    for line in url_lines(rows):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    lines = console.file.getvalue().splitlines()
    url_rows = {f"{w.name}: {w.url}" for w in hub.KNOWN_WEIGHTS.values() if not w.packaged}
    assert "vgg_fast.cifar10: (inside the vggnet package)" in lines  # no URL: it ships with vggnet
    whole = url_rows | {str(tmp_path / "home" / "weights")}  # URLs and the cache folder: never cut
    assert url_rows <= set(lines)  # every registered URL, whole, after its name
    assert all(len(line) <= 80 for line in lines if line not in whole)
    assert any(len(line) > 80 for line in url_rows)  # the Keras URLs: not cut to fit
    assert "528 MiB" in lines[3 + list(hub.KNOWN_WEIGHTS).index("vgg16.torchvision")]
    assert lines[-2:] == ["a file downloaded by hand goes in this folder:", str(tmp_path / "home" / "weights")]
    cli_lines = run("weights", "list").stdout.splitlines()  # the command prints the same, unwrapped
    assert url_rows <= set(cli_lines) and all(len(line) <= 80 for line in cli_lines if line not in whole)
