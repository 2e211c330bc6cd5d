"""`evaluate --weights`: pretrained weights scored on an ImageNet-layout tree, whose class folders
are WordNet ids, index for index the weights' 1000 outputs."""

import io

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from vggnet.cli import cli
from vggnet.data.datasets import labels_of, load_data, names_of
from vggnet.data.imagenet import imagenet_classes, imagenet_wnids
from vggnet.errors import DataError, VggnetError
from vggnet.evaluate import run as evaluate_run
from vggnet.evaluate.run import evaluate_checkpoint, same_classes


def _jpeg(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (value % 256, value // 256, 7)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def imagenet_tree(tmp_path_factory):
    """val/<wnid>/ILSVRC2012_val_*.JPEG for all 1000 classes, one tiny image each, in shuffled creation order."""
    root = tmp_path_factory.mktemp("imagenet")
    wnids = imagenet_wnids()
    for i in torch.randperm(1000, generator=torch.Generator().manual_seed(0)).tolist():
        folder = root / "val" / wnids[i]
        folder.mkdir(parents=True)
        (folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG").write_bytes(_jpeg(i))
    return root


def test_every_class_index_is_the_shipped_tables(imagenet_tree):
    splits = load_data(imagenet_tree, progress=False)  # val/ only: the dataset's own split
    assert splits.classes == imagenet_wnids() and len(splits.val) == 1000
    index = dict(zip((n.split("/")[-2] for n in names_of(splits.val)), labels_of(splits.val).tolist(), strict=True))
    wnids, labels = imagenet_wnids(), imagenet_classes()
    assert all(index[w] == i for i, w in enumerate(wnids))  # folder n01440764 is output 0, 'tench', ...
    assert same_classes(splits.classes, {"classes": labels})
    assert not same_classes(splits.classes[:-1], {"classes": labels})
    assert not same_classes(list(reversed(wnids)), {"classes": labels})  # same ids, other order: no


def _tiny_imagenet_model(weights, model_name=None):
    """A 1000-way network small enough to score 1000 images in a test, with ImageNet metadata."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000)).eval()
    meta = {"model": "tiny", "classes": imagenet_classes(), "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225], "image_size": 32, "test_scale": 32, "in_memory": False, "weights": weights}
    return net, meta


def test_evaluate_scores_pretrained_weights_on_the_tree(imagenet_tree, tmp_path, monkeypatch):
    import vggnet.weights.load as load

    monkeypatch.setattr(load, "model_for_inference", _tiny_imagenet_model)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.json").write_text("{}")  # run from inside some run folder: its record is not the weights'
    m = evaluate_checkpoint(None, imagenet_tree, tmp_path / "ev", weights="vgg16", progress=False)
    assert m["images"] == 1000 and m["split"] == "val" and m["images_are"] == "the dataset's own val"
    assert len(m["confusion_matrix"]) == 1000 and 0 <= m["top1"] <= m["top5"] <= 1
    other = tmp_path / "other" / "val"
    (other / "cat").mkdir(parents=True)
    (other / "cat" / "0.jpg").write_bytes(_jpeg(1))
    (other / "dog").mkdir()
    (other / "dog" / "0.jpg").write_bytes(_jpeg(2))
    with pytest.raises(DataError, match="class folders are the 1000 WordNet ids"):
        evaluate_checkpoint(None, other.parent, tmp_path / "ev2", weights="vgg16", progress=False)


def test_evaluate_takes_a_checkpoint_or_weights_never_both(tmp_path):
    with pytest.raises(VggnetError, match="one of them"):
        evaluate_run.evaluate_checkpoint(None, "sample", tmp_path / "ev", progress=False)
    runner = CliRunner()
    both = runner.invoke(cli, ["evaluate", "--checkpoint", str(tmp_path), "--weights", "vgg16", "--data", "sample",
                               "--out", str(tmp_path / "o")])
    assert both.exit_code == 2 and "evaluate needs one of --checkpoint or --weights" in both.stderr
    model_alone = runner.invoke(cli, ["evaluate", "--checkpoint", str(tmp_path), "--model", "vgg16", "--data",
                                      "sample", "--out", str(tmp_path / "o")])
    assert model_alone.exit_code == 2 and "--model is for --weights" in model_alone.stderr
    unknown = runner.invoke(cli, ["evaluate", "--weights", "vgg17", "--data", "sample", "--out", str(tmp_path / "o")])
    assert unknown.exit_code == 2 and "vgg17" in unknown.stderr and not (tmp_path / "o").exists()
