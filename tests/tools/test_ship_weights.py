"""tools/ship_weights.py counts how much of the embedded sample a run trained on, by content,
rather than taking the user's word: the count goes into the shipped file's metadata and into
the one line that refuses to score the sample as a test of those weights."""

import importlib.util
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from vggnet.data.datasets import sample_archive
from vggnet.evaluate.run import sample_seen

TOOL = Path(__file__).parents[2] / "tools" / "ship_weights.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("ship_weights", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_on(tmp_path: Path, held: list[str] | None, train_images: int) -> Path:
    """A run whose data is 12 sample images renamed (class folders under train/) plus one image
    and one text file of its own; ``held`` are held out."""
    data = tmp_path / "data.tar"
    with tarfile.open(sample_archive()) as src, tarfile.open(data, "w") as out:
        members = [m for m in src if m.isfile()][:12]
        for i, m in enumerate(members):
            data_bytes = src.extractfile(m).read()
            m.name = f"train/{m.name.split('/')[-2]}/{i:04d}.jpg"  # new names: matched by bytes, not names
            out.addfile(m, io.BytesIO(data_bytes))
        for name, content in (("train/airplane/mine.jpg", b"\xff\xd8no"), ("README.txt", b"hi")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            out.addfile(info, io.BytesIO(content))
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"data": str(data), "classes": ["airplane"], "held_out": held,
                                                "train_images": 13 - len(held or ()), "val_images": len(held or ())}))
    (run / "run.json").write_text(json.dumps({"train_images": train_images}))  # after any cap
    return run


def test_the_sample_images_a_run_trained_on_are_counted_by_content(tool, tmp_path):
    run = _run_on(tmp_path, ["airplane/0000.jpg", "airplane/0001.jpg", "airplane/0002.jpg"], 10)
    assert tool.sample_trained_on(run) == 9  # 12 sample images less 3 held out; its own image is not one


def test_a_split_it_cannot_account_for_stops(tool, tmp_path):
    run = _run_on(tmp_path, ["airplane/0000.jpg"], 5)  # train_images=5 of a pool of 12: which 5 is unknown
    with pytest.raises(SystemExit, match="cannot be counted this way"):
        tool.sample_trained_on(run)
    (run / "split.json").write_text(json.dumps({"data": str(tmp_path / "gone.tar"), "held_out": []}))
    with pytest.raises(SystemExit, match="--sample-images N"):
        tool.sample_trained_on(run)


def test_a_run_on_the_sample_itself_trained_on_its_train_folder_only(tool, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"data": "sample", "held_out": None, "train_images": 4000}))
    (run / "run.json").write_text(json.dumps({"train_images": 4000}))
    assert tool.sample_trained_on(run) == 4000  # not 5,000: its val/ was scored, never trained on


def test_the_refusal_names_the_count_or_every_image():
    assert sample_seen({"sample_images_trained_on": 4448}) == "4,448 of the sample's 5,000 images"
    assert sample_seen({"trained_on_sample": True}) == "every image of the sample"


def test_the_shipped_file_names_its_held_out_images_and_evaluate_scores_exactly_them(tool, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tests.helpers import colour_folders
    from vggnet.cli import cli
    from vggnet.train.loop import train
    from vggnet.train.recipes import get_recipe

    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "home"))
    data = colour_folders(tmp_path / "colours", per_class=12)
    recipe = {"epochs": "1", "batch_size": "16", "val_fraction": "0.25", "workers": "0", "width": "0.125"}
    train("vgg11_bn", data, get_recipe("cifar", recipe), tmp_path / "run", progress=False, device="cpu")
    monkeypatch.setattr(tool, "SHIPPED", tmp_path / "shipped")
    out = tool.write(tmp_path / "run", "vgg11_bn.colours", "bf16", "27 colour images", 0, False)
    assert out["held_out"] == 9 and out["sample_images_trained_on"] == 0
    weights = tmp_path / "shipped" / out["file"]

    def evaluate(folder, name, *extra):
        result = CliRunner().invoke(cli, ["evaluate", "--weights", str(weights), "--data", str(folder), "--out",
                                          str(tmp_path / "scores" / name), *extra])
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / "scores" / name / "metrics.json").read_text()), result.stderr

    copy = shutil.copytree(data, tmp_path / "elsewhere" / "colours-copy")  # the same images, another path
    metrics, said = evaluate(copy, "copy")
    assert (metrics["split"], metrics["images"]) == ("val", 9) and "the 9 it held out are named" in said
    assert metrics["images_are"] == "the 9 images the run held out"
    everything, _ = evaluate(copy, "all", "--split", "all")
    assert everything["images"] == 36
    other = colour_folders(tmp_path / "other", per_class=12, seed=5)  # the same names, other images
    metrics, _ = evaluate(other, "other")
    assert (metrics["split"], metrics["images"]) == ("all", 36)  # not mistaken for the held-out images
