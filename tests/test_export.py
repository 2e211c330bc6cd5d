"""ONNX export: the file runs in onnxruntime and matches PyTorch to 1e-4, batch (and size) dynamic."""

import json
import sys

import pytest
import torch
from click.testing import CliRunner

from vggnet.cli import cli
from vggnet.errors import MissingDependencyError
from vggnet.export import export_onnx, verify_onnx
from vggnet.models import create_model, to_fully_convolutional
from vggnet.runs import save_weights

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

KWARGS = {"num_classes": 10, "head": "small", "dropout": 0.0}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A CIFAR-size VGG-11-BN checkpoint as training writes it (BatchNorm statistics not trivial)."""
    torch.manual_seed(0)
    model = create_model("vgg11_bn", **KWARGS)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 32, 32))
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    meta = {"model": "vgg11_bn", "model_kwargs": KWARGS, "classes": [f"c{i}" for i in range(10)],
            "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2], "image_size": 32, "test_scale": 32, "in_memory": True}
    save_weights(path, model, meta)
    return path, model.eval()


def test_classifier_export_has_a_dynamic_batch(checkpoint, tmp_path):
    path, model = checkpoint
    out = export_onnx(path, tmp_path / "m.onnx")
    for n in (1, 5):
        assert verify_onnx(out, model, torch.randn(n, 3, 32, 32)) < 1e-4
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["classes"])[3] == "c3" and json.loads(props["mean"]) == [0.5, 0.4, 0.3]
    assert (props["channels"], props["image_size"], props["fully_convolutional"]) == ("RGB", "32", "false")


def test_fully_convolutional_export_takes_any_size(checkpoint, tmp_path):
    path, model = checkpoint
    out = export_onnx(path, tmp_path / "fc.onnx", fully_convolutional=True)
    dense = to_fully_convolutional(model).eval()
    for shape in [(1, 3, 32, 32), (2, 3, 64, 96), (3, 3, 160, 48)]:
        assert verify_onnx(out, dense, torch.randn(*shape)) < 1e-4
    import onnxruntime

    (scores,) = onnxruntime.InferenceSession(str(out)).run(None, {"image": torch.randn(2, 3, 64, 96).numpy()})
    assert scores.shape == (2, 10, 2, 3)  # a score map, one position per 32-pixel stride


def test_cli_export_and_missing_extra(checkpoint, tmp_path, monkeypatch):
    path, _ = checkpoint
    result = CliRunner().invoke(cli, ["export", "--checkpoint", str(path), "--format", "onnx", "--fully-convolutional",
                                      "--out", str(tmp_path / "x.onnx"), "--verify"])
    assert result.exit_code == 0, result.output
    diffs = [float(line.rsplit(" ", 1)[1]) for line in result.stdout.splitlines() if "max abs difference" in line]
    assert len(diffs) == 2 and max(diffs) < 1e-4
    assert not list(tmp_path.glob(".x.onnx.*"))  # the temporary file is gone
    result = CliRunner().invoke(cli, ["export", "--format", "onnx"])
    assert result.exit_code == 2 and "needs one of --checkpoint or --weights" in result.stderr
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'vggnet\[onnx\]'"):
        export_onnx(path, tmp_path / "y.onnx")
    assert not (tmp_path / "y.onnx").exists()
