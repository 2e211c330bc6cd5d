"""The report at 10 classes (tables you can read) and at 1000 (bounded memory, a bounded picture, top confusions)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vggnet.evaluate.metrics import Predictions, score
from vggnet.evaluate.report import LARGE_CONFUSION, TEXT_WIDTH, confusion_text, top_confusions, write_report

ROOT = Path(__file__).resolve().parents[2]
CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
HISTORY = [{"epoch": e, "lr": 0.01, "train_loss": 2.0 / e, "val_loss": 2.1 / e, "train_top1": 0.1 * e,
            "val_top1": 0.09 * e, "val_top5": 0.3 * e, "seconds": 1.5} for e in (1, 2, 3)]
PLANTED = (17, 442, 90)  # true class, predicted class, images: far above any random off-diagonal cell


def random_metrics(classes: list[str], images: int, planted: tuple[int, int, int] | None = None) -> dict:
    """score() on random top-5 predictions, 60% of them right; ``planted`` images of one class all called another."""
    g = torch.Generator().manual_seed(0)
    n = len(classes)
    labels = torch.randint(0, n, (images,), generator=g)
    topk = torch.randint(0, n, (images, 5), generator=g)
    right = torch.rand(images, generator=g) < 0.6
    topk[right, 0] = labels[right]
    if planted:
        true, predicted, count = planted
        labels[:count], topk[:count, 0] = true, predicted
    return score(Predictions(labels, topk, loss_sum=2.0 * images), classes)


@pytest.fixture(scope="module")
def imagenet_sized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A report written at 1000 classes, 20,000 images, in a fresh process that measured its own peak memory."""
    classes = [f"n{i:08d} class_{i:03d}" for i in range(1000)]
    metrics = random_metrics(classes, 20_000, PLANTED)
    out = tmp_path_factory.mktemp("imagenet-report")
    (out / "metrics.json").write_text(json.dumps(metrics))
    script = textwrap.dedent("""
        import json, resource, sys, time
        from pathlib import Path
        from vggnet.evaluate.report import write_report
        out = Path(sys.argv[1])
        metrics = json.loads((out / "metrics.json").read_text())
        history = json.loads(sys.argv[2])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        write_report(out, metrics, history, "vgg16 on imagenet")
        seconds = time.perf_counter() - start
        growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({"seconds": seconds, "peak_growth_mb": growth_kb / 1024}))
    """)
    pythonpath = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-c", script, str(out), json.dumps(HISTORY)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": pythonpath})
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.splitlines()[-1])
    print(f"write_report at 1000 classes: {measured['seconds']:.1f} s, peak RSS growth "
          f"{measured['peak_growth_mb']:.0f} MB")
    return out, measured


def test_1000_classes_report_within_1_gb(imagenet_sized):
    out, measured = imagenet_sized
    assert measured["peak_growth_mb"] < 1024
    assert {p.name for p in out.iterdir()} >= {"confusion.txt", "confusion.png", "curves.png", "report.md"}


def test_1000_classes_picture_is_bounded(imagenet_sized):
    out, _ = imagenet_sized
    with Image.open(out / "confusion.png") as png:
        width, height = png.size
    assert 600 <= width <= 2000 and 600 <= height <= 2000


def test_1000_classes_text_lists_the_top_confusions(imagenet_sized):
    out, _ = imagenet_sized
    text = (out / "confusion.txt").read_text()
    lines = text.splitlines()
    assert len(lines) < 40 and "top 20 confusions" in text
    first = lines[next(i for i, x in enumerate(lines) if x.split()[:1] == ["#"]) + 1].split()
    true, predicted, count = PLANTED
    assert first[0] == "1" and int(first[1].replace(",", "")) >= count
    assert first[3:] == [str(true), f"n{true:08d}", f"class_{true:03d}", "->",
                         str(predicted), f"n{predicted:08d}", f"class_{predicted:03d}"]


def test_1000_classes_report_md_has_no_square_block(imagenet_sized):
    out, _ = imagenet_sized
    lines = (out / "report.md").read_text().splitlines()
    assert max(map(len, lines)) < 300  # no 1000-wide row
    assert sum(line.startswith("| n0") for line in lines) == 1000  # the per-class table stays
    top = lines.index("## Top 20 confusions")
    assert lines[top + 6].startswith("| 1 | 17 n00000017 class_017 | 442 n00000442 class_442 |")
    assert "```" not in lines


def test_metrics_json_keeps_counts_and_rounds_rates():
    m = random_metrics([f"c{i}" for i in range(300)], 5000)
    counts, rates = np.array(m["confusion_matrix"]), np.array(m["confusion_matrix_normalized"])
    assert counts.dtype == np.int64 and counts.shape == (300, 300) and counts.sum() == 5000
    assert all(isinstance(v, int) for v in m["confusion_matrix"][0])
    exact = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(rates - exact).max() <= 5e-7 and np.array_equal(rates, rates.round(6))
    assert max(len(repr(v)) for row in m["confusion_matrix_normalized"] for v in row) <= 8  # "0.123457"


def test_top_confusions_largest_off_diagonal_first():
    cm = [[5, 3, 0], [1, 9, 3], [0, 0, 2]]
    assert [tuple(c) for c in top_confusions(cm)] == [(0, 1, 3, 3 / 8), (1, 2, 3, 3 / 13), (1, 0, 1, 1 / 13)]
    assert top_confusions(cm, k=1)[0][:3] == (0, 1, 3)
    assert top_confusions(np.eye(4, dtype=int)) == []


def test_threshold_separates_tables_from_top_confusions():
    for n, tables in ((LARGE_CONFUSION, True), (LARGE_CONFUSION + 1, False)):
        cm = (np.eye(n, dtype=int) * 5 + np.roll(np.eye(n, dtype=int), 1, axis=1)).tolist()
        text = confusion_text(cm, [f"k{i}" for i in range(n)])
        assert ("normalised by true class" in text) is tables and ("top 20 confusions" in text) is not tables


def test_confusion_text_has_counts_and_rates_aligned():
    text = confusion_text([[3, 1], [0, 4]], ["cat", "dog"])
    lines = text.splitlines()
    assert lines[0] == "counts" and lines[5] == "normalised by true class"
    assert lines[1].split()[-2:] == ["cat", "dog"]  # short names head the columns
    assert lines[2].split() == ["cat", "3", "1"] and lines[7].split() == ["cat", "0.750", "0.250"]
    assert len({len(line) for line in lines[1:4]}) == 1  # header and rows line up


def test_10_classes_keep_both_tables_within_80_columns():
    m = random_metrics(CIFAR, 500)
    lines = confusion_text(m["confusion_matrix"], CIFAR).splitlines()
    assert lines[0] == "counts" and lines[13] == "normalised by true class" and len(lines) >= 25
    assert max(map(len, lines)) <= TEXT_WIDTH
    assert [line.split()[1] for line in lines[2:12]] == CIFAR  # full names label the rows
    assert lines[1].split()[-10:] == [str(i) for i in range(10)]  # too long for columns: numbered
    assert [int(v) for v in lines[2].split()[2:]] == m["confusion_matrix"][0]
    assert len({len(line) for line in lines[1:12]}) == 1


def test_long_class_names_are_numbered_with_a_legend_not_cut():
    classes = [f"a rather long class name, number {i}" for i in range(10)]
    cm = (np.eye(10, dtype=int) * 7 + 1).tolist()
    text = confusion_text(cm, classes)
    lines = text.splitlines()
    assert max(map(len, lines)) <= TEXT_WIDTH
    assert lines[2].split()[:2] == ["0", "8"] and lines[1].split()[-1] == "9"
    legend = lines[lines.index("classes:") + 1:]
    assert [line.split(maxsplit=1) for line in legend] == [[str(i), name] for i, name in enumerate(classes)]


def test_10_class_report_keeps_tables_and_cell_numbers(tmp_path):
    m = random_metrics(CIFAR, 500)
    write_report(tmp_path, m, HISTORY, "vgg11 on cifar10")
    assert (tmp_path / "confusion.txt").read_text() == confusion_text(m["confusion_matrix"], CIFAR)
    md = (tmp_path / "report.md").read_text()
    assert "## Confusion matrix (rows: true, columns: predicted)" in md and "normalised by true class" in md
    assert "Top 20 confusions" not in md
    with Image.open(tmp_path / "confusion.png") as png:
        assert max(png.size) < 2000
    assert (tmp_path / "curves.png").exists()


def test_1000_class_confusion_text_is_small_and_quick():
    """No 1000 x 1000 grid: the summary and top confusions, a few kB, written in well under a second."""
    import time

    classes = [f"n{i:08d} a long class name number {i}" for i in range(1000)]
    cm = np.eye(1000, dtype=np.int64) * 20
    cm[3, 7] = 9
    start = time.perf_counter()
    text = confusion_text(cm.tolist(), classes)
    assert time.perf_counter() - start < 5 and len(text.encode()) < 200_000
    assert f"3 {classes[3]} -> 7 {classes[7]}" in text  # full names in the top confusions


def test_10_long_names_fit_80_columns_and_each_appears_whole():
    classes = [f"{name} (a name longer than a column)" for name in CIFAR]
    m = random_metrics(classes, 500)
    text = confusion_text(m["confusion_matrix"], classes)
    assert max(map(len, text.splitlines())) <= TEXT_WIDTH and all(name in text for name in classes)
