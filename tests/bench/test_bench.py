"""The benchmarks run both sides in their own processes and report consistent figures (speed
itself is never asserted: it is measured by the commands, not by tests)."""

import json

import pytest
import torch
from click.testing import CliRunner

from vggnet.analysis.trace import trace
from vggnet.bench import bench_infer, bench_train, matmul_peak
from vggnet.cli import cli

KEYS = {"images_per_second", "gflops", "peak_memory_mb", "working_memory_mb", "precision", "device", "torch",
        "threads", "machine"}


def test_matmul_peak_is_a_rate():
    assert matmul_peak(torch.float32, n=64, seconds=0.01) > 0


def test_infer_reports_both_sides_and_consistent_ratios():
    out = bench_infer("vgg11_bn", 2, 32, baseline=True, rounds=1, steps=1, warmup=1, agreement=4, progress=False)
    assert set(out) >= KEYS and KEYS - {"device", "torch", "machine"} <= set(out["baseline"])
    flops = 2 * trace("vgg11_bn", 32, num_classes=10, head="linear", dropout=0.0).macs
    assert out["gflops"] == pytest.approx(out["images_per_second"] * flops / 1e9, rel=0.01, abs=0.05)  # 0.1 steps
    assert out["speedup"] == pytest.approx(out["images_per_second"] / out["baseline"]["images_per_second"], rel=0.01)
    assert set(out["matmul_peak_gflops"]) == {"fp32", "bf16"} and 0 <= out["bf16_top1_agreement"] <= 1
    assert out["peak_fraction"] == pytest.approx(out["gflops"] / out["matmul_peak_gflops"][out["precision"]], rel=0.01)
    # the reported auto choice is the one the vggnet process ran with (here VGGNET_PROBE=off: fp32, channels_last)
    assert out["channels_last"] and not out["baseline"]["channels_last"]
    assert out["auto_choice"].startswith(f"{out['precision']}, channels_last")


def test_train_runs_the_training_step_and_the_baseline_loader():
    out = bench_train("vgg11_bn", "synthetic", 8, baseline=True, rounds=1, steps=1, warmup=1, workers=0,
                      grad_checkpointing=True, progress=False)
    assert set(out) >= KEYS and out["grad_checkpointing"] is True
    assert out["baseline"]["precision"] == "fp32" and out["speedup"] > 0


def test_cli_prints_json_last_and_names_a_failed_side():
    result = CliRunner().invoke(cli, ["bench", "train", "--model", "vgg11_bn", "--batch-size", "4", "--steps", "1",
                                      "--rounds", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["bench"] == "train"
    bad = CliRunner().invoke(cli, ["bench", "train", "--model", "vgg11_bn", "--data", "/no/such", "--rounds", "1",
                                   "--quiet"])
    assert bad.exit_code == 2 and bad.stderr == "error: unknown dataset '/no/such': not 'synthetic', 'cifar10', " \
        "'sample', nor an existing path\n"
