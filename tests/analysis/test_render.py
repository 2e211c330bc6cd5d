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
    console.print(render.trace_table(trace("vgg11")))
    console.print(render.compare_table(compare(["vgg11"]), 224))
    console.print(render.filters_table(filter_arithmetic()))
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
