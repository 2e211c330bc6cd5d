import json

import pytest
from click.testing import CliRunner

from tests.helpers import colour_folders
from vggnet.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    colour_folders(tmp_path / "d" / "train", per_class=12)
    colour_folders(tmp_path / "d" / "val", per_class=4, seed=1)
    return tmp_path / "d"


def test_train_evaluate_predict_round_trip(data, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--model", "vgg11_bn", "--data", data, "--epochs", "2", "--batch-size", "12",
                 "--lr", "0.01", "--set", "precision=fp32", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "val top-1" in result.stdout and "report.md" in result.stdout
    assert json.loads((out / "run.json").read_text())["recipe"]["precision"] == "fp32"
    result = run("evaluate", "--checkpoint", out, "--data", data, "--split", "val", "--out", tmp_path / "ev", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["images"] == 12 and len(metrics["per_class"]) == 3
    result = run("evaluate", "--checkpoint", out, "--checkpoint", out, "--data", data, "--protocol", "multi-crop",
                 "--scales", "32,40", "--out", tmp_path / "mc", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "mc" / "metrics.json").read_text())
    assert (metrics["protocol"], metrics["scales"], len(metrics["checkpoint"])) == ("multi-crop", [32, 40], 2)
    result = run("evaluate", "--checkpoint", out, "--data", data, "--scales", "big", "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--scales takes comma-separated pixel sizes" in result.stderr
    result = run("predict", "--checkpoint", out, data / "val" / "red" / "0.png", "--top-k", "2", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)[0]["top2"]) == 2
    table = run("predict", "--checkpoint", out, data / "val" / "red" / "0.png")
    assert "probability" in table.stdout
    resumed = run("train", "--resume", out, "--epochs", "3", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert (out / "checkpoints" / "LATEST").read_text().strip() == "epoch-0003"


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--model", "vgg11", "--data", "/no/such/dir"], "unknown dataset '/no/such/dir'"),
    (["train", "--model", "vgg99", "--data", "sample"], "unknown model 'vgg99'"),
    (["train", "--model", "vgg11", "--data", "sample", "--set", "lr"], "--set takes FIELD=VALUE"),
    (["train", "--model", "vgg11", "--data", "sample", "--set", "speed=2"], "unknown recipe field 'speed'"),
    (["train", "--data", "sample"], "train needs --model (recipe cifar names none)"),
    (["train", "--resume", ".", "--lr", "0.1"], "only --epochs (and --data, for data that moved) may change"),
    (["train", "--resume", "."], "no readable run.json"),
])
def test_bad_train_arguments_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_evaluate_a_file_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"\x00" * 16)
    result = run("evaluate", "--checkpoint", tmp_path / "w.safetensors", "--data", "sample", "--out", tmp_path)
    assert result.exit_code == 2 and result.stderr.startswith("error: cannot read")


def test_ctrl_c_says_what_is_kept_and_how_to_resume(data, tmp_path, monkeypatch):
    import vggnet.train.loop as loop

    def interrupted(*args, **kwargs):
        (tmp_path / "run" / "checkpoints").mkdir(parents=True)
        (tmp_path / "run" / "checkpoints" / "LATEST").write_text("epoch-0002\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", interrupted)
    result = run("train", "--model", "vgg11", "--data", data, "--out", tmp_path / "run")
    assert result.exit_code == 130
    assert result.stderr == (f"interrupted: checkpoint epoch-0002 is kept; "
                             f"continue with `vggnet train --resume {tmp_path / 'run'}`\n")


def test_strict_stops_train_and_evaluate_at_a_bad_image_and_names_it(data, tmp_path):
    (data / "val" / "red" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    args = ("--model", "vgg11_bn", "--data", data, "--epochs", "1", "--batch-size", "12", "--quiet")
    result = run("train", *args, "--strict", "--out", tmp_path / "strict")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    bad = data / "val" / "red" / "9.png"
    assert result.stderr.startswith(f"error: cannot decode {bad} (") and "without --strict" in result.stderr
    assert not (tmp_path / "strict" / "checkpoints").exists()
    result = run("train", *args, "--out", tmp_path / "lenient")
    assert result.exit_code == 0, result.output
    assert list(json.loads((tmp_path / "lenient" / "run.json").read_text())["skipped_images"]) == ["val/red/9.png"]
    result = run("evaluate", "--checkpoint", tmp_path / "lenient", "--data", data, "--split", "val", "--strict",
                 "--out", tmp_path / "ev", "--quiet")
    assert result.exit_code == 2 and f"cannot decode {bad}" in result.stderr


def test_val_fraction_0_trains_on_everything_and_the_test_split_scores_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path / "cache"))
    colour_folders(tmp_path / "d" / "train", per_class=12)
    colour_folders(tmp_path / "d" / "test", per_class=4, seed=1)
    out = tmp_path / "run"
    result = run("train", "--model", "vgg11_bn", "--data", tmp_path / "d", "--epochs", "1", "--batch-size", "12",
                 "--set", "val_fraction=0", "--set", "precision=fp32", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "trained on all 36 images; nothing was held out" in result.stdout
    result = run("evaluate", "--checkpoint", out, "--data", tmp_path / "d", "--out", tmp_path / "ev", "--quiet")
    assert result.exit_code == 2 and "held none out" in result.stderr and len(result.stderr.splitlines()) == 1
    result = run("evaluate", "--checkpoint", out, "--data", tmp_path / "d", "--split", "test", "--out",
                 tmp_path / "ev", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["images"] == 12
