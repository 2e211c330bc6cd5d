"""Top-5 is shown only where it means something: with 5 classes or fewer it is 100% by construction,
so the CLI lines, the per-epoch line and report.md leave it out (metrics.json keeps ``top5``)."""

import io
import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import vggnet.evaluate.run
from tests.evaluate.test_report import HISTORY, random_metrics
from vggnet.cli import cli
from vggnet.evaluate.report import accuracy_text, write_report


def folders(root, classes: int, per_class: int, seed: int = 0):
    """``classes`` folders of random 32x32 PNGs: enough for one quick epoch."""
    g = torch.Generator().manual_seed(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            buf = io.BytesIO()
            Image.fromarray(torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8).numpy()).save(buf, "PNG")
            (root / f"class{c}" / f"{i}.png").write_bytes(buf.getvalue())


def test_accuracy_text_names_top5_only_above_5_classes():
    assert accuracy_text({"top1": 0.5, "top5": 1.0, "classes": list("abcd")}) == "top-1 50.00%"
    assert accuracy_text({"top1": 0.5, "top5": 1.0, "classes": list("abcde")}) == "top-1 50.00%"
    assert accuracy_text({"top1": 0.5, "top5": 0.9, "classes": list("abcdef")}) == "top-1 50.00%  top-5 90.00%"


@pytest.mark.parametrize(("classes", "shown"), [(4, False), (10, True)])
def test_report_md_shows_top5_only_above_5_classes(tmp_path, classes, shown):
    m = random_metrics([f"k{i}" for i in range(classes)], 200)
    write_report(tmp_path, m, HISTORY, "run")
    md = (tmp_path / "report.md").read_text()
    assert ("top-5" in md) is shown
    assert "| top-1 |" in md and "| val top-1 |" in md  # the rest of both tables stays
    header = next(line for line in md.splitlines() if line.startswith("| epoch"))
    row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert header.count("|") == row.count("|")


@pytest.mark.parametrize(("classes", "shown"), [(4, False), (10, True)])
def test_evaluate_line_shows_top5_only_above_5_classes(tmp_path, monkeypatch, classes, shown):
    m = {**random_metrics([f"k{i}" for i in range(classes)], 100), "split": "val", "images_are": "held out",
         "skipped": 0}
    monkeypatch.setattr(vggnet.evaluate.run, "evaluate_checkpoint", lambda *a, **k: m)
    result = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(tmp_path), "--data", "sample",
                                      "--out", str(tmp_path / "ev"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "top-1" in result.stdout and ("top-5" in result.stdout) is shown


@pytest.mark.parametrize(("classes", "shown"), [(4, False), (10, True)])
def test_train_lines_show_top5_only_above_5_classes(tmp_path, monkeypatch, classes, shown):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    folders(tmp_path / "d" / "train", classes, 2)
    folders(tmp_path / "d" / "val", classes, 1, seed=1)
    result = CliRunner().invoke(cli, ["train", "--model", "vgg11_bn", "--data", str(tmp_path / "d"), "--epochs", "1",
                                      "--batch-size", "8", "--set", "precision=fp32", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    epoch = next(line for line in result.stdout.splitlines() if line.startswith("epoch 1:"))
    final = next(line for line in result.stdout.splitlines() if line.startswith("val top-1"))
    assert ("top-5" in epoch) is shown and ("top-5" in final) is shown
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "top5" in metrics  # the machine-readable record keeps the field
