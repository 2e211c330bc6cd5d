"""Run a benchmark: the two sides alternated over rounds, each round in fresh processes; medians,
achieved GFLOPS from the traced MACs, the measured matmul peaks, and the ratios."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from vggnet.analysis.trace import trace
from vggnet.bench.peak import conv_peak, matmul_peak
from vggnet.bench.workloads import model_kwargs
from vggnet.device import autocast, resolve_device
from vggnet.errors import VggnetError
from vggnet.fastpath import machine_name
from vggnet.models import create_model
from vggnet.progress import progress_bar


def _child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, "-m", "vggnet.bench.workloads", json.dumps(spec)],
                          capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise VggnetError(f"the {spec['side']} benchmark process failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _alternate(spec: dict, baseline: bool, rounds: int, progress: bool) -> dict[str, list[dict]]:
    sides = ["vggnet", "baseline"] if baseline else ["vggnet"]
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with progress_bar(f"bench {spec['kind']} {spec['model']}", total=rounds * len(sides), enabled=progress) as bar:
        for r in range(rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:  # alternate who goes first
                runs[side].append(_child({**spec, "side": side}))
                bar.advance()
    return runs


def _summary(results: list[dict], batch: int, flops_per_image: float) -> dict:
    per_round = [batch / statistics.median(r["step_seconds"]) for r in results]
    ips = statistics.median(per_round)
    working = statistics.median(r["working_memory_mb"] for r in results)
    return {"images_per_second": round(ips, 2), "images_per_second_rounds": [round(v, 2) for v in per_round],
            "gflops": round(ips * flops_per_image / 1e9, 1),
            "peak_memory_mb": statistics.median(r["peak_memory_mb"] for r in results),
            "working_memory_mb": working, "working_memory_mb_per_image": round(working / batch, 2),
            "precision": results[0]["precision"], "channels_last": results[0].get("channels_last", False),
            "threads": results[0]["threads"]}


def _finish(out: dict, runs: dict[str, list[dict]], batch: int, flops: float, dev: torch.device) -> dict:
    """Add vggnet's figures, the measured matmul peaks and fractions, the baseline and the ratios."""
    out |= _summary(runs["vggnet"], batch, flops)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    out["matmul_peak_gflops"] = {k: round(matmul_peak(d, dev), 1) for k, d in dtypes.items()}
    out["conv_peak_gflops"] = {k: round(conv_peak(d, dev), 1) for k, d in dtypes.items()}
    if out["precision"] == "int8":
        from vggnet.bench.int8 import int8_conv_peak

        out["conv_peak_gflops"]["int8"] = round(int8_conv_peak(), 1)
    peaks = {k: max(v, out["matmul_peak_gflops"].get(k, 0.0)) for k, v in out["conv_peak_gflops"].items()}
    out["peak_gflops"] = peaks  # the higher of the two shapes of work, per precision
    # fractions to 4 significant digits: a tiny model on a GPU uses well under 0.1% of its peak
    out["peak_fraction"] = float(f"{out['gflops'] / peaks[out['precision']]:.4g}")  # of the precision used
    out["bf16_peak_fraction"] = float(f"{out['gflops'] / peaks['bf16']:.4g}")
    if "baseline" in runs:
        base = _summary(runs["baseline"], batch, flops)
        out["baseline"] = base
        out["speedup"] = round(out["images_per_second"] / base["images_per_second"], 3)
        if base["working_memory_mb"] > 0:
            out["memory_ratio"] = round(out["working_memory_mb"] / base["working_memory_mb"], 3)
    for key in ("auto_choice", "layout_choice"):  # what auto meant in the process that ran (not for int8)
        if key in runs["vggnet"][0]:
            out[key] = runs["vggnet"][0][key]
    return {**out, "device": str(dev), "machine": machine_name(dev), "torch": torch.__version__}


def _agreement(model_name: str, size: int, n: int, device: torch.device, int8: str | None = None) -> float:
    """Share of real images (the embedded CIFAR-10 sample's held-out photos, resized) whose top-1
    class is the same in fp32 as in bf16 autocast, or as in the int8 file ``int8``."""
    from vggnet.bench.int8 import real_images

    x = real_images("val", n, size).to(device)  # held-out real photos, not noise
    torch.manual_seed(0)
    model = create_model(model_name, **model_kwargs(model_name, size)).eval().to(device)
    runs: list[tuple[torch.nn.Module, torch.dtype | None]] = [(model, None), (model, torch.bfloat16)]
    if int8 is not None:
        from vggnet.weights.onnx_model import OnnxClassifier

        runs[1] = (OnnxClassifier(Path(int8).read_bytes()), None)
    top = []
    for net, dtype in runs:
        with torch.inference_mode(), autocast(device.type, dtype):
            top.append(torch.cat([net(x[i:i + 16]).float().argmax(1) for i in range(0, len(x), 16)]))
    return float((top[0] == top[1]).float().mean())


def bench_infer(model: str, batch_size: int = 8, image_size: int = 224, *, precision: str = "auto",
                compile: bool = False, compile_mode: str = "default", baseline: bool = False, rounds: int = 3,
                steps: int = 5, warmup: int = 2,
                device: str | None = None, agreement: int = 64, progress: bool = True) -> dict:
    """Forward-pass throughput of ``model``; with ``baseline`` also plain eager fp32 NCHW and the ratio."""
    if precision == "int8":  # onnxruntime on the CPU, whatever device torch would pick
        if compile or (device is not None and torch.device(device).type != "cpu"):
            raise VggnetError("--precision int8 runs in onnxruntime on the CPU: no --compile, and --device cpu")
        from vggnet.export import require

        for module in ("onnx", "onnxscript", "onnxruntime"):
            require(module)
        device = "cpu"
    dev = resolve_device(device)
    flops = 2 * trace(model, image_size, **model_kwargs(model, image_size)).macs
    spec = {"kind": "infer", "model": model, "batch_size": batch_size, "image_size": image_size,
            "precision": precision, "compile": compile, "compile_mode": compile_mode, "steps": steps,
            "warmup": warmup, "device": str(dev)}
    with tempfile.TemporaryDirectory(prefix="vggnet-bench-") as tmp:
        if precision == "int8":
            from vggnet.bench.int8 import quantized_model

            spec["onnx"] = str(quantized_model(model, image_size, Path(tmp))[0])
        runs = _alternate(spec, baseline, rounds, progress)
        out = {"bench": "infer", "model": model, "batch_size": batch_size, "image_size": image_size,
               "compile": compile, "compile_mode": compile_mode, "rounds": rounds, "steps": steps}
        if agreement:
            key = "int8_top1_agreement" if precision == "int8" else "bf16_top1_agreement"
            out[key] = round(_agreement(model, image_size, agreement, dev, spec.get("onnx")), 4)
            out["agreement_images"] = agreement
    return _finish(out, runs, batch_size, flops, dev)


def bench_train(model: str, data: str = "synthetic", batch_size: int = 128, *, image_size: int = 32,
                precision: str = "auto", grad_checkpointing: bool = False, compile: bool = False,
                compile_mode: str = "default", baseline: bool = False, rounds: int = 3, steps: int = 10,
                warmup: int = 3, workers: int = 2, device: str | None = None, progress: bool = True) -> dict:
    """Training throughput with the data pipeline; with ``baseline`` also the plain-PyTorch loop."""
    dev = resolve_device(device)
    spec = {"kind": "train", "model": model, "data": data, "batch_size": batch_size, "image_size": image_size,
            "precision": precision, "grad_checkpointing": grad_checkpointing, "compile": compile,
            "compile_mode": compile_mode, "steps": steps, "warmup": warmup, "workers": workers, "device": str(dev)}
    runs = _alternate(spec, baseline, rounds, progress)
    size = runs["vggnet"][0]["image_size"]  # the data's own side; --image-size is for synthetic data
    t = trace(model, size, **model_kwargs(model, size))
    out = {"bench": "train", "model": model, "data": data, "batch_size": batch_size, "image_size": size,
           "grad_checkpointing": grad_checkpointing, "compile": compile, "rounds": rounds, "steps": steps}
    return _finish(out, runs, batch_size, 2 * (t.macs + t.macs_backward), dev)
