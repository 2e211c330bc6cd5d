"""Damaged weight files: every reader gives its result or a one-line vggnet error, nothing else."""

import io

import pytest
import torch
from hypothesis import given
from safetensors.torch import save as safetensors_bytes

from tests.fuzz import FUZZ, damaged, no_hang
from vggnet.errors import VggnetError
from vggnet.runs import checkpoint as ck
from vggnet.weights.load import read_weights

STATE = {"features.0.weight": torch.arange(108.0).view(4, 3, 3, 3), "features.0.bias": torch.ones(4)}


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _h5_bytes(tmp_path_factory) -> bytes:
    pytest.importorskip("h5py")
    from tests.helpers import keras_vgg_layers, write_keras_h5

    path = write_keras_h5(tmp_path_factory.mktemp("h5") / "w.h5", keras_vgg_layers(blocks=[(4, 1)], dense=()))
    return path.read_bytes()


def _read(tmp_path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with no_hang():
        try:
            read_weights(path)
        except VggnetError as err:
            assert "\n" not in str(err)


@FUZZ
@given(data=damaged([safetensors_bytes(STATE, metadata={"vggnet": '{"model": "vgg11"}'})]))
def test_damaged_safetensors(tmp_path, data):
    _read(tmp_path, "w.safetensors", data)


@FUZZ
@given(data=damaged([_torch_bytes(STATE)]))
def test_damaged_torch_files(tmp_path, data):
    _read(tmp_path, "w.pth", data)


def test_damaged_keras_files(tmp_path, tmp_path_factory):
    seed = _h5_bytes(tmp_path_factory)

    @FUZZ
    @given(data=damaged([seed]))
    def check(data):
        _read(tmp_path, "w.h5", data)

    check()


@FUZZ
@given(weights=damaged([safetensors_bytes(STATE, metadata={"vggnet": "{}"})]),
       state=damaged([_torch_bytes({"epoch": 1, "history": [{"val_top1": 0.5}], "rng": torch.zeros(4)})]))
def test_damaged_checkpoints(tmp_path, weights, state):
    epoch = tmp_path / "checkpoints" / "epoch-0001"
    epoch.mkdir(parents=True, exist_ok=True)
    (tmp_path / "checkpoints" / "LATEST").write_text("epoch-0001\n")
    (epoch / "model.safetensors").write_bytes(weights)
    (epoch / "state.pt").write_bytes(state)
    with no_hang():
        try:
            ck.load_checkpoint(tmp_path)
        except VggnetError as err:
            assert "\n" not in str(err)
