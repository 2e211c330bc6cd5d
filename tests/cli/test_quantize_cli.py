"""`vggnet quantize` and `vggnet export --precision int8`: one JSON object or readable lines, and
option mistakes refused in one line before any data is read."""

import json

from click.testing import CliRunner

from vggnet.cli import cli


def test_quantize_prints_the_accuracy_it_costs(quantized, tmp_path):
    root, data, _, _ = quantized
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(cli, ["quantize", "--checkpoint", str(root / "run"), "--calibrate", str(data),
                                      "--calibration-images", "8", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["out"] == str(out) and out.is_file() and report["calibration"]["images"] == 8
    assert report["accuracy"]["images"] == 18
    lines = CliRunner().invoke(cli, ["quantize", "--checkpoint", str(root / "run"), "--calibrate", str(data),
                                     "--calibration-images", "8", "--out", str(out), "--no-score"])
    assert lines.exit_code == 0 and "int8" in lines.stdout and "not scored" in lines.stdout


def test_export_int8_is_quantize_and_checks_its_options_first(quantized, tmp_path):
    root, data, _, _ = quantized
    runner = CliRunner()
    for args, message in [
        (["--precision", "int8"], "--precision int8 needs --calibrate DATA"),
        (["--precision", "int8", "--calibrate", str(data), "--fully-convolutional"], "needs --calibrate DATA"),
        (["--precision", "int8", "--calibrate", str(data), "--verify"], "instead of --verify"),
        (["--precision", "int8", "--calibrate", str(tmp_path / "nothing")], "unknown dataset"),
        (["--calibrate", str(data)], "--calibrate is for --precision int8"),
    ]:
        bad = runner.invoke(cli, ["export", "--checkpoint", str(root / "run"), *args])
        assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and message in bad.stderr
        assert bad.stderr.count("\n") == 1
    good = runner.invoke(cli, ["export", "--checkpoint", str(root / "run"), "--precision", "int8", "--calibrate",
                               str(data), "--out", str(tmp_path / "e.onnx")])
    assert good.exit_code == 0, good.output
    assert "int8" in good.stdout and "top-1 fp32" in good.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.onnx"]  # no temporary file left beside it
    again = runner.invoke(cli, ["export", "--checkpoint", str(tmp_path / "e.onnx")])
    assert again.exit_code == 2 and "already an ONNX file" in again.stderr


def test_default_outputs_sit_beside_run_json_never_in_an_epoch_folder(quantized):
    from vggnet.cli.export import _default_out

    root, _, _, _ = quantized
    run = root / "run"
    epoch = sorted((run / "checkpoints").iterdir())[-1]
    assert _default_out(str(run), False, "-int8") == run / "model-int8.onnx"
    assert _default_out(str(epoch), False, "-int8") == run / f"model-{epoch.name}-int8.onnx"
    assert _default_out(str(epoch / "model.safetensors"), True) == run / f"model-{epoch.name}-fully-conv.onnx"
    assert _default_out("vgg16", False, "-int8").name == "vgg16-int8.onnx"
