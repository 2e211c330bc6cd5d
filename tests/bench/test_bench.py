"""The benchmarks run both sides in their own processes and report consistent figures (speed
itself is never asserted: it is measured by the commands, not by tests)."""

import json

import pytest
import torch
from click.testing import CliRunner

from vggnet.analysis.trace import trace
from vggnet.bench import bench_infer, bench_train, matmul_peak
from vggnet.bench.peak import conv_flops, conv_peak
from vggnet.cli import cli
from vggnet.errors import VggnetError

KEYS = {"images_per_second", "gflops", "peak_memory_mb", "working_memory_mb", "precision", "device", "torch",
        "threads", "machine"}


def test_matmul_peak_is_a_rate():
    assert matmul_peak(torch.float32, n=64, seconds=0.01) > 0


def test_conv_peak_is_a_rate_of_vgg_conv3_work():
    assert conv_flops(1) == 2 * 256 * 256 * 9 * 56 * 56  # 3.7 GFLOP per image, as the MAC trace counts conv3
    assert conv_peak(torch.float32, seconds=0.01) > 0


def test_int8_runs_the_quantized_model_in_onnxruntime_and_reports_its_peak_and_agreement():
    out = bench_infer("vgg11", 2, 32, precision="int8", baseline=True, rounds=1, steps=1, warmup=0, agreement=8,
                      progress=False)
    assert out["precision"] == "int8" and out["baseline"]["precision"] == "fp32"
    assert out["conv_peak_gflops"]["int8"] > 0 and "int8" not in out["matmul_peak_gflops"]
    assert out["peak_fraction"] == pytest.approx(out["gflops"] / out["peak_gflops"]["int8"], rel=0.01)
    assert 0 <= out["int8_top1_agreement"] <= 1 and "bf16_top1_agreement" not in out
    with pytest.raises(VggnetError, match="no --compile, and --device cpu"):
        bench_infer("vgg11", 2, 32, precision="int8", compile=True, progress=False)


def test_infer_reports_both_sides_and_consistent_ratios():
    out = bench_infer("vgg11_bn", 2, 32, baseline=True, rounds=1, steps=1, warmup=1, agreement=4, progress=False)
    assert set(out) >= KEYS and KEYS - {"device", "torch", "machine"} <= set(out["baseline"])
    flops = 2 * trace("vgg11_bn", 32, num_classes=10, head="linear", dropout=0.0).macs
    assert out["gflops"] == pytest.approx(out["images_per_second"] * flops / 1e9, rel=0.01, abs=0.05)  # 0.1 steps
    assert out["speedup"] == pytest.approx(out["images_per_second"] / out["baseline"]["images_per_second"], rel=0.01)
    assert set(out["matmul_peak_gflops"]) == {"fp32", "bf16"} and 0 <= out["bf16_top1_agreement"] <= 1
    peaks = out["peak_gflops"]
    assert peaks == {k: max(out["matmul_peak_gflops"][k], out["conv_peak_gflops"][k]) for k in ("fp32", "bf16")}
    assert out["peak_fraction"] == pytest.approx(out["gflops"] / peaks[out["precision"]], rel=0.01)
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


def test_a_benchmark_process_reports_its_own_peak_memory_not_its_parents():
    """Linux carries ru_maxrss over fork and exec: a child of a 1.5 GB parent would report 1.5 GB."""
    import subprocess
    import sys

    big = bytearray(1536 * 2**20)
    big[:: 4096] = b"\1" * len(big[:: 4096])  # touch every page: the parent's resident set is 1.5 GB
    code = "from vggnet.bench.workloads import _peak_mb; print(_peak_mb())"
    peak = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    del big
    assert 0 < peak < 1024  # torch imported, a few hundred MB; never the parent's 1.5 GB


def test_the_peak_is_reset_once_setup_is_done():
    from vggnet.bench.workloads import _peak_mb, _reset_peak, _rss_mb

    big = bytearray(512 * 2**20)
    big[:: 4096] = b"\1" * len(big[:: 4096])
    del big  # setup's transient peak, e.g. a layout probe's copy of the model
    _reset_peak()
    assert _peak_mb() < _rss_mb() + 256
