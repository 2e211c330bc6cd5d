import dataclasses
import hashlib

import pytest
import torch

from tests.helpers import FileServer
from vggnet.errors import CheckpointError, ChecksumError, DownloadError, VggnetError
from vggnet.models import create_model
from vggnet.runs import save_weights
from vggnet.weights import hub
from vggnet.weights.load import infer_head, infer_network, load_pretrained, pretrained_model, read_weights


def test_known_files_carry_their_hash_prefix():
    w = hub.weight_file("vgg16")
    assert (w.name, w.filename, w.checksum, w.hash_name) == ("vgg16.torchvision", "vgg16-397923af.pth", "397923af",
                                                              "sha256")
    tv = [w for w in hub.KNOWN_WEIGHTS.values() if w.source == "torchvision"]
    assert len(tv) == 8 and all(len(w.checksum) == 8 for w in tv)
    k = hub.weight_file("vgg19.keras-notop")
    assert (k.model, k.hash_name, k.filename) == ("vgg19", "md5", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert len([w for w in hub.KNOWN_WEIGHTS.values() if w.source == "keras"]) == 4
    with pytest.raises(VggnetError, match="unknown weights 'vgg17'"):
        hub.weight_file("vgg17")


def test_fetch_checks_the_prefix_caches_and_lists(vgg11_file, tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    server = FileServer(vgg11_file.read_bytes())
    try:
        with pytest.raises(ChecksumError, match="expected 8a719046"):  # the real file's prefix
            hub.fetch_weights("vgg11", url=server.url, progress=False)
        prefix = hashlib.sha256(vgg11_file.read_bytes()).hexdigest()[:8]
        fake = dataclasses.replace(hub.KNOWN_WEIGHTS["vgg11.torchvision"], checksum=prefix)
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
        load_pretrained(create_model("vgg13"), read_weights(vgg11_file).state)
    torch.save({"model": dataclasses.field}, tmp_path / "evil.pth")  # pickled code, not tensors
    with pytest.raises(CheckpointError, match="cannot read weights"):
        read_weights(tmp_path / "evil.pth")
    torch.save({"step": 3}, tmp_path / "notweights.pth")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        read_weights(tmp_path / "notweights.pth")


def test_keras_files_are_checked_by_md5(tmp_path, monkeypatch):
    monkeypatch.setenv("VGGNET_HOME", str(tmp_path))
    payload = b"not really hdf5 but bytes to check" * 100
    server = FileServer(payload)
    try:
        with pytest.raises(ChecksumError):
            hub.fetch_weights("vgg16.keras", url=server.url, progress=False)
        assert not list((tmp_path / "weights").glob("*.h5"))  # nothing half-trusted left in the cache
        fake = dataclasses.replace(hub.KNOWN_WEIGHTS["vgg16.keras"], checksum=hashlib.md5(payload).hexdigest())
        monkeypatch.setitem(hub.KNOWN_WEIGHTS, "vgg16.keras", fake)
        path = hub.fetch_weights("vgg16.keras", url=server.url, progress=False)
        assert path.name == "vgg16_weights_tf_dim_ordering_tf_kernels.h5" and path.read_bytes() == payload
    finally:
        server.close()


def test_the_network_and_head_are_recognised_from_the_tensors(vgg11_file):
    state = torch.load(vgg11_file, weights_only=True)
    assert infer_network(state) == "vgg11" and infer_head(state) == {"num_classes": 1000, "head": "imagenet"}
    small = create_model("vgg16_conv1_bn", num_classes=7, head="small").state_dict()
    assert infer_network(small) == "vgg16_conv1_bn" and infer_head(small) == {"num_classes": 7, "head": "small"}
    model, skipped = pretrained_model(None, vgg11_file)  # no model name: the file says enough
    assert model.model_name == "vgg11" and skipped == []
    with pytest.raises(CheckpointError, match="cannot tell which VGG"):
        infer_network({"features.0.weight": torch.zeros(5, 3, 3, 3)})


def test_a_file_that_names_its_network_refuses_another(tmp_path):
    kwargs = {"num_classes": 3, "head": "linear"}
    meta = {"model": "vgg11", "model_kwargs": kwargs}
    save_weights(tmp_path / "run.safetensors", create_model("vgg11", **kwargs), meta)
    with pytest.raises(VggnetError, match="holds vgg11, not vgg13"):
        pretrained_model("vgg13", tmp_path / "run.safetensors")
    model, skipped = pretrained_model("A", tmp_path / "run.safetensors")  # the paper's name for the same network
    assert skipped == [] and model.model_kwargs == kwargs


def test_another_head_keeps_the_features_and_its_own_classifier(vgg11_file):
    model, skipped = pretrained_model("vgg11", vgg11_file, num_classes=10, head="linear")
    state = torch.load(vgg11_file, weights_only=True)
    assert skipped == ["classifier.0.weight", "classifier.0.bias"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if k.startswith("features."))
