import json
from pathlib import Path

from click.testing import CliRunner

from vggnet.cli import cli


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def test_summary_json() -> None:
    result = run("summary", "vgg16", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["totals"]["params"] == 138_357_544 and data["totals"]["macs"] == 15_470_264_320
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["conv5_3"]["receptive_field"] == 196 and layers["pool5"]["receptive_field"] == 212
    assert layers["conv1_1"]["output_shape"] == [64, 224, 224]


def test_summary_table_shows_totals_and_assumptions() -> None:
    result = run("summary", "D", "--batch-size", "64", "--optimizer", "adam")
    assert result.exit_code == 0, result.output
    assert "15,470,264,320" in result.output and "training, batch 64" in result.output
    assert "assumptions:" in result.output


def test_summary_options_for_cifar(tmp_path: Path) -> None:
    png = tmp_path / "m.png"
    result = run("summary", "vgg11", "--image-size", "32", "--head", "small", "--num-classes", "10",
                 "--batch-norm", "--json", "--png", str(png))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == "vgg11" and data["input_size"] == [3, 32, 32]
    assert data["layers"][-1]["output_shape"] == [10]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_unknown_model_is_one_line_on_stderr() -> None:
    result = run("summary", "vgg17")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'vgg17'; valid names:")


def test_too_small_input_is_one_line() -> None:
    result = run("summary", "vgg16", "--image-size", "16")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_compare_and_filters_json() -> None:
    result = run("compare", "vgg16", "resnet50", "--json")
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == ["vgg16", "resnet50"] and rows[1]["params"] == 25_557_032
    filters = json.loads(run("filters", "--json").output)
    assert filters[0]["small"]["params"] == 294_912 and filters[0]["large"]["params"] == 409_600
    assert filters[-1]["small"]["params"] == 40_960


def test_unwritable_png_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run("summary", "vgg11", "--json", "--png", str(blocker / "x.png"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: Not a directory: {blocker}"]


def test_models_with_no_match() -> None:
    result = run("models", "zzz")
    assert result.exit_code == 2 and "no registered model matches 'zzz'" in result.stderr


def test_models_lists_aliases() -> None:
    result = run("models", "vgg16*")
    assert result.exit_code == 0
    assert result.output.split("\n")[0].split() == ["vgg16", "D"]


def test_experiment_list_and_bad_names():
    result = CliRunner().invoke(cli, ["experiment", "list"])
    assert result.exit_code == 0 and [line.split()[0] for line in result.stdout.splitlines()] == [
        "depth", "lrn", "conv1x1", "filters", "init", "augment"]
    result = CliRunner().invoke(cli, ["experiment", "width", "--data", "sample"])
    assert result.exit_code == 2 and result.stderr == "error: unknown study 'width'; valid: depth, lrn, conv1x1, " \
                                                      "filters, init, augment\n"
    result = CliRunner().invoke(cli, ["experiment", "lrn", "--data", "sample", "--budget", "huge"])
    assert result.exit_code == 2 and "'huge' is not one of 'small', 'medium', 'full'" in result.stderr
