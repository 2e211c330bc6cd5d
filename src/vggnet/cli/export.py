"""``vggnet export``: a checkpoint or pretrained weights as an ONNX file."""

from __future__ import annotations

from pathlib import Path

import click

from vggnet.cli import cli
from vggnet.cli.options import check_data_arg, device_option
from vggnet.errors import VggnetError
from vggnet.names import CALIBRATION_IMAGES as DEFAULT_IMAGES
from vggnet.names import EXPORT_FORMATS
from vggnet.terminal import printable_text


def _default_out(source: str, fully_convolutional: bool, tag: str = "") -> Path:
    """Beside the run's run.json for a run, epoch or checkpoint inside it (never in an epoch folder,
    which checkpoint rotation deletes); beside a weight file; in the current folder for a name."""
    from vggnet.data.split_record import run_dir_of

    path = Path(source)
    suffix = ("-fully-conv" if fully_convolutional else "") + tag + ".onnx"
    run = run_dir_of(path) if path.exists() else None
    if run is not None:
        here = path.resolve()
        epoch = next((p.name for p in (here, *here.parents) if p.parent == run / "checkpoints"), None)
        return run / (f"model-{epoch}{suffix}" if epoch else f"model{suffix}")
    if path.exists():
        return path.with_name(path.stem + suffix)
    return Path(f"{source}{suffix}")  # a known weight name: the current directory


def _on_device(net, device: str | None):
    """``net`` on ``device`` for --verify, taking and giving CPU tensors (onnxruntime compares on the CPU);
    ``net`` itself when no device is named."""
    if device is None:
        return net
    import torch

    from vggnet.device import resolve_device

    dev = resolve_device(device)
    net = net.to(dev)

    class OnDevice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.to(dev)).cpu()

    return OnDevice().eval()


@cli.command("export")
@click.option("--checkpoint", type=click.Path(exists=True), default=None, help="A run dir, epoch dir or .safetensors.")
@click.option("--weights", default=None, help="Or pretrained weights: a known name or a .pth/.h5 file.")
@click.option("--model", default=None, help="The network, only where the weight file does not say.")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="onnx", show_default=True)
@click.option("--fully-convolutional", is_flag=True,
              help="The paper's test net: any image size in, a class score map out.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Output file [beside the checkpoint: model.onnx, model-fully-conv.onnx].")
@click.option("--verify", is_flag=True, help="Run the file in onnxruntime and compare with PyTorch.")
@click.option("--precision", type=click.Choice(("fp32", "int8")), default="fp32", show_default=True,
              help="int8: a statically quantized model, calibrated on --calibrate (as `vggnet quantize`).")
@click.option("--calibrate", default=None, help="With --precision int8: the images that set the int8 ranges.")
@device_option("Where --verify runs the PyTorch reference: cpu, cuda, cuda:1, mps [cpu]; the export itself "
               "traces on the CPU (an ONNX file is the same whichever device made it).")
def export_command(checkpoint, weights, model, fmt, fully_convolutional, out, verify, precision, calibrate,
                   device) -> None:
    """Export to ONNX with a dynamic batch (and image size, for --fully-convolutional)."""
    import torch

    from vggnet.export import export_model_onnx, require, verify_onnx
    from vggnet.models import to_fully_convolutional
    from vggnet.weights.load import model_for_inference

    if (checkpoint is None) == (weights is None):
        raise VggnetError("export needs one of --checkpoint or --weights")
    source = checkpoint or weights
    if precision == "int8":
        if fully_convolutional or calibrate is None or verify or device is not None:
            raise VggnetError("--precision int8 needs --calibrate DATA and the classifier form (no "
                              "--fully-convolutional); it reports fp32 vs int8 accuracy instead of --verify")
        check_data_arg(calibrate)
        _quantize(source, calibrate, Path(out) if out else _default_out(source, False, "-int8"), model,
                  batch_size=32, seed=0,
                  images=DEFAULT_IMAGES, score=True, as_json=False, strict=False)
        return
    if calibrate is not None:
        raise VggnetError("--calibrate is for --precision int8")
    if Path(source).suffix == ".onnx":
        raise VggnetError(f"{source} is already an ONNX file; export the checkpoint or weights it came from")
    for module in ("onnx", "onnxscript", *(("onnxruntime",) if verify else ())):  # before the weights are read
        require(module)
    net, meta = model_for_inference(source, model)  # read once: exported, then verified
    if fully_convolutional:
        net = to_fully_convolutional(net).eval()
    path = export_model_onnx(net, meta, out or _default_out(source, fully_convolutional))
    click.echo(f"wrote {printable_text(str(path))} ({path.stat().st_size / 2**20:.1f} MiB)")
    if verify:
        reference = _on_device(net, device)
        size = meta["image_size"]
        shapes = [(3, 3, size, size)]
        if fully_convolutional:
            shapes.append((2, 3, size + 64, size + 32))
        for shape in shapes:
            diff = verify_onnx(path, reference, torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
            click.echo(f"onnxruntime vs PyTorch on {shape}: max abs difference {diff:.2e}")


def _quantize(source: str, calibrate: str, out: Path, model: str | None, *, batch_size: int, seed: int, images: int,
              score: bool, as_json: bool, strict: bool) -> None:
    import json

    from vggnet.quantize import quantize_model

    result = quantize_model(source, calibrate, out, model_name=model, images=images, batch_size=batch_size,
                            seed=seed, score=score, progress=not as_json, strict=strict)
    if as_json:
        click.echo(json.dumps(result))
        return
    cal = result["calibration"]
    click.echo(f"wrote {printable_text(result['out'])} ({result['bytes'] / 2**20:.1f} MiB, int8) in "
               f"{result['seconds']:.0f} s; calibrated on {printable_text(cal['images_are'])}")
    acc = result.get("accuracy")
    if acc is None:
        click.echo(f"accuracy: not scored ({printable_text(str(result.get('unscored')))})")
        return
    click.echo(f"top-1 fp32 {acc['fp32_top1']:.2%}, int8 {acc['int8_top1']:.2%} "
               f"({acc['top1_change_points']:+.2f} points); top-1 agreement {acc['top1_agreement']:.2%}; "
               f"on {printable_text(acc['images_are'])}")


@cli.command("quantize")
@click.option("--checkpoint", type=click.Path(exists=True), default=None, help="A run dir, epoch dir or .safetensors.")
@click.option("--weights", default=None, help="Or pretrained weights: a known name or a .pth/.h5 file.")
@click.option("--model", default=None, help="The network, only where the weight file does not say.")
@click.option("--calibrate", required=True,
              help="The images that set the int8 ranges: the run's data (its training images are used, its "
                   "held-out ones scored), a class folder, an archive, 'cifar10' or 'sample'.")
@click.option("--calibration-images", type=click.IntRange(min=1), default=DEFAULT_IMAGES, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Output file [beside the checkpoint: model-int8.onnx].")
@click.option("--score/--no-score", default=True, show_default=True,
              help="Score fp32 and int8 on images calibration did not use (the run's held-out split).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Which calibration images are drawn.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the lines.")
@click.option("--strict", is_flag=True, help="Stop at the first image that cannot be decoded.")
def quantize_command(checkpoint, weights, model, calibrate, calibration_images, out, score, batch_size, seed,
                     as_json, strict) -> None:
    """Static int8 quantization (onnxruntime QDQ, calibrated on your images) to an ONNX file that
    predict, evaluate and `bench infer --precision int8` take; reports the accuracy it costs."""
    if (checkpoint is None) == (weights is None):
        raise VggnetError("quantize needs one of --checkpoint or --weights")
    check_data_arg(calibrate)  # before the weights are read
    source = checkpoint or weights
    _quantize(source, calibrate, Path(out) if out else _default_out(source, False, "-int8"), model,
              batch_size=batch_size, seed=seed, images=calibration_images, score=score, as_json=as_json,
              strict=strict)
