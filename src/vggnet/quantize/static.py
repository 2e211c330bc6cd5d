"""Static int8 post-training quantization with onnxruntime, and the accuracy it costs.

Why onnxruntime's QDQ flow and not PyTorch's: ``torch.ao.quantization``'s eager flow is deprecated
and PT2E now lives in torchao, needs a torch.compile (21 s for VGG-16 on 2 cores) in every process
and leaves no file to ship; the ONNX file runs anywhere onnxruntime does. Once compiled, PT2E ran
1.10x faster on the development CPU (``benchmarks/int8_backends.py``): the price of the file.

The recipe is the standard one for CNNs on x86: per-channel symmetric int8 weights, per-tensor
uint8 activations with ranges from min/max over the calibration images, BatchNorm folded into the
convolutions first. On a CPU without AVX-512 VNNI the u8 x s8 products can saturate, so weights
are quantized to 7 bits there (onnxruntime's ``reduce_range``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from vggnet.atomic import atomic_path
from vggnet.data.datasets import check_data_spec
from vggnet.errors import VggnetError, one_line
from vggnet.evaluate.metrics import Predictions, predict
from vggnet.export import export_model_onnx, require
from vggnet.fastpath import cpu_flags
from vggnet.names import CALIBRATION_IMAGES
from vggnet.progress import progress_bar
from vggnet.quantize.calibration import CalibrationReader, batches_for, plan_images
from vggnet.weights.onnx_model import META_KEY, OnnxClassifier

DEFAULT_IMAGES = CALIBRATION_IMAGES  # ranges settle within a few hundred images; more only costs time


@contextlib.contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """onnxruntime's quantizer logs and warns about every step; the progress bars say enough."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def reduce_range() -> bool:
    """7-bit weights where the CPU lacks VNNI (u8 x s8 pairs would saturate 16-bit sums)."""
    return not ({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def quantize_onnx(fp32: Path, out: Path, reader: CalibrationReader, meta: dict, calibration: dict) -> None:
    """Write ``fp32`` (a vggnet ONNX file) as a static int8 QDQ model at ``out``, atomically."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="vggnet-quantize-") as tmp, _quiet_onnxruntime():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)  # fold BatchNorm, infer shapes
        with atomic_path(out) as part:
            quantize_static(str(prepared), str(part), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=calibration["reduce_range"], activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
                            # no CalibMaxIntermediateOutputs: onnxruntime 1.32 drops the batches it counted
                            # rather than merging them; min/max per batch is a few numbers per tensor anyway
            proto = onnx.load(str(part))
            props = {p.key: p.value for p in proto.metadata_props}
            props[META_KEY] = json.dumps({**meta, "precision": "int8", "calibration": calibration})
            onnx.helper.set_model_props(proto, props)
            onnx.save(proto, str(part))


def _score(model: torch.nn.Module, batches, transform, what: str, total: int, progress: bool) -> Predictions:
    with progress_bar(f"score {what}", total, enabled=progress, unit="images") as bar:
        def counted():
            for images, labels in batches:
                yield images, labels
                bar.advance(len(images))
        return predict(model, counted(), transform)


def compare(fp32: torch.nn.Module, int8: torch.nn.Module, plan, meta: dict, batch_size: int, progress: bool,
            strict: bool) -> dict:
    """Top-1/top-5 of both models on the scored images, and how often their top-1 agree."""
    results = {}
    for name, model in (("fp32", fp32), ("int8", int8)):
        batches, transform = batches_for(plan.score, meta, plan.splits.in_memory, batch_size, strict=strict)
        results[name] = _score(model, batches, transform, name, len(plan.score), progress)
    a, b = results["fp32"], results["int8"]
    same = int((a.topk[:, 0] == b.topk[:, 0]).sum())  # counts, then fractions: no float32 residue in the report
    hits = {f"{name}_top{k}": round(p.accuracy(k) * len(p)) for name, p in results.items() for k in (1, 5)}
    n = max(len(a), 1)
    return {"images": len(a), "images_are": plan.score_are, **{k: round(v / n, 6) for k, v in hits.items()},
            "top1_change_points": round(100 * (hits["int8_top1"] - hits["fp32_top1"]) / n, 4),
            "top1_agreement": round(same / n, 6)}


def check_output(out: Path) -> Path:
    """The output, checked before any work: an .onnx name in an existing folder, and either new or a
    file vggnet wrote (re-quantizing replaces it; a file of the user's is never replaced)."""
    from vggnet.atomic import refuse_non_regular
    from vggnet.weights.onnx_model import read_onnx

    if out.suffix != ".onnx":
        raise VggnetError(f"{out}: the quantized model is an ONNX file; name it *.onnx")
    if not out.parent.is_dir():
        raise VggnetError(f"{out}: its folder {out.parent} does not exist")
    refuse_non_regular(out)
    if out.exists():
        try:
            read_onnx(out)
        except VggnetError:
            raise VggnetError(f"{out} exists and is not an ONNX file vggnet wrote: it is not replaced; "
                              "choose another --out") from None
    return out


def quantize_model(
    source: str | os.PathLike[str], calibrate: str | os.PathLike[str], out: str | os.PathLike[str], *,
    model_name: str | None = None, images: int = DEFAULT_IMAGES, batch_size: int = 32, seed: int = 0,
    score: bool = True, progress: bool = True, strict: bool = False,
) -> dict:
    """Quantize ``source`` (a run, checkpoint, known weight name or weight file) to an int8 ONNX file
    at ``out``, calibrated on ``images`` images of ``calibrate``; returns what was done and, where
    the data has the model's classes and ``score``, fp32 and int8 accuracy on images not used for
    calibration (on the run's own data: its held-out split)."""
    from vggnet.weights.load import model_for_inference

    for module in ("onnx", "onnxscript", "onnxruntime"):  # before anything is read
        require(module)
    out = check_output(Path(out))
    if Path(source).suffix == ".onnx":
        raise VggnetError(f"{source} is already an ONNX file; quantize the checkpoint or weights it came from")
    check_data_spec(calibrate)
    model, meta = model_for_inference(source, model_name)
    plan = plan_images(source, meta, calibrate, images, seed, progress, strict)
    started = time.perf_counter()
    calibration = {"images": len(plan.calibrate), "images_are": plan.calibrate_are, "method": "minmax",
                   "weights": "int8 per channel", "activations": "uint8 per tensor", "reduce_range": reduce_range()}
    with tempfile.TemporaryDirectory(prefix="vggnet-quantize-") as tmp:
        fp32_file = export_model_onnx(model, meta, Path(tmp) / "fp32.onnx")
        batches, transform = batches_for(plan.calibrate, meta, plan.splits.in_memory, batch_size, strict=strict)
        with progress_bar("calibrate", len(plan.calibrate), enabled=progress, unit="images") as bar:
            reader = CalibrationReader(batches, transform, "image", on_batch=bar.advance)
            try:
                quantize_onnx(fp32_file, out, reader, meta, calibration)
            except VggnetError:
                raise
            except Exception as err:  # onnxruntime's own errors: one line, nothing written
                raise VggnetError(f"int8 quantization of {meta['model']} failed: {one_line(err)}") from None
    result = {"out": str(out), "model": meta["model"], "source": str(source), "calibration": calibration,
              "seconds": round(time.perf_counter() - started, 1), "bytes": out.stat().st_size}
    if score and plan.score is not None:
        from vggnet.weights.onnx_model import load_onnx_model

        int8, _ = load_onnx_model(out)
        result["accuracy"] = compare(model, int8, plan, meta, batch_size, progress, strict)
    else:
        result["unscored"] = "--no-score" if not score else plan.unscored
    return result


__all__ = ["DEFAULT_IMAGES", "OnnxClassifier", "compare", "quantize_model", "quantize_onnx", "reduce_range"]
