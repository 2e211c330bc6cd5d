"""The sweep: bad input to every ``vggnet`` command ends in one line and exit code 2.

Each row runs one command line through click's CliRunner and checks what the CLI promises: exit
code 2; on stderr exactly one non-empty line, ``error: ...`` (vggnet's own checks) or, for
what click's option types refuse, click's usage block ending in ``Error: ...``; no traceback
and no raw control character anywhere; and nothing written where the command would write.

Placeholders in a row's arguments: {data} tiny class folders, {run} a tiny trained run, {junk}
random bytes (.bin, .pth, .safetensors, .h5, .jpg, .tar.gz), {empty} and {empty_run} empty
folders, {file} a text file, {missing} a path that does not exist, {out} where the row's command
would write (it must still not exist afterwards), {fifo} a named pipe, {forged} an archive whose only member's
name forges an error line, {forged_jpg} an undecodable image with such a name, {userdir} a
folder of the user's files, {bad_cifar} a CIFAR archive with a label out of range.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.helpers import colour_folders, make_cifar_archive, write_tar
from vggnet.cli import cli

FORGED = "x\n\x1b[31merror: forged"
OTHERS = {
    "lead": "owned by the lead (train loop / run directories)",
    "weights": "owned by the weights agent (hostile weight files)",
    "data": "owned by the data agent (hostile archives and datasets)",
    "bench": "owned by src/vggnet/bench: the data is checked in the benchmark process, after its progress bar",
}


@dataclass
class Row:
    id: str
    args: list[str]
    message: str | None  # in the error line (None: only the format is checked)
    usage: bool = False  # click's usage error (exit 2, 'Error: ...' last), not vggnet's one line
    writes: str = "{out}"  # must not exist after the command
    env: dict[str, str] = field(default_factory=dict)
    owner: str | None = None  # another agent's work: xfail(strict=False) while it still fails


def R(id: str, *args: str, msg: str | None = None, usage: bool = False, writes: str = "{out}",
      env: dict[str, str] | None = None, owner: str | None = None) -> Row:
    return Row(id, list(args), msg, usage, writes, env or {}, owner)


TRAIN = ("train", "--model", "vgg11", "--data", "{data}", "--out", "{out}", "--epochs", "1")
EVAL = ("evaluate", "--checkpoint", "{run}", "--data", "{data}", "--out", "{out}")
IMG = "{data}/val/red/0.png"
DEVICE_FOO = "unknown device 'foo'; valid: cpu, cuda, cuda:N"
CUDA_99 = "device cuda:99 "  # not available (no CUDA) or does not exist (fewer GPUs)
NO_CKPT = "no checkpoint at"

ROWS = [
    R("unknown-command", "frobnicate", msg="No such command 'frobnicate'", usage=True),
    # models, summary, compare, filters
    R("models-no-match", "models", "zzz", msg="no registered model matches 'zzz'"),
    R("models-extra-argument", "models", "a", "b", msg="unexpected extra argument", usage=True),
    R("summary-unknown-model", "summary", "vgg17", msg="unknown model 'vgg17'; valid names:"),
    R("summary-zero-size", "summary", "vgg16", "--image-size", "0", msg="0 is not in the range x>=1", usage=True),
    R("summary-too-small", "summary", "vgg16", "--image-size", "16", msg="vgg16 cannot take a 3x16x16 input"),
    R("summary-alexnet-too-small", "summary", "alexnet", "--image-size", "32", msg="H, W >= 63"),
    R("summary-png-is-a-folder", "summary", "vgg11", "--png", "{empty}", msg="is a directory", usage=True),
    R("summary-png-under-a-file", "summary", "vgg11", "--json", "--png", "{file}/x.png",
      msg="Not a directory: {file}", writes="{file}/x.png"),
    R("summary-zero-classes", "summary", "vgg11", "--num-classes", "0", msg="0 is not in the range", usage=True),
    R("summary-bad-dtype", "summary", "vgg11", "--precision", "fp64", msg="'fp64' is not one of", usage=True),
    R("compare-unknown-model", "compare", "vgg99", msg="unknown model 'vgg99'"),
    R("compare-too-small", "compare", "--image-size", "16", msg="16 is not in the range x>=32", usage=True),
    R("compare-alexnet-at-32", "compare", "alexnet", "--image-size", "32", msg="H, W >= 63"),
    R("filters-stack-too-deep", "filters", "--max-stack", "9", msg="9 is not in the range 2<=x<=8", usage=True),
    R("filters-zero-channels", "filters", "--channels", "0", msg="0 is not in the range x>=1", usage=True),
    R("filters-negative-size", "filters", "--size", "-1", msg="-1 is not in the range x>=1", usage=True),
    # train: devices and recipe values, all refused before any data is read
    R("train-device-foo", *TRAIN, "--device", "foo", msg=DEVICE_FOO),
    R("train-device-cuda-99", *TRAIN, "--device", "cuda:99", msg=CUDA_99),
    R("train-label-smoothing", *TRAIN, "--set", "label_smoothing=1.5", msg="recipe label_smoothing must be in [0, 1)"),
    R("train-negative-momentum", *TRAIN, "--set", "momentum=-1", msg="recipe momentum must be in [0, 1), got -1.0"),
    R("train-negative-decay", *TRAIN, "--set", "weight_decay=-1", msg="recipe weight_decay must be in [0, 1]"),
    R("train-negative-workers", *TRAIN, "--set", "workers=-1", msg="recipe workers must be in [0, 256], got -1"),
    R("train-drop-factor-1", *TRAIN, "--set", "lr_drop_factor=1", msg="recipe lr_drop_factor must be in (0, 1)"),
    R("train-negative-val-fraction", *TRAIN, "--set", "val_fraction=-0.1", msg="recipe val_fraction must be in [0, 1)"),
    R("train-pad-mode-edge", *TRAIN, "--set", "pad_mode=edge", msg="recipe pad_mode must be one of zeros, reflect"),
    R("train-negative-lookahead", *TRAIN, "--set", "lookahead=-1", msg="recipe lookahead must be in [0, 10000]"),
    R("train-stem-bias-on-plateau", *TRAIN, "--set", "stem_bias_epochs=3", "--set", "schedule=plateau",
      msg="stem_bias_epochs freezes the stem's bias through the per-step schedule"),
    R("train-test-scale-below-crop", *TRAIN, "--set", "test_scale=100", msg="recipe test_scale 100 is below the crop"),
    R("train-huge-image-size", *TRAIN, "--set", "image_size=10000", msg="recipe image_size must be in [0, 1024]"),
    R("train-lr-nan", *TRAIN, "--lr", "nan", msg="recipe lr must be in (0, 1e+12], got nan"),
    R("train-set-lr-inf", *TRAIN, "--set", "lr=inf", msg="recipe lr must be in (0, 1e+12], got inf"),
    R("train-set-lr-empty", *TRAIN, "--set", "lr=", msg="recipe field lr (float) cannot be ''"),
    R("train-set-zero-batch", *TRAIN, "--set", "batch_size=0", msg="recipe batch_size must be in [1, 65536], got 0"),
    R("train-set-precision-fp16", *TRAIN, "--set", "precision=fp16", msg="recipe precision must be one of auto"),
    R("train-set-bad-scale", *TRAIN, "--set", "scale=abc", msg="recipe field scale (tuple[int, int]) cannot be 'abc'"),
    R("train-set-unknown-field", *TRAIN, "--set", "speed=2", msg="unknown recipe field 'speed'"),
    R("train-set-without-value", *TRAIN, "--set", "lr", msg="--set takes FIELD=VALUE, got 'lr'"),
    R("train-zero-batch", *TRAIN, "--batch-size", "0", msg="0 is not in the range x>=1", usage=True),
    R("train-zero-epochs", "train", "--model", "vgg11", "--data", "{data}", "--epochs", "0",
      msg="0 is not in the range x>=1", usage=True),
    R("train-zero-lr", *TRAIN, "--lr", "0", msg="0 is not in the range x>0", usage=True),
    R("train-unknown-recipe", *TRAIN, "--recipe", "nope", msg="'nope' is not one of", usage=True),
    R("train-unknown-model", "train", "--model", "vgg99", "--data", "{data}", "--out", "{out}", msg="unknown model"),
    R("train-no-model", "train", "--data", "{data}", "--out", "{out}", msg="train needs --model"),
    R("train-alexnet-on-cifar-sample", "train", "--model", "alexnet", "--data", "sample", "--out", "{out}",
      msg="alexnet needs images of at least 63 px, got 32 px: resize them with --set image_size=63"),
    R("train-alexnet-small-image-size", *TRAIN[:2], "alexnet", *TRAIN[3:], "--set", "image_size=48",
      msg="alexnet needs images of at least 63 px, got 48 px"),
    R("train-alexnet-on-32px-folders", "train", "--model", "alexnet", "--data", "{data}", "--out", "{out}",
      "--set", "workers=0", "--quiet", msg="63"),
    R("train-missing-data", "train", "--model", "vgg11", "--data", "{missing}", "--out", "{out}",
      msg="unknown dataset"),
    R("train-junk-data", "train", "--model", "vgg11", "--data", "{junk}.bin", "--out", "{out}"),
    R("train-text-file-as-data", "train", "--model", "vgg11", "--data", "{file}", "--out", "{out}"),
    R("train-empty-data", "train", "--model", "vgg11", "--data", "{empty}", "--out", "{out}", msg="no images found"),
    R("train-fifo-as-data", "train", "--model", "vgg11", "--data", "{fifo}", "--out", "{out}"),
    R("train-forged-archive", "train", "--model", "vgg11", "--data", "{forged}", "--out", "{out}"),
    R("train-cifar-label-out-of-range", "train", "--model", "vgg11", "--data", "{bad_cifar}", "--out", "{out}",
      msg="label"),
    R("train-unknown-weights", *TRAIN, "--weights", "vgg17", msg="unknown weights 'vgg17'; known:"),
    R("train-missing-weights", *TRAIN, "--weights", "{missing}.pth", msg="no weight file {missing}.pth"),
    R("train-folder-as-weights", *TRAIN, "--weights", "{empty}", msg="{empty} is a directory"),
    R("train-fifo-as-weights", *TRAIN, "--weights", "{fifo}", msg="not a regular file (a FIFO)"),
    R("train-missing-init-from", *TRAIN, "--set", "init_from={empty}", msg=f"{NO_CKPT} {{empty}}"),
    R("train-junk-weights", *TRAIN, "--weights", "{junk}.pth", msg="{junk}.pth"),
    R("train-junk-init-from", *TRAIN, "--set", "init_from={junk}.safetensors", msg="{junk}.safetensors",
      ),
    R("train-weights-and-init-from", *TRAIN, "--weights", "vgg11", "--set", "init_from={run}",
      msg="a recipe starts from weights or from a shallower net (init_from), not both"),
    R("train-resume-missing", "train", "--resume", "{missing}", msg="does not exist", usage=True),
    R("train-resume-a-file", "train", "--resume", "{file}", msg="is a file", usage=True),
    R("train-resume-empty-folder", "train", "--resume", "{empty_run}", msg="no readable run.json",
      writes="{empty_run}/*"),
    R("train-resume-and-lr", "train", "--resume", "{run}", "--lr", "0.1", msg="only --epochs (and --data"),
    R("train-resume-and-seed", "train", "--resume", "{run}", "--seed", "5", msg="only --epochs (and --data"),
    R("train-resume-and-out", "train", "--resume", "{run}", "--out", "{out}", msg="only --epochs (and --data"),
    R("train-resume-and-recipe", "train", "--resume", "{run}", "--recipe", "paper", msg="only --epochs (and --data"),
    R("train-into-a-run-checkpoints", *TRAIN[:5], "--out", "{run}/checkpoints/x", msg="is inside a training run"),
    R("train-out-is-a-file", *TRAIN[:5], "--out", "{file}", msg="is a file", usage=True, writes="{missing}"),
    R("train-out-holds-user-files", *TRAIN[:5], "--out", "{userdir}", msg="vggnet will not write among your files",
      writes="{userdir}/.vggnet.lock"),
    # evaluate
    R("evaluate-no-source", "evaluate", "--data", "{data}", "--out", "{out}",
      msg="evaluate needs one of --checkpoint or --weights"),
    R("evaluate-unknown-weights", "evaluate", "--weights", "vgg17", "--data", "{data}", "--out", "{out}",
      msg="vgg17"),
    R("evaluate-weights-wrong-classes", "evaluate", "--weights", "{junk}.pth", "--model", "vgg11", "--data", "{data}",
      "--out", "{out}"),
    R("evaluate-scale-zero", *EVAL, "--scales", "0", msg="test scales are pixel sizes in [1, 2048], got 0"),
    R("evaluate-scale-negative", *EVAL, "--scales", "-64", msg="got -64"),
    R("evaluate-scale-huge", *EVAL, "--scales", "5000", msg="got 5000"),
    R("evaluate-scale-not-a-number", *EVAL, "--scales", "big", msg="--scales takes comma-separated pixel sizes"),
    R("evaluate-scale-empty-item", *EVAL, "--scales", "256,", msg="--scales takes comma-separated pixel sizes"),
    R("evaluate-scale-below-crop", *EVAL, "--protocol", "multi-crop", "--scales", "16", "--quiet",
      msg="test scale 16 is below the checkpoint's crop size 32"),
    R("evaluate-dense-scale-below-minimum", *EVAL, "--protocol", "dense", "--scales", "16", "--quiet",
      msg="H, W >= 32; got (12, 3, 16, 16)"),
    R("evaluate-device-foo", *EVAL, "--device", "foo", msg=DEVICE_FOO),
    R("evaluate-device-cuda-99", *EVAL, "--device", "cuda:99", msg=CUDA_99),
    R("evaluate-missing-checkpoint", "evaluate", "--checkpoint", "{missing}", "--data", "{data}", "--out", "{out}",
      msg="does not exist", usage=True),
    R("evaluate-junk-checkpoint", "evaluate", "--checkpoint", "{junk}.safetensors", "--data", "{data}", "--out",
      "{out}", msg="{junk}.safetensors"),
    R("evaluate-empty-folder-checkpoint", "evaluate", "--checkpoint", "{empty}", "--data", "{data}", "--out",
      "{out}", msg=NO_CKPT),
    R("evaluate-data-folder-as-checkpoint", "evaluate", "--checkpoint", "{data}", "--data", "{data}", "--out",
      "{out}", msg=NO_CKPT),
    R("evaluate-fifo-checkpoint", "evaluate", "--checkpoint", "{fifo}", "--data", "{data}", "--out", "{out}"),
    R("evaluate-missing-data", "evaluate", "--checkpoint", "{run}", "--data", "{missing}", "--out", "{out}",
      msg="unknown dataset"),
    R("evaluate-junk-data", "evaluate", "--checkpoint", "{run}", "--data", "{junk}.bin", "--out", "{out}"),
    R("evaluate-out-is-a-file", *EVAL[:5], "--out", "{file}", msg="is a file", usage=True, writes="{missing}"),
    R("evaluate-out-is-a-run", *EVAL[:5], "--out", "{run}", msg="holds a training run", writes="{missing}"),
    R("evaluate-bad-split", *EVAL, "--split", "train", msg="'train' is not one of", usage=True),
    R("evaluate-bad-protocol", *EVAL, "--protocol", "x", msg="'x' is not one of", usage=True),
    R("evaluate-zero-batch", *EVAL, "--batch-size", "0", msg="0 is not in the range x>=1", usage=True),
    # predict
    R("predict-no-image", "predict", "--checkpoint", "{run}", msg="Missing argument 'IMAGES...'", usage=True),
    R("predict-missing-image", "predict", "{missing}", "--checkpoint", "{run}", msg="does not exist", usage=True),
    R("predict-folder-as-image", "predict", "{empty}", "--checkpoint", "{run}", msg="is a directory", usage=True),
    R("predict-junk-image", "predict", "{junk}.jpg", "--checkpoint", "{run}", msg="{junk}.jpg"),
    R("predict-forged-image-name", "predict", "{forged_jpg}", "--checkpoint", "{run}",
      msg="x\\n\\x1b[31merror: forged.png"),
    R("predict-fifo-image", "predict", "{fifo}", "--checkpoint", "{run}", msg="not a regular file"),
    R("predict-no-source", "predict", IMG, msg="predict needs one of --checkpoint or --weights"),
    R("predict-junk-checkpoint", "predict", IMG, "--checkpoint", "{junk}.safetensors", msg="{junk}.safetensors"),
    R("predict-unknown-weights", "predict", IMG, "--weights", "vgg17", msg="unknown weights 'vgg17'"),
    R("predict-junk-weights", "predict", IMG, "--weights", "{junk}.pth", msg="{junk}.pth"),
    R("predict-junk-h5-weights", "predict", IMG, "--weights", "{junk}.h5", msg="{junk}.h5"),
    R("predict-zero-top-k", "predict", IMG, "--checkpoint", "{run}", "--top-k", "0", msg="0 is not in the range",
      usage=True),
    # lpips, explain, show
    R("lpips-missing-image", "lpips", "{missing}", IMG, msg="does not exist", usage=True),
    R("lpips-unknown-backbone", "lpips", IMG, IMG, "--backbone", "vgg17", msg="unknown weights 'vgg17'"),
    R("lpips-not-vgg16", "lpips", IMG, IMG, "--backbone", "vgg19.keras", msg="calibrated on torchvision's VGG-16"),
    R("lpips-junk-backbone", "lpips", IMG, IMG, "--backbone", "{junk}.pth", msg="{junk}.pth"),
    R("lpips-file-and-folder", "lpips", IMG, "{data}", "--backbone", "{junk}.pth", msg="two images or two folders"),
    R("lpips-csv-under-a-file", "lpips", IMG, IMG, "--csv", "{file}/d.csv", msg="Not a directory",
      writes="{file}/d.csv"),
    R("explain-no-source", "explain", IMG, "--out", "{out}", msg="pass one of --checkpoint or --weights"),
    R("explain-junk-image", "explain", "{junk}.jpg", "--checkpoint", "{run}", "--out", "{out}", msg="{junk}.jpg"),
    R("explain-bare-index", "explain", IMG, "--checkpoint", "{run}", "--layer", "35", "--out", "{out}",
      msg="unknown layer '35'"),
    R("explain-unknown-class", "explain", IMG, "--checkpoint", "{run}", "--class", "zebra", "--out", "{out}",
      msg="neither a class name nor an index"),
    R("explain-out-under-a-file", "explain", IMG, "--checkpoint", "{run}", "--out", "{file}/pics",
      msg="Not a directory", writes="{file}/pics"),
    R("show-filters-not-a-conv", "show", "filters", "--checkpoint", "{run}", "--layer", "relu1_1", "--out", "{out}",
      msg="not a convolution"),
    R("show-activations-head-layer", "show", "activations", IMG, "--checkpoint", "{run}", "--layer", "fc6",
      "--out", "{out}", msg="not a spatial layer"),
    R("show-field-unit-outside", "show", "field", IMG, "--checkpoint", "{run}", "--unit", "99,99", "--out", "{out}",
      msg="outside"),
    # export
    R("export-no-source", "export", "--out", "{out}.onnx", msg="export needs one of --checkpoint or --weights",
      writes="{out}.onnx"),
    R("export-junk-checkpoint", "export", "--checkpoint", "{junk}.safetensors", "--out", "{out}.onnx",
      writes="{out}.onnx"),
    R("export-empty-folder", "export", "--checkpoint", "{empty}", "--out", "{out}.onnx", writes="{out}.onnx"),
    R("export-unknown-weights", "export", "--weights", "vgg17", "--out", "{out}.onnx", writes="{out}.onnx"),
    R("export-junk-weights", "export", "--weights", "{junk}.pth", "--model", "vgg11", "--out", "{out}.onnx",
      writes="{out}.onnx"),
    R("export-unknown-model", "export", "--weights", "{junk}.pth", "--model", "vgg99", "--out", "{out}.onnx",
      writes="{out}.onnx"),
    R("export-bad-format", "export", "--checkpoint", "{run}", "--format", "tflite", msg="'tflite' is not 'onnx'",
      usage=True),
    R("export-out-is-a-folder", "export", "--checkpoint", "{run}", "--out", "{empty}", msg="is a directory",
      usage=True),
    R("export-out-under-a-file", "export", "--checkpoint", "{run}", "--out", "{file}/m.onnx", writes="{file}/m.onnx"),
    R("export-int8-no-calibrate", "export", "--checkpoint", "{run}", "--precision", "int8", "--out", "{out}.onnx",
      msg="--precision int8 needs --calibrate DATA", writes="{out}.onnx"),
    # quantize
    R("quantize-no-source", "quantize", "--calibrate", "{data}", "--out", "{out}.onnx",
      msg="quantize needs one of --checkpoint or --weights", writes="{out}.onnx"),
    R("quantize-no-calibrate", "quantize", "--checkpoint", "{run}", "--out", "{out}.onnx",
      msg="Missing option '--calibrate'", usage=True, writes="{out}.onnx"),
    R("quantize-unknown-data", "quantize", "--checkpoint", "{run}", "--calibrate", "{missing}", "--out",
      "{out}.onnx", msg="unknown dataset", writes="{out}.onnx"),
    R("quantize-not-onnx", "quantize", "--checkpoint", "{run}", "--calibrate", "{data}", "--out", "{out}.int8",
      msg="name it *.onnx", writes="{out}.int8"),
    R("quantize-junk-checkpoint", "quantize", "--checkpoint", "{junk}.safetensors", "--calibrate", "{data}",
      "--out", "{out}.onnx", writes="{out}.onnx"),
    R("quantize-out-under-a-file", "quantize", "--checkpoint", "{run}", "--calibrate", "{data}", "--out",
      "{file}/m.onnx", msg="does not exist", writes="{file}/m.onnx"),
    R("quantize-zero-images", "quantize", "--checkpoint", "{run}", "--calibrate", "{data}",
      "--calibration-images", "0", msg="0 is not in the range", usage=True),
    # prepare
    R("prepare-missing-data", "prepare", "{missing}", "{out}", msg="no such dataset folder or archive"),
    R("prepare-junk-data", "prepare", "{junk}.safetensors", "{out}", msg="not a tar or zip archive"),
    R("prepare-out-is-a-file", "prepare", "{data}", "{file}", msg="is not a folder", writes="{file}/x"),
    R("prepare-out-in-data", "prepare", "{data}", "{data}/shards", msg="inside the dataset", writes="{data}/shards"),
    R("prepare-bad-quality", "prepare", "{data}", "{out}", "--quality", "101", msg="--quality 101: give 1 to 100"),
    R("prepare-bad-side", "prepare", "{data}", "{out}", "--short-side", "9", msg="--short-side 9: give 32"),
    R("prepare-no-out", "prepare", "{data}", msg="Missing argument 'OUT'", usage=True),
    # weights
    R("weights-list-extra-argument", "weights", "list", "x", msg="unexpected extra argument", usage=True),
    R("weights-download-no-name", "weights", "download", msg="Missing argument 'NAMES...'", usage=True),
    R("weights-download-unknown", "weights", "download", "vgg17", msg="unknown weights 'vgg17'"),
    R("weights-convert-no-out", "weights", "convert", "vgg11", msg="Missing argument 'OUT'", usage=True),
    R("weights-convert-unknown", "weights", "convert", "vgg17", "{out}.safetensors", msg="unknown weights 'vgg17'",
      writes="{out}.safetensors"),
    R("weights-convert-missing-file", "weights", "convert", "{missing}.pth", "{out}.safetensors",
      writes="{out}.safetensors"),
    R("weights-convert-junk-pth", "weights", "convert", "{junk}.pth", "{out}.safetensors", msg="{junk}.pth",
      writes="{out}.safetensors"),
    R("weights-convert-junk-h5", "weights", "convert", "{junk}.h5", "{out}.safetensors", msg="{junk}.h5",
      writes="{out}.safetensors"),
    R("weights-convert-folder", "weights", "convert", "{empty}", "{out}.safetensors", writes="{out}.safetensors"),
    R("weights-convert-fifo", "weights", "convert", "{fifo}", "{out}.safetensors", msg="not a regular file",
      writes="{out}.safetensors"),
    R("weights-convert-wrong-suffix", "weights", "convert", "{junk}.pth", "{out}.txt", msg="name it *.safetensors",
      writes="{out}.txt"),
    R("weights-convert-out-is-a-folder", "weights", "convert", "vgg11", "{empty}", msg="is a directory", usage=True),
    R("weights-convert-unknown-model", "weights", "convert", "{junk}.pth", "{out}.safetensors", "--model", "vgg99",
      writes="{out}.safetensors"),
    # cache
    R("cache-list-bad-bound", "cache", "list", msg="VGGNET_CACHE_MAX_GB must be a number of GiB",
      env={"VGGNET_CACHE_MAX_GB": "plenty"}),
    R("cache-list-extra-argument", "cache", "list", "x", msg="unexpected extra argument", usage=True),
    R("cache-clear-extra-argument", "cache", "clear", "--all", msg="No such option '--all'", usage=True),
    # bench: refused in the CLI, before a benchmark process starts
    R("bench-infer-device-foo", "bench", "infer", "--device", "foo", msg=DEVICE_FOO),
    R("bench-infer-device-cuda-99", "bench", "infer", "--device", "cuda:99", msg=CUDA_99),
    R("bench-infer-unknown-model", "bench", "infer", "--model", "vgg99", msg="unknown model 'vgg99'"),
    R("bench-infer-alexnet-at-32", "bench", "infer", "--model", "alexnet", "--image-size", "32",
      msg="alexnet needs images of at least 63 px, got 32 px"),
    R("bench-infer-small-image", "bench", "infer", "--image-size", "16", msg="16 is not in the range x>=32",
      usage=True),
    R("bench-infer-zero-batch", "bench", "infer", "--batch-size", "0", msg="0 is not in the range x>=1", usage=True),
    R("bench-infer-zero-rounds", "bench", "infer", "--rounds", "0", msg="0 is not in the range x>=1", usage=True),
    R("bench-infer-fp16", "bench", "infer", "--precision", "fp16", msg="'fp16' is not one of", usage=True),
    R("bench-train-device-foo", "bench", "train", "--device", "foo", msg=DEVICE_FOO),
    R("bench-train-unknown-model", "bench", "train", "--model", "vgg99", msg="unknown model 'vgg99'"),
    R("bench-train-missing-data", "bench", "train", "--data", "{missing}", "--rounds", "1", "--steps", "1", "--quiet",
      msg="error: unknown dataset"),  # found in the process
    R("bench-train-missing-data-with-progress", "bench", "train", "--data", "{missing}", "--rounds", "1", "--steps",
      "1", msg="unknown dataset"),
    R("bench-train-negative-workers", "bench", "train", "--workers", "-1", msg="-1 is not in the range x>=0",
      usage=True),
    R("bench-train-bad-compile-mode", "bench", "train", "--compile-mode", "fast", msg="'fast' is not one of",
      usage=True),
    # experiment
    R("experiment-unknown-study", "experiment", "width", "--data", "sample", "--out", "{out}",
      msg="unknown study 'width'; valid: depth"),
    R("experiment-bad-budget", "experiment", "lrn", "--data", "sample", "--budget", "huge",
      msg="'huge' is not one of 'small', 'medium', 'full'", usage=True),
    R("experiment-no-data", "experiment", "depth", "--out", "{out}", msg="Missing option '--data'", usage=True),
    R("experiment-device-foo", "experiment", "depth", "--data", "sample", "--device", "foo", "--out", "{out}",
      msg=DEVICE_FOO),
    R("experiment-out-is-a-file", "experiment", "depth", "--data", "sample", "--out", "{file}", msg="is a file",
      usage=True, writes="{missing}"),
    R("experiment-missing-data", "experiment", "depth", "--data", "{missing}", "--out", "{out}",
      msg="unknown dataset"),
    R("experiment-list-extra-argument", "experiment", "list", "x", msg="unexpected extra argument", usage=True),
]


def _param(row: Row):
    marks = [pytest.mark.xfail(strict=False, reason=OTHERS[row.owner])] if row.owner else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    """The files the rows name: tiny data, a tiny trained run, junk of every kind."""
    root = tmp_path_factory.mktemp("sweep")
    data = root / "data"
    colour_folders(data / "train", per_class=8)
    colour_folders(data / "val", per_class=4, seed=1)
    run = root / "run"
    trained = CliRunner().invoke(cli, ["train", "--model", "vgg11_bn", "--data", str(data), "--epochs", "1",
                                       "--batch-size", "12", "--out", str(run), "--quiet", "--set", "workers=0"])
    assert trained.exit_code == 0, trained.output
    junk = root / "junk"
    for suffix in (".bin", ".pth", ".safetensors", ".jpg", ".tar.gz"):
        junk.with_name(f"junk{suffix}").write_bytes(os.urandom(512))
    junk.with_name("junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(512))
    (root / "empty").mkdir()
    (root / "empty-run").mkdir()  # its own: a row that fails may leave a file in it
    (root / "file").write_text("not what was asked for\n")
    (root / "user").mkdir()
    (root / "user" / "notes.txt").write_text("the user's own file\n")
    os.mkfifo(root / "fifo")
    write_tar(root / "forged.tar.gz", {FORGED: os.urandom(64)})
    (root / "forged-jpg").mkdir()
    (root / "forged-jpg" / f"{FORGED}.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    (root / "bad-cifar").mkdir()
    make_cifar_archive(root / "bad-cifar" / "cifar-10-python.tar.gz", n_per_batch=4, n_test=4, bad_label=True)
    return {"data": str(data), "run": str(run), "junk": str(junk), "empty": str(root / "empty"),
            "empty_run": str(root / "empty-run"), "file": str(root / "file"), "missing": str(root / "missing"),
            "fifo": str(root / "fifo"),
            "forged": str(root / "forged.tar.gz"), "forged_jpg": str(root / "forged-jpg" / f"{FORGED}.png"),
            "userdir": str(root / "user"), "bad_cifar": str(root / "bad-cifar" / "cifar-10-python.tar.gz")}


def _fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def _nothing_written(pattern: str) -> bool:
    path = Path(pattern)
    if path.name == "*":  # a folder that must stay empty
        return not any(path.parent.iterdir())
    return not path.exists()


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input_is_one_line_and_exit_2(row: Row, places, tmp_path, monkeypatch) -> None:
    places = {**places, "out": str(tmp_path / "out")}
    monkeypatch.chdir(tmp_path)  # a default output folder (runs/...) would land here
    for key, value in row.env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, [_fill(a, places) for a in row.args])
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything and "\x1b" not in everything, everything
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.exception, everything)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if row.usage:
        assert lines[-1].startswith("Error: ") and lines[0].startswith("Usage: "), result.stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert result.stdout == "", result.stdout
    if row.message:
        assert _fill(row.message, places) in result.stderr, result.stderr
    assert _nothing_written(_fill(row.writes, places)), os.listdir(Path(_fill(row.writes, places)).parent)
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)  # nor anywhere else (a default run folder)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= _commands(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_every_command_has_rows() -> None:
    covered = set()
    for row in ROWS:
        words = tuple(a for a in row.args[:2] if not a.startswith("-") and "{" not in a)
        covered |= {words[:1], words[:2]}
    studies = {("experiment", "run")} if any(r.args[:2] == ["experiment", "depth"] for r in ROWS) else set()
    assert _commands(cli) - covered - studies == set()


def test_a_real_process_prints_one_line_and_exits_2(tmp_path) -> None:
    """Outside the test runner too: the installed entry point, its own stderr, its exit status."""
    done = subprocess.run([sys.executable, "-c", "from vggnet.cli import main; main()", "train", "--model",
                           "vgg11", "--data", "sample", "--device", "foo", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: unknown device 'foo'; valid: cpu, cuda, cuda:N (a GPU's index), mps\n"
    assert not (tmp_path / "out").exists()
