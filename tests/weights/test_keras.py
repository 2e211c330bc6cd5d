"""Keras VGG16/VGG19 HDF5 files: layout conversion checked against numpy computations in Keras's
own (channels-last) convention, on files written with h5py the way Keras writes them."""

import logging
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import VGG19_BLOCKS, keras_conv, keras_forward, keras_vgg_layers, write_keras_h5
from vggnet.data.transforms import eval_transform
from vggnet.errors import CheckpointError, MissingDependencyError
from vggnet.models import HEADS
from vggnet.models.vgg import Head
from vggnet.weights.hub import PREPROCESSING
from vggnet.weights.keras import keras_to_torchvision, read_keras_h5
from vggnet.weights.load import model_for_inference, pretrained_model

pytest.importorskip("h5py")

TINY = {"dense": (16, 16, 5), "pool": 2}  # a small top: fc1 over a 2x2x512 map, 5 classes


@pytest.fixture
def tiny_head(monkeypatch):
    monkeypatch.setitem(HEADS, "tiny", Head(pool=2, hidden=(16, 16)))


@pytest.fixture(scope="module")
def layers():
    return keras_vgg_layers(**TINY)


@pytest.fixture(scope="module")
def h5_file(layers, tmp_path_factory):
    return write_keras_h5(tmp_path_factory.mktemp("keras") / "vgg16_tiny.h5", layers)


def test_reads_every_layer_with_weights_in_order(h5_file, layers, tmp_path):
    read = read_keras_h5(h5_file)
    assert [n for n, _ in read] == [n for n, a in layers if a]
    with_weights = [arrays for _, arrays in layers if arrays]
    pairs = [(a, b) for (_, x), y in zip(read, with_weights, strict=True) for a, b in zip(x, y, strict=True)]
    assert len(pairs) == 32 and all(np.array_equal(a, b) for a, b in pairs)
    flat = read_keras_h5(write_keras_h5(tmp_path / "keras1.h5", layers, flat_names=True))  # Keras 1 names
    assert all(np.array_equal(x[1][0], y[1][0]) for x, y in zip(read, flat, strict=True))


def test_first_conv_equals_the_keras_convolution(layers):
    state, name = keras_to_torchvision([(n, a) for n, a in layers if a])
    assert name == "vgg16" and state["features.0.weight"].shape == (64, 3, 3, 3)
    image = np.random.default_rng(1).standard_normal((9, 11, 3)).astype(np.float32)  # H, W, C
    ours = F.conv2d(torch.from_numpy(image).permute(2, 0, 1)[None], state["features.0.weight"],
                    state["features.0.bias"], padding=1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, keras_conv(image, *layers[0][1]), rtol=1e-5, atol=1e-5)


def test_first_fc_rows_follow_the_channels_first_flatten(layers):
    state, _ = keras_to_torchvision([(n, a) for n, a in layers if a])
    kernel, bias = dict(layers)["fc1"]
    fmap = np.random.default_rng(2).standard_normal((2, 2, 512)).astype(np.float32)  # the last map, H, W, C
    keras = fmap.reshape(-1) @ kernel + bias  # Flatten() on channels-last
    weight, fc_bias = state["classifier.0.weight"].numpy(), state["classifier.0.bias"].numpy()
    ours = weight @ fmap.transpose(2, 0, 1).reshape(-1) + fc_bias  # nn.Linear on the channels-first flatten
    np.testing.assert_allclose(ours, keras, rtol=1e-5, atol=1e-4)
    assert state["classifier.0.weight"].shape == (16, 2048) and state["classifier.6.weight"].shape == (5, 16)


def test_whole_network_equals_keras_forward(h5_file, layers, tiny_head):
    model, skipped = pretrained_model(None, h5_file)
    assert skipped == [] and model.model_name == "vgg16" and model.model_kwargs == {"num_classes": 5, "head": "tiny"}
    image = np.random.default_rng(3).standard_normal((64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        ours = model.eval()(torch.from_numpy(image).permute(2, 0, 1)[None])[0].numpy()
    np.testing.assert_allclose(ours, keras_forward(layers, image), rtol=1e-4, atol=1e-4)


def test_keras_files_carry_caffe_preprocessing(h5_file, tiny_head):
    _, meta = model_for_inference(h5_file)
    assert meta["channels"] == "BGR" and meta["source"] == "keras" and meta["classes"] == ["0", "1", "2", "3", "4"]
    pixel = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)  # R, G, B
    x = eval_transform({**meta, "image_size": 1}, in_memory=False)(pixel, train=False).flatten()
    torch.testing.assert_close(x, torch.tensor([30 - 103.939, 20 - 116.779, 10 - 123.68]), rtol=0, atol=1e-4)
    assert PREPROCESSING["torchvision"]["channels"] == "RGB"


def test_notop_file_loads_the_features_and_says_so(layers, tmp_path, caplog):
    notop = write_keras_h5(tmp_path / "notop.h5", [(n, a) for n, a in layers if "conv" in n or "pool" in n])
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        model, skipped = pretrained_model(None, notop, num_classes=10, head="linear")
    assert skipped == ["classifier.0.weight", "classifier.0.bias"]
    assert "classifier.0 not loaded (freshly initialised for 10 classes)" in caplog.text
    torch.testing.assert_close(model.features[28].weight, torch.from_numpy(layers[16][1][0].transpose(3, 2, 0, 1)))
    with pytest.raises(CheckpointError, match="has no classifier"):
        model_for_inference(notop)


def test_vgg19_is_recognised_by_its_sixteen_convolutions():
    layers = [(n, [np.zeros_like(a[0]), a[1]]) for n, a in keras_vgg_layers(VGG19_BLOCKS, dense=()) if a]
    state, name = keras_to_torchvision(layers)
    assert name == "vgg19" and "features.34.weight" in state and not any(k.startswith("classifier") for k in state)


def test_other_hdf5_and_broken_files_are_refused(tmp_path, monkeypatch, layers):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a Keras weight file"):
        read_keras_h5(tmp_path / "other.h5")
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n" + bytes(200))
    with pytest.raises(CheckpointError, match="cannot read Keras weights"):
        read_keras_h5(tmp_path / "junk.h5")
    with pytest.raises(CheckpointError, match="not a Keras VGG16/VGG19 file: 2 conv"):
        keras_to_torchvision([layer for layer in layers if layer[1]][:2])
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'vggnet\[keras\]'"):
        read_keras_h5(tmp_path / "other.h5")
