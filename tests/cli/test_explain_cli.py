"""`vggnet explain` and `vggnet show`: the files they promise, readable PNGs, classes by name or
index, and one-line errors for a layer, class or model they cannot use."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from tests.helpers import image_bytes
from vggnet.cli import cli
from vggnet.explain.render import METHODS
from vggnet.models import create_model
from vggnet.runs.checkpoint import save_weights

META = {"model": "vgg11_bn", "model_kwargs": {"num_classes": 3, "head": "linear", "width": 0.25},
        "classes": ["cat", "dog", "ship"], "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "image_size": 32}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("explain") / "tiny.safetensors"
    save_weights(path, create_model("vgg11_bn", num_classes=3, head="linear", width=0.25).eval(), META)
    return path


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "a.png").write_bytes(image_bytes((200, 30, 30), size=40, fmt="PNG"))
    (tmp_path / "in" / "sub" / "a.png").write_bytes(image_bytes((30, 30, 200), size=36, fmt="PNG"))
    return tmp_path / "in"


def is_png(path):
    with Image.open(path) as img:
        return img.format == "PNG" and min(img.size) > 100


def test_explain_writes_every_picture_and_a_report(tmp_path, checkpoint, photos):
    out = tmp_path / "out"
    result = run("explain", photos, "--checkpoint", checkpoint, "--top", "2", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "explain.json").read_text())
    assert report["layer"] == "relu5_2"  # the ReLU after vgg11's last convolution
    assert [i["folder"] for i in report["images"]] == [str(out / "a"), str(out / "a~2")]  # two a.png, two folders
    assert f"{photos / 'sub' / 'a.png'} -> {out / 'a~2'}/summary.png" in result.stdout
    for item in report["images"]:
        assert len(item["classes"]) == 2
        assert sum(c["probability"] for c in item["classes"]) <= 1
        assert len(item["files"]) == 1 + 2 * len(METHODS)
        assert all(is_png(f) for f in item["files"])
    first = report["images"][0]["classes"][0]
    assert f"rank1-class{first['index']}-gradcam.png" in {p.name for p in (out / "a").iterdir()}


def test_classes_by_name_and_index(tmp_path, checkpoint, photos):
    out = tmp_path / "out"
    result = run("explain", photos / "a.png", "--checkpoint", checkpoint, "--class", "ship", "--class", "0",
                 "--layer", "relu3_2", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "explain.json").read_text())
    assert [c["label"] for c in report["images"][0]["classes"]] == ["ship", "cat"]
    assert report["layer"] == "relu3_2"


@pytest.mark.parametrize("args, message", [
    (("--class", "horse"), "neither a class name nor an index below 3"),
    (("--class", "²"), "neither a class name nor an index below 3"),  # a digit to isdigit(), not to int()
    (("--layer", ""), "unknown layer ''"),
    (("--layer", "35"), "unknown layer '35'"),
    (("--layer", "fc6"), "not a spatial layer"),
])
def test_bad_choices_are_one_line(tmp_path, checkpoint, photos, args, message):
    result = run("explain", photos / "a.png", "--checkpoint", checkpoint, *args, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_needs_one_source(tmp_path, photos):
    result = run("explain", photos / "a.png", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "one of --checkpoint or --weights" in result.stderr


def test_show_filters_activations_and_field(tmp_path, checkpoint, photos):
    out = tmp_path / "show"
    image = photos / "a.png"
    for args, name in ((("filters",), "filters-conv1_1.png"),
                       (("filters", "--layer", "conv2_1"), "filters-conv2_1.png"),
                       (("activations", image, "--layer", "relu2_1", "--count", "6"), "activations-relu2_1.png"),
                       (("field", image, "--layer", "conv3_2", "--unit", "1,2"), "field-conv3_2-1-2.png"),
                       (("field", image), "field-relu5_2-1-1.png")):
        result = run("show", *args, "--checkpoint", checkpoint, "--out", out)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(out / name)
        assert is_png(out / name)
    bad = run("show", "field", image, "--checkpoint", checkpoint, "--unit", "9,9", "--out", out)
    assert bad.exit_code == 2 and "outside relu5_2's 2 x 2 map" in bad.stderr
    bad = run("show", "filters", "--checkpoint", checkpoint, "--layer", "relu1_1", "--out", out)
    assert bad.exit_code == 2 and "not a convolution" in bad.stderr
    bad = run("show", "field", image, "--checkpoint", checkpoint, "--unit", "one", "--out", out)
    assert bad.exit_code == 2 and "ROW,COL" in bad.stderr


def test_shipped_weights_explain_offline(tmp_path, photos):
    out = tmp_path / "out"
    result = run("explain", photos / "a.png", "--weights", "vgg_fast.cifar10", "--top", "1", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "explain.json").read_text())
    assert report["layer"] == "block3"
    assert report["images"][0]["classes"][0]["label"] in {"airplane", "automobile", "bird", "cat", "deer", "dog",
                                                          "frog", "horse", "ship", "truck"}


def test_folders_never_collide_or_leave_out(tmp_path, checkpoint):
    from vggnet.explain.run import image_folders

    out = tmp_path / "out"
    folders = image_folders(["s1/a.png", "s2/a.png", "s1/a~2.png", "x/...png", "y/..png"], out)
    assert folders == [out / "a", out / "a~3", out / "a~2", out / "image", out / "image~2"]
    assert all(f.parent == out for f in folders)


def test_an_unreadable_image_is_reported_and_skipped(tmp_path, checkpoint, photos):
    (photos / "broken.png").write_bytes(image_bytes((9, 9, 9), fmt="PNG")[:40])
    out = tmp_path / "out"
    result = run("explain", photos / "a.png", photos / "broken.png", photos / "sub" / "a.png", "--checkpoint",
                 checkpoint, "--top", "1", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "explain.json").read_text())
    assert ["error" in item for item in report["images"]] == [False, True, False]
    assert "broken.png" in result.stderr and "not a readable image" in result.stderr
    alone = run("explain", photos / "broken.png", "--checkpoint", checkpoint, "--out", tmp_path / "o2")
    assert alone.exit_code == 2 and alone.stderr.count("broken.png") == 1


def test_outputs_that_are_not_ours_are_refused_before_work(tmp_path, checkpoint, photos):
    afile = tmp_path / "taken.png"
    afile.write_bytes(b"the user's")
    result = run("explain", photos / "a.png", "--checkpoint", checkpoint, "--out", afile)
    assert result.exit_code == 2 and "is a file" in result.stderr  # click's check of --out
    assert afile.read_bytes() == b"the user's"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").symlink_to(elsewhere)  # a folder named like the image's, pointing out of --out
    result = run("explain", photos / "a.png", "--checkpoint", checkpoint, "--top", "1", "--out", out)
    assert result.exit_code == 2 and "symbolic link" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_output_folder_inside_an_input_folder_is_not_explained(tmp_path, checkpoint, photos):
    out = photos / "explained"
    for _ in range(2):
        result = run("explain", photos, "--checkpoint", checkpoint, "--top", "1", "--out", out)
        assert result.exit_code == 0, result.output
    assert len(json.loads((out / "explain.json").read_text())["images"]) == 2


def test_show_field_on_a_network_without_paper_names(tmp_path, photos):
    result = run("show", "field", photos / "a.png", "--weights", "vgg_fast.cifar10", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert is_png(result.stdout.strip())
    result = run("show", "filters", "--weights", "vgg_fast.cifar10", "--out", tmp_path)
    assert result.exit_code == 0 and result.stdout.strip().endswith("filters-features.0.png")
