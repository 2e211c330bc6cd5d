"""CIFAR-10 test sets as people store them, scored with the shipped weights (vgg_fast.cifar10):
each layout is either scored as what it is, said in metrics.json, or refused in one line. The
images are the embedded sample's (training images of these weights, so a right reading scores
high and a wrong one, such as a 32-pixel crop of an image upscaled to 96, scores near chance)."""

import io
import json
import shutil
import tarfile

import pytest
from click.testing import CliRunner
from PIL import Image

from tests.helpers import cifar_batches, make_cifar_archive, write_tar
from vggnet.cli import cli
from vggnet.data.datasets import sample_archive
from vggnet.weights import hub

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_CLASS = 4


def evaluate(data, out, *args):
    result = CliRunner().invoke(cli, ["evaluate", "--weights", "vgg_fast.cifar10", "--data", str(data),
                                      "--out", str(out), "--device", "cpu", *map(str, args)])
    metrics = json.loads((out / "metrics.json").read_text()) if result.exit_code == 0 else None
    return result, metrics


def error_line(result) -> str:
    """The one line a refusal prints (warnings about the weights may come before it), exit 2."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().endswith(errors[0]), result.stderr
    return errors[0]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(hub, "download", lambda *a, **k: pytest.fail("a packaged file was downloaded"))


@pytest.fixture(scope="module")
def seen():
    """PER_CLASS decoded 32x32 images per class from the embedded sample."""
    found: dict[str, list[Image.Image]] = {c: [] for c in CIFAR10}
    with tarfile.open(sample_archive()) as tar:
        for member in tar:
            cls = member.name.split("/")[-2] if member.isfile() else None
            if cls in found and len(found[cls]) < PER_CLASS:
                found[cls].append(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB"))
    return found


def write(root, seen, side=32, classes=CIFAR10, part=slice(None)):
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(seen[cls][part]):
            img.resize((side, side), Image.NEAREST).save(root / cls / f"{i}.png")
    return root


def test_images_stored_larger_are_seen_whole_at_the_weights_size(seen, tmp_path):
    _, small = evaluate(write(tmp_path / "32", seen), tmp_path / "e32")
    big, metrics = evaluate(write(tmp_path / "96", seen, side=96), tmp_path / "e96")
    assert big.exit_code == 0, big.output
    assert metrics["scales"] == [32]  # not the 256 of ImageNet weights, whose 32-pixel crop scored 17.5%
    assert metrics["images"] == small["images"] == 10 * PER_CLASS
    assert metrics["top1"] >= 0.8 and abs(metrics["top1"] - small["top1"]) <= 0.1  # the same images, stored larger


def test_a_train_and_test_tree_scores_its_test_folder(seen, tmp_path):
    write(tmp_path / "d" / "train", seen, part=slice(0, 2))
    write(tmp_path / "d" / "test", seen, part=slice(2, 3))
    result, metrics = evaluate(tmp_path / "d", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (metrics["split"], metrics["images"]) == ("test", 10) and metrics["images_are"] == "the dataset's own test"
    _, everything = evaluate(tmp_path / "d", tmp_path / "all", "--split", "all")
    assert everything["images"] == 20 and "training folder" in everything["images_are"]  # never "every image"


def test_a_test_folder_alone_is_scored_and_its_other_splits_are_one_line(seen, tmp_path):
    write(tmp_path / "d" / "test", seen, side=48)  # stored larger than the weights' 32, read into memory
    result, metrics = evaluate(tmp_path / "d", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (metrics["split"], metrics["images"]) == ("test", 10 * PER_CLASS)
    assert metrics["top1"] >= 0.8  # resized to 32 as in training (unresized, 48-pixel inputs scored 50%)
    refused, _ = evaluate(tmp_path / "d", tmp_path / "v", "--split", "val")
    assert "holds a test split alone: score it with --split test" in error_line(refused)


def test_class_folders_that_differ_are_named(seen, tmp_path):
    root = write(tmp_path / "d", seen, classes=[c for c in CIFAR10 if c != "ship"], part=slice(0, 1))
    (root / "truck").rename(root / "trucks")
    result, _ = evaluate(root, tmp_path / "e")
    assert "missing: ship, truck; not known to it: trucks" in error_line(result)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("name", ["cifar-10-python (1).tar.gz", "cifar10.tar"])
def test_the_python_release_under_another_name_scores_its_test_batch(tmp_path, name):
    archive = make_cifar_archive(tmp_path / "c.tar.gz", n_per_batch=4, n_test=12)
    if name.endswith(".tar"):
        archive = write_tar(tmp_path / "c.tar", cifar_batches(n_per_batch=4, n_test=12),
                            prefix="cifar-10-batches-py/", mode="w")
    archive = archive.rename(tmp_path / name)
    result, metrics = evaluate(archive, tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (metrics["split"], metrics["images"]) == ("test", 12)  # the default on a CIFAR-10 release: test_batch
    val, _ = evaluate(archive, tmp_path / "v", "--split", "val")
    assert "the val split of CIFAR-10 is among its training images" in error_line(val)


def test_a_release_holding_its_test_batch_alone_is_scored(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in cifar_batches(n_test=14).items():
        if name in ("test_batch", "batches.meta"):
            (folder / name).write_bytes(data)
    result, metrics = evaluate(tmp_path, tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (metrics["split"], metrics["images"]) == ("test", 14)
    (folder / "data_batch_1").write_bytes(cifar_batches()["data_batch_1"])  # one training batch of five: damaged
    damaged, _ = evaluate(tmp_path, tmp_path / "e2")
    assert "data_batch_2" in error_line(damaged)


def test_the_binary_release_is_named_in_one_line(tmp_path):
    folder = tmp_path / "release" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10) + "\n")
    (folder / "test_batch.bin").write_bytes(bytes(3073 * 2))
    archive = write_tar(tmp_path / "cifar-10-binary.tar.gz", {"test_batch.bin": bytes(3073 * 2)},
                        prefix="cifar-10-batches-bin/")
    for data in (folder, folder.parent, archive):
        line = error_line(evaluate(data, tmp_path / "e")[0])
        assert "binary release" in line and "cifar-10-python.tar.gz" in line


def test_a_run_scored_on_a_copy_of_its_cifar_data_never_calls_training_images_val(tmp_path):
    from vggnet.evaluate.run import evaluate_checkpoint
    from vggnet.train.loop import train
    from vggnet.train.recipes import get_recipe

    archive = make_cifar_archive(tmp_path / "cifar-10-python.tar.gz", n_per_batch=8, n_test=10)
    train("vgg11_bn", archive, get_recipe("cifar", {"epochs": "1", "batch_size": "16", "width": "0.25"}),
          tmp_path / "run", progress=False)
    own = evaluate_checkpoint(tmp_path / "run", archive, tmp_path / "own", progress=False)
    assert (own["split"], own["images"]) == ("val", 4) and "held out" in own["images_are"]
    (tmp_path / "moved").mkdir()
    copy = shutil.copy(archive, tmp_path / "moved" / "cifar10-copy.tar.gz")  # the same release, elsewhere
    moved = evaluate_checkpoint(tmp_path / "run", copy, tmp_path / "moved-e", progress=False)
    assert (moved["split"], moved["images"]) == ("val", 4) and moved["confusion_matrix"] == own["confusion_matrix"]
    other = tmp_path / "other"
    other.mkdir()
    make_cifar_archive(other / "cifar-10-python.tar.gz", n_per_batch=8, n_test=10, seed=3)  # other images
    theirs = evaluate_checkpoint(tmp_path / "run", other, tmp_path / "theirs", progress=False)
    assert (theirs["split"], theirs["images"]) == ("test", 10)
    with pytest.raises(Exception, match="part of CIFAR-10's training images"):
        evaluate_checkpoint(tmp_path / "run", other, tmp_path / "v", split="val", progress=False)
    shutil.rmtree(tmp_path / "run")


def test_an_undecodable_image_is_counted_in_the_metrics_and_the_report(seen, tmp_path):
    root = write(tmp_path / "d", seen, part=slice(0, 1))
    (root / "cat" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result, metrics = evaluate(root, tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (metrics["images"], metrics["skipped"]) == (10, 1)
    assert "1 unreadable skipped" in result.stdout and "(1 undecodable, skipped)" in (tmp_path / "e" / "report.md"
                                                                                       ).read_text()
