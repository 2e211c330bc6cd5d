"""memory_format=auto per network: the faster layout measured on a copy of the network itself,
cached per machine, network, input shape, work and precision; the original is never touched."""

import json

import pytest
import torch

from vggnet import layoutprobe
from vggnet.device import channels_last_choice
from vggnet.errors import VggnetError
from vggnet.models import create_model

CPU = torch.device("cpu")


@pytest.fixture
def measuring(monkeypatch, tmp_path):
    """model_layout with its measurement replaced by a counter (channels_last 0.8x NCHW), fresh home."""
    monkeypatch.delenv("VGGNET_PROBE", raising=False)
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    monkeypatch.setattr(layoutprobe, "_MEMO", {})
    calls = []

    def fake(model, shape, device, training, dtype, rounds=None, progress=True):
        calls.append((shape, training, dtype))
        return {"nchw": 1.0, "channels_last": 1.25}

    monkeypatch.setattr(layoutprobe, "measure", fake)
    return calls


def test_the_faster_layout_wins_and_is_measured_once_per_network_shape_and_work(measuring, tmp_path, monkeypatch):
    net = create_model("vgg11_bn", num_classes=10, head="linear")
    choice = layoutprobe.model_layout(net, (3, 32, 32), CPU, training=True, dtype=None, default=True)
    assert (choice.channels_last, choice.source) == (False, "probe") and "0.80x NCHW" in choice.reason
    monkeypatch.setattr(layoutprobe, "_MEMO", {})  # a new process: from the cache
    again = layoutprobe.model_layout(net, (3, 32, 32), CPU, training=True, dtype=None, default=True)
    assert again.source == "cache" and not again.channels_last and len(measuring) == 1
    layoutprobe.model_layout(net, (3, 32, 32), CPU, training=False, dtype=None, default=True)  # inference
    layoutprobe.model_layout(net, (3, 64, 64), CPU, training=True, dtype=None, default=True)  # another size
    layoutprobe.model_layout(net, (3, 32, 32), CPU, training=True, dtype=torch.bfloat16, default=True)
    other = create_model("vgg13_bn", num_classes=10, head="linear")
    layoutprobe.model_layout(other, (3, 32, 32), CPU, training=True, dtype=None, default=True)
    assert len(measuring) == 5
    keys = [k for k in json.loads((tmp_path / "fastpath.json").read_text()) if k.startswith("layout")]
    assert len(keys) == 5 and all("VGG" in k for k in keys)


def test_probe_off_and_explicit_formats_measure_nothing(measuring, monkeypatch):
    net = create_model("vgg11_bn", num_classes=10, head="linear")
    assert channels_last_choice("contiguous", CPU, model=net, shape=(3, 32, 32)) == (False, "memory_format=contiguous")
    monkeypatch.setenv("VGGNET_PROBE", "off")
    assert layoutprobe.model_layout(net, (3, 32, 32), CPU, training=True, dtype=None, default=True).channels_last
    assert not measuring
    with pytest.raises(VggnetError, match="needs an input shape"):
        monkeypatch.delenv("VGGNET_PROBE")
        layoutprobe.model_layout(net, (32, 32), CPU, training=True, dtype=None, default=True)


def test_a_damaged_entry_is_measured_again(measuring, tmp_path):
    net = create_model("vgg11_bn", num_classes=10, head="linear")
    key = layoutprobe._key(net, (3, 32, 32), CPU, True, None)
    (tmp_path / "fastpath.json").write_text(json.dumps({key: {"nchw": 0, "channels_last": "fast"}}))
    assert layoutprobe.model_layout(net, (3, 32, 32), CPU, training=True, dtype=None, default=True).source == "probe"


def test_measuring_uses_a_copy_and_leaves_the_network_as_it_was():
    net = create_model("vgg11_bn", num_classes=10, head="linear").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    seconds = layoutprobe.measure(net, (3, 32, 32), CPU, training=True, dtype=None, rounds=1, progress=False)
    assert set(seconds) == {"nchw", "channels_last"} and all(v > 0 for v in seconds.values())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN statistics too
    assert all(p.grad is None for p in net.parameters()) and net.training
    assert next(net.parameters()).is_contiguous()
