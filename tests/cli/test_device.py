"""--device: an unknown name, or a device this machine lacks, is one line before anything runs."""

import pytest
import torch

from vggnet.device import resolve_device
from vggnet.errors import VggnetError


@pytest.mark.parametrize(("text", "message"), [
    ("foo", "unknown device 'foo'; valid: cpu, cuda, cuda:N (a GPU's index), mps"),
    ("meta", "unknown device 'meta'"),  # a torch device vggnet does not train or evaluate on
    ("cuda:-1", "unknown device 'cuda:-1'"),
    ("", "unknown device ''"),
])
def test_unknown_device_names(text, message):
    with pytest.raises(VggnetError, match=message.replace("(", "\\(").replace(")", "\\)")):
        resolve_device(text)


def test_cuda_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VggnetError, match=r"^device cuda is not available \(.*\); use --device cpu$"):
        resolve_device("cuda")
    assert resolve_device(None) == torch.device("cpu")


def test_cuda_index_beyond_the_device_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(VggnetError, match=r"^device cuda:2 does not exist: this machine has 2 CUDA device\(s\), "
                                          r"cuda:0..cuda:1$"):
        resolve_device("cuda:2")


def test_mps_unavailable(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(VggnetError, match=r"^device mps is not available"):
        resolve_device("mps")


def test_cpu_and_devices_pass_through():
    assert resolve_device("cpu") == resolve_device(" cpu ") == torch.device("cpu")
    assert resolve_device(torch.device("meta")) == torch.device("meta")  # internal callers may pass any device
