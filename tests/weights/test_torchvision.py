import dataclasses
import hashlib

import pytest
import torch

from tests.helpers import FileServer
from vggnet.errors import CheckpointError, ChecksumError, DownloadError, VggnetError
from vggnet.models import create_model
from vggnet.weights import hub
from vggnet.weights.load import load_pretrained, load_state_dict_file, pretrained_model


@pytest.fixture(scope="module")
def vgg11_file(tmp_path_factory):
    """A torchvision-layout vgg11 state dict, saved as torchvision saves its files."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("w") / "vgg11.pth"
    torch.save(create_model("vgg11").state_dict(), path)
    return path


def test_known_files_carry_their_hash_prefix():
    w = hub.weight_file("vgg16")
    assert (w.name, w.filename, w.sha256) == ("vgg16.torchvision", "vgg16-397923af.pth", "397923af")
    assert len(hub.KNOWN_WEIGHTS) == 8 and all(len(w.sha256) == 8 for w in hub.KNOWN_WEIGHTS.values())
    with pytest.raises(VggnetError, match="unknown weights 'vgg17'"):
        hub.weight_file("vgg17")


def test_fetch_checks_the_prefix_caches_and_lists(vgg11_file, tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    server = FileServer(vgg11_file.read_bytes())
    try:
        with pytest.raises(ChecksumError, match="expected 8a719046"):  # the real file's prefix
            hub.fetch_weights("vgg11", url=server.url, progress=False)
        prefix = hashlib.sha256(vgg11_file.read_bytes()).hexdigest()[:8]
        fake = dataclasses.replace(hub.KNOWN_WEIGHTS["vgg11.torchvision"], sha256=prefix)
        monkeypatch.setitem(hub.KNOWN_WEIGHTS, "vgg11.torchvision", fake)
        path = hub.fetch_weights("vgg11", url=server.url, progress=False)
        assert path == tmp_path / "weights" / "vgg11-8a719046.pth" and path.read_bytes() == vgg11_file.read_bytes()
        assert {r["name"]: r["cached"] for r in hub.list_weights()}["vgg11.torchvision"] is True
    finally:
        server.close()
    with pytest.raises(DownloadError, match=r"offline\? put vgg13-19584684\.pth in"):
        hub.fetch_weights("vgg13", url=server.url, progress=False)


def test_torchvision_file_loads_as_it_is(vgg11_file):
    model, skipped = pretrained_model("vgg11", vgg11_file)
    state = torch.load(vgg11_file, weights_only=True)
    assert skipped == [] and all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_other_num_classes_loads_all_but_the_last_layer(vgg11_file):
    model, skipped = pretrained_model("vgg11", vgg11_file, num_classes=10)
    state = torch.load(vgg11_file, weights_only=True)
    assert skipped == ["classifier.6.weight", "classifier.6.bias"]
    assert torch.equal(model.features[0].weight, state["features.0.weight"])
    assert model.classifier[6].weight.shape == (10, 4096) and model.classifier[6].bias.abs().sum() == 0


def test_weights_of_another_network_or_format_are_refused(vgg11_file, tmp_path):
    with pytest.raises(CheckpointError, match="weights do not fit vgg13"):
        load_pretrained(create_model("vgg13"), load_state_dict_file(vgg11_file))
    torch.save({"model": dataclasses.field}, tmp_path / "evil.pth")  # pickled code, not tensors
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_state_dict_file(tmp_path / "evil.pth")
    torch.save({"step": 3}, tmp_path / "notweights.pth")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        load_state_dict_file(tmp_path / "notweights.pth")
