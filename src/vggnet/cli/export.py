"""``vggnet export``: a checkpoint or pretrained weights as an ONNX file."""

from __future__ import annotations

from pathlib import Path

import click

from vggnet.cli import cli
from vggnet.cli.options import device_option
from vggnet.errors import VggnetError
from vggnet.names import EXPORT_FORMATS
from vggnet.terminal import printable_text


def _default_out(source: str, fully_convolutional: bool) -> Path:
    path = Path(source)
    suffix = "-fully-conv.onnx" if fully_convolutional else ".onnx"
    if path.is_dir():  # a run or epoch dir: the file goes inside it
        return path / f"model{suffix}"
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
@device_option("Where --verify runs the PyTorch reference: cpu, cuda, cuda:1, mps [cpu]; the export itself "
               "traces on the CPU (an ONNX file is the same whichever device made it).")
def export_command(checkpoint, weights, model, fmt, fully_convolutional, out, verify, device) -> None:
    """Export to ONNX with a dynamic batch (and image size, for --fully-convolutional)."""
    import torch

    from vggnet.export import export_model_onnx, require, verify_onnx
    from vggnet.models import to_fully_convolutional
    from vggnet.weights.load import model_for_inference

    if (checkpoint is None) == (weights is None):
        raise VggnetError("export needs one of --checkpoint or --weights")
    source = checkpoint or weights
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
