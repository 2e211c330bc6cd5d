import json
from pathlib import Path

import pytest

from vggnet.analysis import render, trace
from vggnet.analysis.compare import compare
from vggnet.analysis.filters import filter_arithmetic
from vggnet.plotting import save_figure


def test_json_form_has_the_documented_keys() -> None:
    data = json.loads(json.dumps(render.trace_to_dict(trace("vgg11"), batch_size=32, optimizer="adam")))
    assert {"model", "input_size", "layers", "totals"} <= set(data)
    layer_keys = {"name", "type", "output_shape", "params", "macs", "activations", "receptive_field"}
    assert layer_keys <= set(data["layers"][1])
    assert {"params", "macs", "activations_forward", "bytes_forward", "bytes_training"} <= set(data["totals"])
    assert data["totals"]["batch_size"] == 32 and any("adam" in a for a in data["assumptions"])


def test_tables_render() -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render.trace_table(trace("vgg11"), wide=True))
    console.print(render.compare_table(compare(["vgg11"]), 224, wide=True))
    console.print(render.filters_table(filter_arithmetic(), wide=True))
    text = console.export_text()
    assert "conv5_2" in text and "132,863,336" in text and "294,912" in text


@pytest.mark.parametrize("kind", ["trace", "compare"])
def test_png_is_written_atomically(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("matplotlib")
    if kind == "trace":
        fig = render.trace_figure(trace("vgg11"))
    else:
        fig = render.compare_figure(compare(["vgg11", "alexnet"]))
    path = save_figure(fig, tmp_path / "sub" / f"{kind}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == [f"{kind}.png"]  # no temp file left behind


def _at_80_columns(*renderables: object) -> str:
    from rich.console import Console

    console = Console(width=80, record=True)
    for r in renderables:
        console.print(r, highlight=False)
    return console.export_text()


def _fits(text: str) -> None:
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "..." not in text


@pytest.mark.parametrize("model", ["vgg16", "vgg19_bn", "googlenet"])
def test_summary_fits_80_columns(model: str) -> None:
    t = trace(model)
    text = _at_80_columns(render.trace_table(t), *render.totals_lines(t, 256, "sgd"),
                          *render.assumptions(t, 256, "sgd"))
    _fits(text)
    if model == "vgg16":
        assert " 103M " in text and "1.85G" in text and "12.2 MiB" in text  # fc6 params, conv1_2 MACs
        assert "138,357,544" in text and "15,470,264,320" in text  # the totals keep every digit
    if model == "googlenet":
        assert "6,379,984 in aux1, aux2" in text


def test_compare_fits_80_columns_with_numbered_sources() -> None:
    rows = compare(input_size=224)
    text = _at_80_columns(render.compare_table(rows, 224), *render.compare_notes(rows, {"alexnet": 63}))
    _fits(text)
    assert "71.59 [1]" in text and "[1] torchvision model docs" in text and "[2] Simonyan & Zisserman" in text
    assert "alexnet: needs >= 63 px" in text and " 138M " in text and "15.5G" in text


def test_wide_tables_keep_every_digit() -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render.trace_table(trace("vgg16"), wide=True))
    console.print(render.compare_table(compare(["vgg16"]), 224, wide=True))
    text = console.export_text()
    assert "102,764,544" in text and "138,357,544" in text and "15,470,264,320" in text


@pytest.mark.parametrize(("value", "binary", "text"), [
    (999, False, "999"), (2_359_296, False, "2.36M"), (138_357_544, False, "138M"),
    (15_470_264_320, False, "15.5G"), (999_999, False, "1M"), (12_845_056, True, "12.2 MiB"), (512, True, "512 B"),
])
def test_compact_units(value: int, binary: bool, text: str) -> None:
    assert render.compact(value, binary) == text


def test_cli_compare_skips_models_too_big_for_the_input_and_summary_switches_aux() -> None:
    from click.testing import CliRunner

    from vggnet.cli import cli

    result = CliRunner().invoke(cli, ["compare", "alexnet", "vgg11", "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "vgg11" in result.stdout and "alexnet: needs >= 63 px" in result.stdout
    result = CliRunner().invoke(cli, ["summary", "googlenet", "--no-aux", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["params"] == 6_624_904
    wide = CliRunner().invoke(cli, ["summary", "vgg16", "--wide"])
    assert wide.exit_code == 0 and "102,764,544" in wide.stdout


def test_filters_fits_80_columns_and_wide_keeps_every_digit() -> None:
    rows = filter_arithmetic()
    text = _at_80_columns(render.filters_table(rows))
    _fits(text)
    assert "295k" in text and "  vs 1 x conv7-128" in text and "128 channels (56x56 map)" in text
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render.filters_table(rows, wide=True))
    assert "1,387,266,048" in console.export_text()  # 3 x conv3-128 at 56x56: 3 * 9 * 128^2 * 56^2
