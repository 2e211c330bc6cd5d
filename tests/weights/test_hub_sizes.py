"""Every published weight file carries a size, and fetch_weights hands it to the downloader."""

import json

import pytest
import torch
from safetensors import safe_open

from vggnet.models import create_model
from vggnet.runs.checkpoint import META_KEY
from vggnet.weights import hub


def tensor_bytes(model: str, prefix: str = "", **kwargs) -> int:
    """Bytes of the float tensors of the network's state dict (built on the meta device: no memory)."""
    with torch.device("meta"):
        state = create_model(model, **kwargs).state_dict()
    return sum(v.numel() * v.element_size() for k, v in state.items()
               if k.startswith(prefix) and v.is_floating_point())


@pytest.mark.parametrize("name", list(hub.KNOWN_WEIGHTS))
def test_each_size_fits_the_network_it_holds(name):
    w = hub.KNOWN_WEIGHTS[name]
    if w.packaged:  # vggnet's own file, in bf16: half the float32 bytes of the network it declares, plus the
        with safe_open(str(hub.cached_path(w)), "pt") as f:  # header, which holds its metadata (JSON, escaped)
            meta = f.metadata()[META_KEY]
        floats = tensor_bytes(w.model, **json.loads(meta)["model_kwargs"])
        assert 0 < w.size - floats // 2 < 64 * 1024 + 2 * len(meta) and w.size == hub.cached_path(w).stat().st_size
        return
    floats = tensor_bytes(w.model, "features." if name.endswith("-notop") else "")
    if w.size_exact:  # a real file: its tensors plus a few kB of pickle or HDF5 bookkeeping
        assert 0 < w.size - floats < 64 * 1024
    else:  # a bound: the tensors plus the pickle allowance
        assert w.size == floats + hub.PICKLE_ALLOWANCE


def test_fetch_passes_the_exact_size_or_the_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    calls = []
    monkeypatch.setattr(hub, "download", lambda url, dest, **kw: calls.append((url, kw)) or dest)
    hub.fetch_weights("vgg16", progress=False)
    hub.fetch_weights("vgg11", progress=False)
    hub.fetch_weights("vgg16", url="http://mirror.example/vgg16.pth", progress=False)
    hub.fetch_weights("vgg19.keras-notop", progress=False)
    sizes = [(url, kw["size"], kw["max_size"]) for url, kw in calls]
    assert sizes == [
        (hub.TORCHVISION + "vgg16-397923af.pth", 553_433_881, 553_433_881),  # exact: another answer is refused
        (hub.TORCHVISION + "vgg11-8a719046.pth", None, 4 * 132_863_336 + 2**20),  # only a bound is on record
        ("http://mirror.example/vgg16.pth", None, 553_433_881),  # a mirror: the size bounds, the checksum proves
        (hub.KERAS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", 80_134_624, 80_134_624),
    ]
