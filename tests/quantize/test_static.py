"""int8 quantization's plumbing: which images calibrate and which score, the file it writes, and
predict/evaluate/export taking that file; hostile ONNX files are refused in one line."""

import json
import os

import onnx
import pytest
import torch

from vggnet.data.datasets import held_key, names_of
from vggnet.errors import CheckpointError, DataError, VggnetError
from vggnet.evaluate.predict import predict_images
from vggnet.evaluate.run import evaluate_checkpoint
from vggnet.quantize import calibration, quantize_model, static
from vggnet.runs import model_from_checkpoint
from vggnet.weights.load import model_for_inference
from vggnet.weights.onnx_model import load_onnx_model


def test_calibration_never_uses_the_held_out_images(quantized):
    root, data, _, _ = quantized
    held = set(json.loads((root / "run" / "split.json").read_text())["held_out"])
    _, meta = model_from_checkpoint(root / "run")
    plan = calibration.plan_images(root / "run", meta, data, 1000, progress=False)
    calibrated = {held_key(n) for n in names_of(plan.calibrate)}
    scored = {held_key(n) for n in names_of(plan.score)}
    assert scored == {held_key(n) for n in held} and len(scored) == 18
    assert len(calibrated) == 72 - 18 and not calibrated & scored  # every training image, none held out


def test_quantize_reports_fp32_and_int8_on_the_held_out_split(quantized):
    _, _, out, result = quantized
    acc = result["accuracy"]
    assert acc["images"] == 18 and "held out" in acc["images_are"]
    assert result["calibration"]["images"] == 16 and "training images" in result["calibration"]["images_are"]
    assert acc["fp32_top1"] >= 0.8  # the colours are learnable: a real model, not noise
    assert abs(acc["top1_change_points"]) <= 100 / 18 + 1e-9  # at most one of 18 images changes
    assert acc["top1_agreement"] >= 17 / 18 - 1e-9
    assert result["bytes"] == out.stat().st_size


def test_the_file_is_int8_and_carries_its_metadata(quantized):
    _, _, out, _ = quantized
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    assert len(int8_weights) == 8  # vgg11's eight convolutions, weights stored as int8
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["vggnet"])
    assert meta["precision"] == "int8" and meta["classes"] == ["blue", "green", "red"]
    assert meta["calibration"]["method"] == "minmax"


def test_predict_and_evaluate_take_the_int8_file(quantized, tmp_path):
    root, data, out, result = quantized
    model, meta = model_for_inference(out)
    assert meta["precision"] == "int8" and model.precision == "int8"
    images = sorted(str(p) for p in (data / "red").iterdir())[:4]
    int8 = predict_images(out, images, top_k=1)
    fp32 = predict_images(root / "run", images, top_k=1)
    assert [r["top1"][0]["label"] for r in int8] == [r["top1"][0]["label"] for r in fp32]
    m = evaluate_checkpoint(out, data, tmp_path / "ev", progress=False)
    assert m["split"] == "val" and m["images"] == 18  # the run's held-out images, found from the file's run
    assert m["top1"] == pytest.approx(result["accuracy"]["int8_top1"])
    for kwargs in ({"protocol": "dense"}, {"scales": [40]}):
        with pytest.raises(VggnetError, match="an ONNX model is scored alone, with --protocol center"):
            evaluate_checkpoint(out, data, tmp_path / "ev2", progress=False, **kwargs)
    with pytest.raises(VggnetError, match="an ONNX model is scored alone"):
        evaluate_checkpoint([out, root / "run"], data, tmp_path / "ev3", progress=False)


def test_the_onnx_model_runs_any_batch_and_returns_logits_where_the_input_was(quantized):
    _, _, out, _ = quantized
    model, _ = load_onnx_model(out)
    for n in (1, 5):
        logits = model(torch.randn(n, 3, 32, 32))
        assert logits.shape == (n, 3) and logits.dtype == torch.float32


def _plain_onnx(path):
    """A valid ONNX model (one convolution) that vggnet did not write."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(torch.randn(2, 3, 3, 3).numpy(), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])], [weight])
    onnx.save(helper.make_model(graph), str(path))
    return path


def _with_meta(path, **meta):
    proto = onnx.load(str(path))
    base = {"model": "vgg11", "model_kwargs": {"num_classes": 2}, "classes": ["a", "b"], "mean": [0, 0, 0],
            "std": [1, 1, 1], "image_size": 4}
    onnx.helper.set_model_props(proto, {"vggnet": json.dumps({**base, **meta})})
    onnx.save(proto, str(path))


def _sparse_external(path):
    """A sparse initializer whose values live in a file beside it: onnxruntime would read that file."""
    from onnx import TensorProto, helper

    (path.parent / "secret.bin").write_bytes(b"\0" * 8)
    values = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
    values.ClearField("float_data")
    values.data_location = TensorProto.EXTERNAL
    values.external_data.add(key="location", value="secret.bin")
    sparse = helper.make_sparse_tensor(values, helper.make_tensor("i", TensorProto.INT64, [2], [0, 1]), [2])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], sparse_initializer=[sparse])
    onnx.save(helper.make_model(graph), str(path))
    _with_meta(path)


@pytest.mark.parametrize("kind", ["garbage", "no-metadata", "external-data", "sparse-external", "fifo",
                                  "fully-conv", "wrong-classes", "wrong-size"])
def test_hostile_onnx_files_are_refused_in_one_line(tmp_path, kind):
    path = tmp_path / "model.onnx"
    if kind == "garbage":
        path.write_bytes(b"\x08\x07not an onnx model at all\xff" * 10)
    elif kind == "no-metadata":
        _plain_onnx(path)
    elif kind == "external-data":  # its weights live in a file it names: never followed
        (tmp_path / "secret").write_bytes(b"\0" * 216)
        proto = onnx.load(str(_plain_onnx(path)))
        tensor = proto.graph.initializer[0]
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value="../secret")
        onnx.save(proto, str(path))
    elif kind == "sparse-external":
        _sparse_external(path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "fully-conv":
        _with_meta(_plain_onnx(path), fully_convolutional=True)
    elif kind == "wrong-classes":  # the plain graph gives (1, 2, 2, 2): not (N, 2) class scores
        _with_meta(_plain_onnx(path))
    else:
        _with_meta(_plain_onnx(path), image_size=40)
    expected = {"garbage": "is not an ONNX model", "no-metadata": "has no vggnet metadata",
                "external-data": "external files, which vggnet does not follow",
                "sparse-external": "external files, which vggnet does not follow", "fifo": "not a regular file",
                "fully-conv": "fully-convolutional score-map model",
                "wrong-classes": "does not give 2 class scores as its metadata says",
                "wrong-size": r"does not take \(N, 3, 40, 40\) images"}[kind]
    with pytest.raises(CheckpointError, match=expected) as err:
        load_onnx_model(path)
    assert "\n" not in str(err.value)


def test_quantize_checks_its_options_before_reading_anything(quantized, tmp_path, monkeypatch):
    root, data, out, _ = quantized
    import vggnet.weights.load as load

    monkeypatch.setattr(load, "model_for_inference", lambda *a, **k: pytest.fail("the model was read first"))
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"the user's own file")
    (tmp_path / "folder.onnx").mkdir()
    for kwargs, message in [
        ({"out": tmp_path / "model.int8"}, r"name it \*\.onnx"),
        ({"out": tmp_path / "no" / "m.onnx"}, "does not exist"),
        ({"out": mine}, "is not an ONNX file vggnet wrote: it is not replaced"),
        ({"out": tmp_path / "folder.onnx"}, "is a folder"),
        ({"source": out}, "already an ONNX file"),
        ({"calibrate": tmp_path / "no-such-data"}, "unknown dataset"),
    ]:
        args = {"source": root / "run", "calibrate": data, "out": tmp_path / "m.onnx", **kwargs}
        with pytest.raises(VggnetError, match=message):
            quantize_model(args["source"], args["calibrate"], args["out"], progress=False)
    assert mine.read_bytes() == b"the user's own file"


def test_held_out_images_that_are_gone_stop_the_score_rather_than_report_zero(quantized, monkeypatch):
    """The run's data with its held-out images deleted: evaluate's one line, never '0.00% on 0 images'."""
    root, data, _, _ = quantized
    _, meta = model_from_checkpoint(root / "run")
    real = calibration.load_split

    def emptied(*args):
        splits, split, _ = real(*args)
        splits.val = splits.val.subset([])
        return splits, split, "the 0 images the run held out"

    monkeypatch.setattr(calibration, "load_split", emptied)
    with pytest.raises(DataError, match="none of them is there any more"):
        calibration.plan_images(root / "run", meta, data, 8, progress=False)


def test_onnx_files_are_not_converted_back(quantized, tmp_path):
    from vggnet.weights.load import save_for_inference

    _, _, out, _ = quantized
    with pytest.raises(VggnetError, match="not converted back"):
        save_for_inference(out, tmp_path / "x.safetensors")


def test_seven_bit_weights_where_the_cpu_lacks_vnni(monkeypatch):
    monkeypatch.setattr(static, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert static.reduce_range()
    monkeypatch.setattr(static, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni"}))
    assert not static.reduce_range()
