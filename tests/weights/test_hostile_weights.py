"""Weight files from a hostile user: a Keras .h5 must not pull in another file's bytes (external
storage, external or soft links, virtual datasets) nor allocate by a declared shape; a weight file
must be a regular file within the bound; float16/bfloat16/float64 files load (cast to float32);
meta and integer tensors, and torch files that are not plain tensors, are one line."""

import argparse
import os
import time
import tracemalloc

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.data.hostile import GIB, fifo, finishes
from tests.helpers import keras_vgg_layers, write_keras_h5
from vggnet.cli import cli
from vggnet.errors import CheckpointError
from vggnet.evaluate.predict import predict_images
from vggnet.models import HEADS, create_model
from vggnet.models.vgg import Head
from vggnet.weights.keras import read_keras_h5
from vggnet.weights.load import model_for_inference, read_weights, save_for_inference

h5py = pytest.importorskip("h5py")

SECRET = b"SECRET-passwd-line " * 14  # 266 bytes: a stand-in for /etc/passwd
BIAS = "block1_conv1/block1_conv1/bias:0"  # a (64,) float32 dataset: 256 bytes


@pytest.fixture(autouse=True)
def tiny_head(monkeypatch):
    monkeypatch.setitem(HEADS, "tiny", Head(pool=2, hidden=(16, 16)))


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    with torch.device("meta"):  # the first meta model imports torch's compiler: not the reader's time or memory
        create_model("vgg16")
    return write_keras_h5(tmp_path_factory.mktemp("k") / "vgg16.h5", keras_vgg_layers(dense=(16, 16, 5), pool=2))


@pytest.fixture
def hostile(keras_file, tmp_path):
    """A copy of the Keras file, and a 'secret' file and a second HDF5 file beside it to point at."""
    copy = tmp_path / "hostile.h5"
    copy.write_bytes(keras_file.read_bytes())
    (tmp_path / "secret.bin").write_bytes(SECRET)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("bias", data=np.frombuffer(SECRET[:256], np.float32))
    return copy


def refused(fn, match: str) -> str:
    """``fn`` raises one line of CheckpointError matching ``match``, at once and without allocating."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(CheckpointError, match=match) as err:
            fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5 and peak < 64 << 20
    assert "\n" not in str(err.value)
    return str(err.value)


def _external_storage(f, d):
    del f[BIAS]
    f.create_dataset(BIAS, shape=(64,), dtype="f4", external=[(str(d / "secret.bin"), 0, 256)])


def _external_link(f, d):
    del f[BIAS]
    f[BIAS] = h5py.ExternalLink(str(d / "other.h5"), "/bias")


def _external_group(f, d):
    del f["block1_conv1"]
    f["block1_conv1"] = h5py.ExternalLink(str(d / "other.h5"), "/")


def _virtual(f, d):
    del f[BIAS]
    layout = h5py.VirtualLayout(shape=(64,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(d / "other.h5"), "bias", shape=(64,))
    f.create_virtual_dataset(BIAS, layout)


def _soft_link(f, d):
    del f[BIAS]
    f[BIAS] = h5py.SoftLink("/block1_conv2/block1_conv2/bias:0")  # the same shape, another layer's data


@pytest.mark.parametrize(("mutate", "match"), [
    (_external_storage, f"dataset {BIAS} is stored in an external file .*reads only data stored in the .h5 itself"),
    (_external_link, rf"{BIAS} is an external link \(to another file\); vggnet reads only data stored in the .h5"),
    (_external_group, r"block1_conv1 is an external link \(to another file\)"),
    (_virtual, f"dataset {BIAS} is a virtual dataset .*reads only data stored in the .h5 itself"),
    (_soft_link, f"{BIAS} is a soft link; vggnet reads only data stored in the .h5 itself"),
])
def test_keras_data_from_outside_the_file_is_refused(hostile, tmp_path, mutate, match):
    with h5py.File(hostile, "a") as f:
        mutate(f, tmp_path)
    refused(lambda: read_keras_h5(hostile), match)
    out = tmp_path / "converted.safetensors"  # `vggnet weights convert`: nothing written, nothing copied
    refused(lambda: save_for_inference(hostile, out), match)
    assert not out.exists() and not any(SECRET[:16] in p.read_bytes() for p in tmp_path.glob("converted*"))


def test_a_whole_model_file_whose_weights_are_another_file_is_refused(keras_file, tmp_path):
    with h5py.File(tmp_path / "model.h5", "w") as f:
        f["model_weights"] = h5py.ExternalLink(str(keras_file), "/")
    refused(lambda: read_keras_h5(tmp_path / "model.h5"), r"model_weights is an external link \(to another file\)")


@pytest.mark.parametrize(("name", "shape", "expected"), [
    (BIAS, (800_000_000,), "(64,)"),  # 3.2 GB declared, nothing stored
    ("block1_conv1/block1_conv1/kernel:0", (3, 3, 3, 50_000_000), "(3, 3, 3, 64)"),
    ("fc2/fc2/kernel:0", (16, 400_000_000), "(16, n) of at most 102,760,448 elements"),
    ("fc1/fc1/kernel:0", (800_000_000,), None),
])
def test_a_declared_shape_is_checked_before_it_is_read(hostile, name, shape, expected):
    with h5py.File(hostile, "a") as f:
        del f[name]
        f.create_dataset(name, shape=shape, dtype="f4")  # declared, never written: no chunk on disk
    assert hostile.stat().st_size < 100 << 20  # the 59 MB of the real layers, nothing more
    found = f"dataset {name} has shape {shape}, expected "
    found += f"{expected} for vgg16" if expected else "a Conv2D kernel (3, 3, in, out) or a Dense kernel (in, out)"
    assert found in refused(lambda: read_weights(hostile), "has shape")


def test_keras_datasets_never_written_or_not_floats_are_refused(hostile):
    with h5py.File(hostile, "a") as f:
        del f[BIAS]
        f.create_dataset(BIAS, shape=(64,), dtype="f4")
    refused(lambda: read_keras_h5(hostile), f"dataset {BIAS} was never written")
    with h5py.File(hostile, "a") as f:
        del f[BIAS]
        f.create_dataset(BIAS, data=np.arange(64, dtype=np.int32))
    refused(lambda: read_keras_h5(hostile), f"dataset {BIAS} holds int32, not floating-point weights")


def test_keras_float16_and_float64_datasets_read_as_float32(keras_file, hostile):
    with h5py.File(hostile, "a") as f:
        f[BIAS][...] = np.linspace(-1, 1, 64)
        data = f[BIAS][()]
        del f[BIAS]
        f.create_dataset(BIAS, data=data.astype(np.float16))
        kernel = "block1_conv2/block1_conv2/kernel:0"
        data2 = f[kernel][()]
        del f[kernel]
        f.create_dataset(kernel, data=data2.astype(np.float64))
    layers = dict(read_keras_h5(hostile))
    assert layers["block1_conv1"][1].dtype == np.float32 and layers["block1_conv2"][0].dtype == np.float32
    np.testing.assert_allclose(layers["block1_conv1"][1], data, atol=1e-3)
    np.testing.assert_array_equal(layers["block1_conv2"][0], data2)


# -- the weight file itself ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".h5"])
def test_a_fifo_as_weights_is_refused_at_once(tmp_path, suffix):
    pipe = fifo(tmp_path / f"weights{suffix}")
    message = finishes(lambda: refused(lambda: model_for_inference(pipe), "not a regular file"), pipe)
    assert message == f"{pipe}: not a regular file (a FIFO); pass a weight file"
    out = tmp_path / "out.safetensors"
    result = finishes(lambda: CliRunner().invoke(cli, ["weights", "convert", str(pipe), str(out)]), pipe)
    assert result.exit_code == 2 and result.output.strip() == f"error: {message}" and not out.exists()


def test_a_device_or_a_file_past_the_bound_as_weights_is_refused(tmp_path):
    message = finishes(lambda: refused(lambda: read_weights("/dev/zero"), "character device"))
    assert message == "/dev/zero: not a regular file (a character device); pass a weight file"
    sparse = tmp_path / "vgg16.pth"
    with open(sparse, "wb") as f:
        f.truncate(3 * GIB)  # a hole: no disk used
    message = refused(lambda: read_weights(sparse), "3.0 GiB, over the 2.0 GiB that vggnet reads")
    assert "VGGNET_MAX_FILE_MB" in message


# -- tensors in other float types, without data, or not floats -----------------------------------


@pytest.fixture(scope="module")
def vgg11(tmp_path_factory):
    """A small torchvision-layout network, its fp32 file, an image, and the fp32 prediction."""
    from tests.helpers import image_bytes

    d = tmp_path_factory.mktemp("vgg11")
    torch.manual_seed(0)
    state = create_model("vgg11", head="linear", num_classes=3).state_dict()
    torch.save(state, d / "fp32.pth")
    (d / "a.png").write_bytes(image_bytes((200, 30, 10), size=40, fmt="PNG"))
    expected = predict_images(d / "fp32.pth", [d / "a.png"], top_k=3, model_name="vgg11")[0]["top3"]
    return state, d, expected


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("fmt", [".pth", ".safetensors"])
def test_half_and_double_weight_files_predict_like_float32(vgg11, tmp_path, dtype, fmt):
    state, d, expected = vgg11
    path = tmp_path / f"w{fmt}"
    cast = {k: v.to(dtype) for k, v in state.items()}
    torch.save(cast, path) if fmt == ".pth" else save_file(cast, path)
    model, _ = model_for_inference(path, "vgg11")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    got = predict_images(path, [d / "a.png"], top_k=3, model_name="vgg11")[0]["top3"]
    assert [t["index"] for t in got] == [t["index"] for t in expected]
    tol = 1e-6 if dtype == torch.float64 else 2e-2
    assert all(abs(a["probability"] - b["probability"]) < tol for a, b in zip(got, expected, strict=True))


def test_meta_and_integer_tensors_are_one_line(vgg11, tmp_path):
    state, _, _ = vgg11
    torch.save({k: torch.empty_like(v, device="meta") for k, v in state.items()}, tmp_path / "meta.pth")
    refused(lambda: model_for_inference(tmp_path / "meta.pth", "vgg11"),
            r"tensor features\.0\.weight has no data \(saved from the meta device\)")
    torch.save({k: v.to(torch.int64) for k, v in state.items()}, tmp_path / "int.pth")
    refused(lambda: model_for_inference(tmp_path / "int.pth", "vgg11"),
            "tensor features.0.weight is int64, but weights are floating point")


def test_torch_files_that_are_not_plain_tensors_never_advise_unsafe_loading(vgg11, tmp_path):
    state, _, _ = vgg11
    torch.save({**state, "args": argparse.Namespace(lr=0.1)}, tmp_path / "objects.pth")
    (tmp_path / "legacy.pth").write_bytes(b"garbage that is no pickle")
    for name, detail in (("objects.pth", " (it names argparse.Namespace)"), ("legacy.pth", "")):
        message = refused(lambda n=name: read_weights(tmp_path / n), "cannot read weights")
        assert message == (f"cannot read weights {tmp_path / name}: it is not a torch file of plain tensors{detail}; "
                           "vggnet reads only plain tensors (weights_only) for safety: save model.state_dict(), "
                           "or .safetensors")
        assert "False" not in message and "trust" not in message
    assert os.path.getsize(tmp_path / "legacy.pth") < 100
