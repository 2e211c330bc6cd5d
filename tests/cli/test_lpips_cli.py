"""`vggnet lpips A B`: two images or two folders matched by name, the number equal to the Python
metric's, bad pairs reported in their row, and bad arguments one line before any work."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from vggnet.cli import cli
from vggnet.models import create_model
from vggnet.perceptual import LPIPS
from vggnet.perceptual.pairs import read_image


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def backbone(vgg16_file):
    return vgg16_file


def photo(path, seed, size=(48, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_two_images_print_the_metrics_number(tmp_path, backbone):
    a, b = photo(tmp_path / "a.png", 0), photo(tmp_path / "b.png", 1)
    result = run("lpips", a, b, "--backbone", backbone)
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        expected = LPIPS(backbone=backbone)(read_image(a), read_image(b)).item()
    assert float(result.stdout.strip()) == pytest.approx(expected, abs=1e-6)
    assert run("lpips", a, a, "--backbone", backbone).stdout.strip() == "0.000000"


def test_read_image_is_lpips_range(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("RGB", (20, 18), (0, 255, 51)).save(path)
    x = read_image(path)
    assert x.shape == (1, 3, 18, 20)
    assert x[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])


def test_folders_matched_by_relative_name(tmp_path, backbone):
    for name, seed in (("x.png", 0), ("sub/y.png", 1), ("only_a.png", 2)):
        photo(tmp_path / "A" / name, seed)
    for name, seed in (("x.png", 3), ("sub/y.png", 4), ("only_b.png", 5)):
        photo(tmp_path / "B" / name, seed)
    photo(tmp_path / "A" / "sub" / "z.png", 6)
    photo(tmp_path / "B" / "sub" / "z.png", 7, size=(48, 30))  # another size: an error in its row
    (tmp_path / "A" / "notes.txt").write_text("not an image")
    out = tmp_path / "pairs.csv"
    result = run("lpips", tmp_path / "A", tmp_path / "B", "--backbone", backbone, "--json", "--csv", out)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {r["name"]: r for r in report["pairs"]}
    assert sorted(rows) == ["sub/y.png", "sub/z.png", "x.png"]
    assert "sizes differ" in rows["sub/z.png"]["error"]
    assert report["mean"] == pytest.approx((rows["x.png"]["lpips"] + rows["sub/y.png"]["lpips"]) / 2)
    assert "only in A" in result.stderr and "only_a.png" in result.stderr and "only_b.png" in result.stderr
    written = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["name"] for r in written] == ["sub/y.png", "sub/z.png", "x.png"]
    assert float(written[2]["lpips"]) == pytest.approx(rows["x.png"]["lpips"], abs=1e-6)


@pytest.mark.parametrize("case", ["file-and-folder", "no-shared-names", "not-an-image", "unknown-backbone",
                                  "bn-backbone", "vgg19-by-name", "csv-is-a-link"])
def test_bad_arguments_are_one_line(tmp_path, backbone, case):
    a = photo(tmp_path / "A" / "x.png", 0)
    photo(tmp_path / "B" / "other.png", 1)
    args = {"file-and-folder": (a, tmp_path / "B"), "no-shared-names": (tmp_path / "A", tmp_path / "B")}
    backbone_arg = backbone
    if case == "not-an-image":
        text = tmp_path / "b.png"
        text.write_text("hello")
        args[case] = (a, text)
    if case == "unknown-backbone":
        args[case], backbone_arg = (a, a), "vgg99"
    if case == "bn-backbone":
        backbone_arg = tmp_path / "bn.pth"
        torch.save(create_model("vgg16_bn", head="linear", num_classes=2).state_dict(), backbone_arg)
        args[case] = (a, a)
    extra = ()
    if case == "vgg19-by-name":  # refused by name: no 550 MB download first
        args[case], backbone_arg = (a, a), "vgg19"
    if case == "csv-is-a-link":  # refused before any pair is scored
        (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
        args[case], extra = (a, a), ("--csv", tmp_path / "link.csv")
    result = run("lpips", *args[case], "--backbone", backbone_arg, *extra)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert {"file-and-folder": "two images or two folders", "no-shared-names": "share no image file names",
            "not-an-image": "not a readable image", "unknown-backbone": "unknown weights",
            "bn-backbone": "calibrated on torchvision's VGG-16", "vgg19-by-name": "vgg19 is vgg19",
            "csv-is-a-link": "symbolic link"}[case] in result.stderr
    if case == "not-an-image":
        assert result.stderr.count("b.png") == 1


def test_special_and_oversized_files_are_refused_before_decoding(tmp_path, monkeypatch):
    import os

    from vggnet.errors import DataError
    from vggnet.perceptual import lpips

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(DataError, match="not a regular file"):
        read_image(tmp_path / "pipe.png")  # never waited on
    big = photo(tmp_path / "big.png", 0, size=(40, 30))
    monkeypatch.setattr(lpips, "MAX_PIXELS", 40 * 30 - 1)
    monkeypatch.setattr("vggnet.perceptual.pairs.MAX_PIXELS", 40 * 30 - 1)
    with pytest.raises(DataError, match="40 x 30 pixels, over the 1,199"):
        read_image(big)
