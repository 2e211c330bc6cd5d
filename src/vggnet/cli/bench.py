"""``vggnet bench infer | train``: speed and memory against a plain-PyTorch baseline, as JSON."""

from __future__ import annotations

import functools
import json

import click

from vggnet.cli import cli
from vggnet.cli.options import (
    check_data_arg,
    device_option,
    grad_checkpointing_option,
    image_size_option,
    precision_option,
)
from vggnet.names import PRECISIONS

INFER_PRECISIONS = (*PRECISIONS, "int8")
INT8_HELP = ("auto: fp32 or bf16, whichever a probe measured faster on this device; int8: the model quantized by "
             "onnxruntime (calibrated on sample images, as `vggnet quantize` does) and run there.")


def _common(f, precisions: tuple[str, ...] = PRECISIONS, help_text: str | None = None):
    extra = {"help_text": help_text} if help_text else {}
    for option in reversed([
        click.option("--model", default="vgg16", show_default=True),
        precision_option(precisions, **extra),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the model."),
        click.option("--compile-mode", type=click.Choice(["default", "reduce-overhead", "max-autotune"]),
                     default="default", show_default=True,
                     help="torch.compile mode; reduce-overhead replays CUDA graphs on a GPU."),
        click.option("--baseline", is_flag=True, help="Also run plain PyTorch and report the ratios."),
        click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
                     help="Alternated rounds, each side in a fresh process; medians are reported."),
        device_option(),
        click.option("--quiet", is_flag=True),
    ]):
        f = option(f)
    return f


def _check(model: str, image_size: int | None) -> None:
    """What the benchmark processes would refuse, refused here first, in one line (each side runs
    in a fresh process): an unknown model, images too small for it."""
    from vggnet.models.registry import check_input_size

    check_input_size(model, image_size or 0)  # an unknown name is refused here too


def _report(out: dict) -> None:
    """The table on stderr for the person at the terminal, the JSON alone on stdout: so stdout stays one
    JSON object (``| jq``, ``> result.json`` and ``| tail -1 | jq`` all work) while the table still shows
    when stdout is piped."""
    from rich.console import Console

    from vggnet.bench.render import bench_report

    Console(stderr=True).print(bench_report(out))
    click.echo(json.dumps(out))


@cli.group("bench")
def bench_group() -> None:
    """Benchmarks: images/s, achieved GFLOPS, peak memory; the last line printed is one JSON object."""


@bench_group.command("infer")
@functools.partial(_common, precisions=INFER_PRECISIONS, help_text=INT8_HELP)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@image_size_option(224, minimum=32)
@click.option("--steps", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--agreement", type=click.IntRange(min=0), default=64, show_default=True,
              help="Real images on which to compare top-1 at the precision used with fp32 (0: skip).")
def infer_command(model, precision, compile_, compile_mode, baseline, rounds, device, quiet, batch_size, image_size,
                  steps, agreement) -> None:
    """Forward passes; the baseline is eager fp32 NCHW under no_grad."""
    from vggnet.bench import bench_infer

    _check(model, image_size)
    out = bench_infer(model, batch_size, image_size, precision=precision, compile=compile_, compile_mode=compile_mode,
                      baseline=baseline,
                      rounds=rounds, steps=steps, device=device, agreement=agreement, progress=not quiet)
    _report(out)


@bench_group.command("train")
@_common
@click.option("--data", default="synthetic", show_default=True, help="'synthetic' or a PATH of small images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@image_size_option(32, minimum=32, help_text="Side of synthetic images (data from a PATH keeps its own).")
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True)
@grad_checkpointing_option()
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="DataLoader workers of the baseline.")
def train_command(model, precision, compile_, compile_mode, baseline, rounds, device, quiet, data, batch_size,
                  image_size, steps, grad_checkpointing, workers) -> None:
    """Training steps with the data pipeline; the baseline is per-sample augmentation in a DataLoader,
    eager fp32 NCHW, SGD."""
    from vggnet.bench import bench_train

    _check(model, image_size if data == "synthetic" else None)
    check_data_arg(data, extra=("synthetic",))  # before the benchmark processes start
    out = bench_train(model, data, batch_size, image_size=image_size, precision=precision,
                      grad_checkpointing=bool(grad_checkpointing), compile=compile_, compile_mode=compile_mode,
                      baseline=baseline, rounds=rounds,
                      steps=steps, workers=workers, device=device, progress=not quiet)
    _report(out)
