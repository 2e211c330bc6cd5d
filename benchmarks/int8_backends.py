"""Which int8 backend vggnet uses, decided by measurement: onnxruntime's static QDQ model against
PyTorch's PT2E flow (torchao's X86InductorQuantizer + torch.compile), both beside plain fp32.

    python benchmarks/int8_backends.py [--model vgg16] [--batch-size 8] [--image-size 224] [--rounds 3]

Each backend runs in its own fresh process, alternated over rounds (as `vggnet bench` does), on the
same seeded random-weight network calibrated on the same real photos (the embedded sample). PT2E needs
``pip install torchao`` (it is not a vggnet dependency); without it that row says so. Prints one JSON
line and a table; the setup time (quantize, compile) is reported apart from the images/s. The
onnxruntime file is quantized once, by this process, and each timed process only loads it, as
`vggnet bench` and `vggnet quantize` users do; PT2E has no file, so it quantizes and compiles in
every process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

BACKENDS = ("fp32", "onnxruntime", "pt2e")


def _child(spec: dict) -> dict:
    """One backend in this process: setup seconds and the median seconds per batch."""
    from vggnet.bench.int8 import CALIBRATION_IMAGES, real_images
    from vggnet.bench.workloads import model_kwargs, timed
    from vggnet.models import create_model

    torch.manual_seed(0)
    b, s, name = spec["batch_size"], spec["image_size"], spec["model"]
    x = torch.randn(b, 3, s, s)
    start = time.perf_counter()
    if spec["backend"] == "fp32":
        net = create_model(name, **model_kwargs(name, s)).eval()
        step = torch.no_grad()(lambda: net(x))
    elif spec["backend"] == "onnxruntime":  # the file was quantized by the parent: calibration's
        from vggnet.weights.onnx_model import OnnxClassifier  # spinning thread pools never share the timing

        net = OnnxClassifier(Path(spec["onnx"]).read_bytes())
        step = lambda: net(x)  # noqa: E731
    else:
        step = _pt2e(create_model(name, **model_kwargs(name, s)).eval(), x, real_images("train", CALIBRATION_IMAGES, s))
    setup = time.perf_counter() - start
    return {"setup_seconds": round(setup, 1), "seconds": statistics.median(timed(step, 2, spec["steps"], x.device))}


def _pt2e(net: torch.nn.Module, x: torch.Tensor, calibration: torch.Tensor):
    import torch._inductor.config as inductor
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with torch.no_grad():
        exported = torch.export.export(net, (x,)).module()
        quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        for i in range(0, len(calibration) - len(x) + 1, len(x)):  # the export fixed the batch size
            prepared(calibration[i:i + len(x)])
        inductor.freezing = True
        compiled = torch.compile(convert_pt2e(prepared))
        compiled(x)
    return torch.no_grad()(lambda: compiled(x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    try:
        import torchao  # noqa: F401
        backends = BACKENDS
    except ImportError:
        backends = BACKENDS[:2]
    from vggnet.bench.int8 import quantized_model

    tmp = tempfile.TemporaryDirectory(prefix="vggnet-int8-")
    started = time.perf_counter()
    onnx_file = str(quantized_model(args.model, args.image_size, Path(tmp.name))[0])
    quantize_seconds = round(time.perf_counter() - started, 1)
    runs: dict[str, list[dict]] = {b: [] for b in backends}
    for r in range(args.rounds):
        for backend in backends if r % 2 == 0 else backends[::-1]:
            spec = {"backend": backend, "model": args.model, "batch_size": args.batch_size,
                    "image_size": args.image_size, "steps": args.steps, "onnx": onnx_file}
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                  text=True, check=True)
            runs[backend].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {backend}: {args.batch_size / runs[backend][-1]['seconds']:.2f} img/s",
                  file=sys.stderr)
    from vggnet.fastpath import cpu_model

    out = {"model": args.model, "batch_size": args.batch_size, "image_size": args.image_size,
           "machine": f"{cpu_model()}, {torch.get_num_threads()} threads", "torch": torch.__version__}
    for backend, results in runs.items():
        ips = statistics.median(args.batch_size / r["seconds"] for r in results)
        out[backend] = {"images_per_second": round(ips, 2),
                        "setup_seconds": statistics.median(r["setup_seconds"] for r in results)}
    for backend in backends[1:]:
        out[backend]["speedup_vs_fp32"] = round(out[backend]["images_per_second"] / out["fp32"]["images_per_second"], 2)
    out["onnxruntime"]["setup_seconds"] = round(out["onnxruntime"]["setup_seconds"] + quantize_seconds, 1)
    if "pt2e" not in runs:
        out["pt2e"] = "not measured: pip install torchao"
    tmp.cleanup()
    print(f"{'backend':<12} {'img/s':>8} {'x fp32':>7} {'setup s':>8}", file=sys.stderr)
    for backend in backends:
        row = out[backend]
        print(f"{backend:<12} {row['images_per_second']:>8.2f} {row.get('speedup_vs_fp32', 1.0):>7.2f} "
              f"{row['setup_seconds']:>8.1f}", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
