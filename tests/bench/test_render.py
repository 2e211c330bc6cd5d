"""`vggnet bench`'s table: readable at 80 columns, the JSON still alone on stdout's last line."""

import io
import json

from click.testing import CliRunner
from rich.console import Console

import vggnet.bench
from vggnet.bench.render import bench_report, bench_table
from vggnet.cli import cli

SIDE = {"images_per_second": 5.73, "images_per_second_rounds": [5.7, 5.73, 5.8], "gflops": 177.4,
        "peak_memory_mb": 328.0, "working_memory_mb": 180.2, "working_memory_mb_per_image": 22.53,
        "precision": "fp32", "threads": 16}
RESULT = {"bench": "infer", "model": "vgg16", "batch_size": 8, "image_size": 224, "compile": False,
          "compile_mode": "default", "rounds": 3, "steps": 5, "bf16_top1_agreement": 0.9844, "agreement_images": 64,
          **SIDE, "images_per_second": 8.57, "images_per_second_rounds": [8.5, 8.57, 8.6], "gflops": 265.3,
          "working_memory_mb": 120.5, "matmul_peak_gflops": {"fp32": 330.1, "bf16": 1250.4}, "peak_fraction": 0.8037,
          "bf16_peak_fraction": 0.2122, "baseline": SIDE, "speedup": 1.496, "memory_ratio": 0.669, "device": "cpu",
          "machine": "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz with a rather long name, 16 cores",
          "torch": "2.5.1+cpu"}


def render(renderable) -> list[str]:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.file.getvalue().splitlines()


def test_table_fits_80_columns_with_both_sides_and_the_ratios():
    lines = render(bench_report(RESULT))
    assert max(map(len, lines)) <= 80
    text = "\n".join(lines)
    images = next(line for line in lines if "images/s " in line and "│" in line)
    assert "8.57" in images and "5.73" in images and "1.50x" in images
    assert "0.67x" in text and "80.4%" in text and "53.7%" in text  # memory ratio, shares of the fp32 peak
    assert lines[0].startswith("bench infer vgg16, batch 8, 224 px") and "98.4% of 64 real images" in text


def test_without_a_baseline_only_vggnet_is_shown():
    alone = {k: v for k, v in RESULT.items() if k not in ("baseline", "speedup", "memory_ratio")}
    lines = render(bench_table(alone))
    assert max(map(len, lines)) <= 80 and "baseline" not in "\n".join(lines) and "ratio" not in lines[1]


def test_train_result_names_its_data_and_checkpointing():
    train = {**RESULT, "bench": "train", "data": "synthetic", "grad_checkpointing": True}
    del train["bf16_top1_agreement"], train["agreement_images"]
    first = render(bench_report(train))[0]
    assert "bench train vgg16" in first and "data synthetic" in first and "grad checkpointing" in first


def test_cli_puts_the_table_on_stderr_and_only_json_on_stdout(monkeypatch):
    monkeypatch.setattr(vggnet.bench, "bench_infer", lambda *a, **k: RESULT)
    result = CliRunner().invoke(cli, ["bench", "infer", "--model", "vgg11", "--image-size", "32", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == RESULT and len(result.stdout.splitlines()) == 1  # `| jq` works
    assert "images/s" in result.stderr and max(map(len, result.stderr.splitlines())) <= 80
