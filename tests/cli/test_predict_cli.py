"""`vggnet predict` on folders: every image below them scored, bad ones reported and skipped,
results as CSV, batches and devices giving the same probabilities."""

import csv
import io
import json

import pytest
import torch
from click.testing import CliRunner

from tests.helpers import image_bytes
from vggnet.cli import cli
from vggnet.evaluate.predict import folder_images, predict_images
from vggnet.models import create_model
from vggnet.runs.checkpoint import save_weights

META = {"model": "vgg11_bn", "model_kwargs": {"num_classes": 3, "head": "linear"}, "classes": ["a", "b", "c"],
        "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "image_size": 32}
CORRUPT = image_bytes((9, 9, 9), fmt="PNG")[:40]  # a PNG signature, then cut short


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_weights(path, create_model("vgg11_bn", num_classes=3, head="linear").eval(), META)
    return path


@pytest.fixture
def photos(tmp_path):
    """Five good PNGs in nested folders, a hidden PNG, a text file and one corrupt PNG."""
    root = tmp_path / "photos"
    for i, name in enumerate(["a.png", "sub/b.png", "sub/deeper/c.png", "sub/d.png", "z.png"]):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(image_bytes((40 * i, 200 - 30 * i, 90), size=40 + 3 * i, fmt="PNG"))
    (root / ".hidden.png").write_bytes(image_bytes((1, 2, 3), fmt="PNG"))
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "broken.png").write_bytes(CORRUPT)
    return root


GOOD = ["a.png", "sub/b.png", "sub/d.png", "sub/deeper/c.png", "z.png"]


def test_a_folder_expands_to_its_images_sorted_skipping_hidden_and_text(photos):
    assert folder_images(photos) == [str(photos / n) for n in ["a.png", "sub/b.png", "sub/broken.png",
                                                               "sub/d.png", "sub/deeper/c.png", "z.png"]]


def test_a_link_cycle_is_walked_once(photos):
    (photos / "sub" / "loop").symlink_to(photos, target_is_directory=True)
    assert len(folder_images(photos)) == 6


def test_folder_scored_and_the_corrupt_image_reported_and_skipped(checkpoint, photos):
    result = run("predict", "--checkpoint", checkpoint, photos, "--json", "--top-k", "2")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "broken.png: not a readable image" in warnings[0]
    rows = json.loads(result.stdout)
    assert [r["image"] for r in rows if "top2" in r] == [str(photos / n) for n in GOOD]
    bad = [r for r in rows if "error" in r]
    assert [r["image"] for r in bad] == [str(photos / "sub" / "broken.png")]
    assert bad[0]["error"].startswith("not a readable image")
    for r in rows:
        if "top2" in r:
            assert len(r["top2"]) == 2 and r["top2"][0]["probability"] >= r["top2"][1]["probability"]
    table = run("predict", "--checkpoint", checkpoint, photos)
    assert table.exit_code == 0 and "unreadable" in table.stdout


def test_only_bad_images_is_one_error_line(checkpoint, tmp_path):
    folder = tmp_path / "bad"
    (folder / "x").mkdir(parents=True)
    (folder / "one.png").write_bytes(CORRUPT)
    (folder / "x" / "two.jpg").write_bytes(b"\xff\xd8\xff junk")
    result = run("predict", "--checkpoint", checkpoint, folder)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: none of the 2 images could be scored")
    empty = tmp_path / "texts"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    result = run("predict", "--checkpoint", checkpoint, empty)
    assert result.exit_code == 2 and "is a directory with no image files below it" in result.output


def test_csv_rows_parse_back(checkpoint, photos, tmp_path):
    out = tmp_path / "preds.csv"
    result = run("predict", "--checkpoint", checkpoint, photos, "--csv", out, "--top-k", "3", "--json")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["image", "rank1_label", "rank1_probability", "rank2_label", "rank2_probability",
                             "rank3_label", "rank3_probability", "error"]
    assert [r["image"] for r in rows] == [str(photos / n) for n in ["a.png", "sub/b.png", "sub/broken.png",
                                                                    "sub/d.png", "sub/deeper/c.png", "z.png"]]
    by_image = {r["image"]: r for r in json.loads(result.stdout)}
    for row in rows:
        expected = by_image[row["image"]]
        if "error" in expected:
            assert row["error"] == expected["error"] and row["rank1_label"] == ""
            continue
        assert row["error"] == ""
        assert sorted(row[f"rank{i}_label"] for i in (1, 2, 3)) == ["a", "b", "c"]
        for i, t in enumerate(expected["top3"], start=1):
            assert row[f"rank{i}_label"] == t["label"] and float(row[f"rank{i}_probability"]) == t["probability"]


def test_batch_size_and_device_do_not_change_the_probabilities(checkpoint, photos):
    big = predict_images(checkpoint, [photos], top_k=3, batch_size=32)
    small = predict_images(checkpoint, [photos], top_k=3, batch_size=2, device="cpu")
    assert [r["image"] for r in big] == [r["image"] for r in small]
    for a, b in zip(big, small, strict=True):
        assert ("error" in a) == ("error" in b)
        for x, y in zip(a.get("top3", []), b.get("top3", []), strict=True):
            assert x["index"] == y["index"] and x["probability"] == pytest.approx(y["probability"], abs=1e-5)
    result = run("predict", "--checkpoint", checkpoint, photos / "a.png", "--device", "cpu", "--batch-size", "2",
                 "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["top5"][0]["probability"] == pytest.approx(
        big[0]["top3"][0]["probability"], abs=1e-5)


def test_one_unreadable_file_among_good_ones_is_an_entry_not_a_failure(checkpoint, photos, tmp_path):
    missing_link = tmp_path / "gone.png"
    missing_link.symlink_to(tmp_path / "nowhere.png")
    results = predict_images(checkpoint, [photos / "a.png", missing_link], top_k=1)
    assert "top1" in results[0] and results[1]["error"].startswith("cannot be read")


def test_a_fifo_in_a_folder_is_reported_not_waited_on_and_many_batches_show_a_bar(checkpoint, photos):
    import os

    os.mkfifo(photos / "sub" / "pipe.png")
    result = run("predict", "--checkpoint", checkpoint, photos, "--batch-size", "1", "--json")
    assert result.exit_code == 0, result.output
    errors = {r["image"]: r["error"] for r in json.loads(result.stdout) if "error" in r}
    assert errors[str(photos / "sub" / "pipe.png")].startswith("not a regular file (a FIFO)")
    assert "6/6" in result.stderr  # the bar: 6 batches of one (the corrupt PNG is read; the FIFO is not)
