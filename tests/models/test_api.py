"""The model API torchvision and timm users expect: pretrained/weights, features_only, feature_info,
reset_classifier, list_models(pretrained=True), torch.hub. No network: weights are local files."""

import importlib.util
import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from vggnet.errors import VggnetError
from vggnet.models import FeatureInfo, FeatureListNet, create_model, list_models
from vggnet.weights import hub

REPO = Path(__file__).resolve().parents[2]
VGG_LEVELS = [(64, 1), (128, 2), (256, 4), (512, 8), (512, 16)]


@pytest.fixture(scope="module")
def small_vgg11(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vgg11 with a 10-class linear head, saved as torchvision saves its files."""
    path = tmp_path_factory.mktemp("weights") / "vgg11-small.pth"
    torch.save(create_model("vgg11", head="linear", num_classes=10).state_dict(), path)
    return path


def same_weights(model: nn.Module, state: dict, skip: tuple[str, ...] = ()) -> bool:
    own = model.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items() if not k.startswith(skip))


def test_pretrained_true_loads_the_models_default_weights(small_vgg11, monkeypatch) -> None:
    asked = []
    monkeypatch.setattr(hub, "fetch_weights", lambda name, **kw: asked.append(name) or small_vgg11)
    model = create_model("vgg11", pretrained=True)
    assert asked == ["vgg11.torchvision"]
    assert model.num_classes == 10 and same_weights(model, torch.load(small_vgg11))


def test_weights_takes_a_file_or_a_known_name(small_vgg11, tmp_path, monkeypatch) -> None:
    from safetensors.torch import save_file

    state = torch.load(small_vgg11)
    assert same_weights(create_model("vgg11", weights=small_vgg11), state)
    save_file(state, tmp_path / "w.safetensors")
    assert same_weights(create_model("vgg11", weights=str(tmp_path / "w.safetensors")), state)
    monkeypatch.setattr(hub, "fetch_weights", lambda name, **kw: small_vgg11)
    assert same_weights(create_model("vgg11", weights="vgg11.torchvision"), state)
    with pytest.raises(VggnetError, match="holds vgg11, not vgg13"):
        create_model("vgg13", weights="vgg11")


def test_other_num_classes_loads_all_but_the_classifier_and_warns(small_vgg11, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        model = create_model("vgg11", weights=small_vgg11, num_classes=4)
    assert model.classifier[-1].out_features == 4 and model.model_kwargs["num_classes"] == 4
    assert same_weights(model, torch.load(small_vgg11), skip=("classifier.",))
    assert "classifier.0 not loaded (freshly initialised for 4 classes)" in caplog.text


def test_vgg_fast_loads_a_file_and_keeps_a_new_head_fresh(tmp_path, caplog) -> None:
    path = tmp_path / "fast.pth"
    torch.save(create_model("vgg_fast").state_dict(), path)
    state = torch.load(path)
    assert same_weights(create_model("vgg_fast", weights=path), state)
    with caplog.at_level(logging.WARNING, logger="vggnet"):
        model = create_model("vgg_fast", weights=path, num_classes=3)
    assert model.classifier.out_features == 3 and same_weights(model, state, skip=("classifier.",))
    assert "classifier not loaded" in caplog.text


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "vgg16_conv1"])
def test_pretrained_without_known_weights_is_one_line(name) -> None:
    with pytest.raises(VggnetError, match=f"no pretrained weights are known for {name}; models with weights: vgg11,"):
        create_model(name, pretrained=True)
    assert "alexnet" not in list_models(pretrained=True)


def test_list_models_pretrained_lists_only_models_with_weights() -> None:
    assert list_models("vgg1[16]*", pretrained=True) == ["vgg11", "vgg11_bn", "vgg16", "vgg16_bn"]
    assert set(list_models(pretrained=True)) == {w.model for w in hub.KNOWN_WEIGHTS.values()}
    assert "vgg_fast" in list_models(pretrained=True)  # vggnet's own, shipped in the package
    assert "vgg16_conv1" in list_models() and "vgg16_conv1" not in list_models(pretrained=True)


def test_in_chans_builds_and_adapts_the_first_conv(small_vgg11) -> None:
    rgb = torch.load(small_vgg11)["features.0.weight"]
    grey = create_model("vgg11", weights=small_vgg11, in_chans=1)
    torch.testing.assert_close(grey.features[0].weight, rgb.sum(1, keepdim=True))
    assert grey(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    five = create_model("vgg11", weights=small_vgg11, in_chans=5)
    torch.testing.assert_close(five.features[0].weight, torch.cat([rgb, rgb], 1)[:, :5] * 3 / 5)
    with torch.device("meta"):
        assert create_model("vgg16", in_chans=4).features[0].in_channels == 4


@pytest.mark.parametrize("name", [n for n in list_models("vgg*") if n != "vgg_fast"])
def test_features_only_levels_match_a_forward_pass(name) -> None:
    with torch.device("meta"):
        net = create_model(name, features_only=True)
        maps = net(torch.empty(1, 3, 64, 64))
    assert isinstance(net, FeatureListNet) and isinstance(net.feature_info, FeatureInfo)
    assert list(zip(net.feature_info.channels(), net.feature_info.reduction(), strict=True)) == VGG_LEVELS
    assert [(m.shape[1], 64 // m.shape[-1]) for m in maps] == VGG_LEVELS


def test_features_only_shares_the_trunk_and_ends_where_forward_features_pools() -> None:
    model = create_model("vgg11_bn", head="linear", num_classes=10).eval()
    net = create_model("vgg11_bn", head="linear", features_only=True).eval()
    net.features.load_state_dict(model.features.state_dict())
    x = torch.randn(2, 3, 32, 32)
    maps = net(x)
    torch.testing.assert_close(nn.functional.max_pool2d(maps[-1], 2), model.forward_features(x))
    assert net.feature_info.module_name() == model.feature_info.module_name()
    assert all(k.startswith("features.") for k in net.state_dict())  # no classifier


def test_features_only_with_weights_and_out_indices(small_vgg11) -> None:
    net = create_model("vgg11", weights=small_vgg11, features_only=True, out_indices=(1, 3))
    assert net.out_indices == (1, 3) and net.feature_info.channels() == [128, 512]
    assert [tuple(m.shape) for m in net(torch.randn(1, 3, 32, 32))] == [(1, 128, 16, 16), (1, 512, 4, 4)]
    assert same_weights(net, torch.load(small_vgg11), skip=("classifier.", "features.1", "features.2"))
    assert len(net.features) == 15  # stops after relu4_2, the deepest level asked for
    with torch.device("meta"):
        assert create_model("vgg16", features_only=True, out_indices=(-1,)).feature_info.reduction() == [16]
        with pytest.raises(VggnetError, match="has 5 feature levels"):
            create_model("vgg16", features_only=True, out_indices=(5,))
    with pytest.raises(VggnetError, match="features_only=True"):
        create_model("vgg16", out_indices=(1,))


def test_vgg_fast_features_only() -> None:
    net = create_model("vgg_fast", features_only=True)
    maps = net(torch.randn(1, 3, 64, 64))
    assert net.feature_info.channels() == [m.shape[1] for m in maps] == [64, 256, 256]
    assert [63 // r for r in net.feature_info.reduction()] == [m.shape[-1] for m in maps]  # 2x2 stem, no padding


def test_feature_info_has_one_shape_for_every_model() -> None:
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name)
            info = model.feature_info
        assert isinstance(info, FeatureInfo), name
        assert all(set(level) == {"name", "module", "num_chs", "reduction"} for level in info), name
        modules = dict(model.named_modules())
        assert all(path in modules for path in info.module_name()), name
        assert info.get_dicts(keys=("num_chs",), idx=[0]) == [{"num_chs": info.channels(0)}]


# timm's levels for ResNet and DenseNet; one per stride, before each pool, for AlexNet and GoogLeNet.
CLASSIC_LEVELS = {
    "alexnet": [(64, 4), (192, 8), (256, 16)],
    "googlenet": [(64, 2), (192, 4), (480, 8), (832, 16), (1024, 32)],
    "resnet18": [(64, 2), (64, 4), (128, 8), (256, 16), (512, 32)],
    "resnet50": [(64, 2), (256, 4), (512, 8), (1024, 16), (2048, 32)],
    "densenet121": [(64, 2), (256, 4), (512, 8), (1024, 16), (1024, 32)],
}
# Each trunk is the network without its classifier (and, for GoogLeNet, without its auxiliary heads).
CLASSIC_TRUNK_PARAMS = {"alexnet": 2_469_696, "googlenet": 6_624_904 - 1_025_000, "resnet18": 11_689_512 - 513_000,
                        "resnet50": 25_557_032 - 2_049_000, "densenet121": 7_978_856 - 1_025_000}


@pytest.mark.parametrize("name", sorted(CLASSIC_LEVELS))
def test_classic_networks_offer_timm_levels(name) -> None:
    model = create_model(name).eval()
    net = create_model(name, features_only=True).eval()
    net.load_state_dict({k: v for k, v in model.state_dict().items() if k in net.state_dict()})
    side = 224 if name == "alexnet" else 64
    x = torch.randn(1, 3, side, side)
    maps = net(x)
    assert list(zip(net.feature_info.channels(), net.feature_info.reduction(), strict=True)) == CLASSIC_LEVELS[name]
    assert [m.shape[1] for m in maps] == net.feature_info.channels()
    if name != "alexnet":  # exact strides (AlexNet's 11x11 stride-4 conv without full padding is not)
        assert [side // m.shape[-1] for m in maps] == net.feature_info.reduction()
    assert sum(p.numel() for p in net.parameters()) == CLASSIC_TRUNK_PARAMS[name]
    assert set(net.state_dict()) <= set(model.state_dict())  # the model's own keys: its weights load as is
    with torch.no_grad():
        last = model.forward_features(x)
        if name != "alexnet":  # AlexNet's last level sits before its third pool
            torch.testing.assert_close(maps[-1], last)
        torch.testing.assert_close(model.forward_head(last), model(x))
    shallow = create_model(name, features_only=True, out_indices=(0,))
    assert sum(p.numel() for p in shallow.parameters()) < 40_000  # stops after the stem


@pytest.mark.parametrize(("name", "width"), [("vgg11", 512), ("vgg_fast", 256), ("alexnet", 4096),
                                             ("resnet18", 512), ("densenet121", 1024), ("googlenet", 1024)])
def test_reset_classifier_and_forward_head(name, width) -> None:
    kwargs = {"head": "linear"} if name.startswith("vgg") else {}
    model = create_model(name, num_classes=10, **kwargs).eval()
    side = 64 if name == "alexnet" else 32
    x = torch.randn(2, 3, side, side)
    feats = model.forward_features(x)
    assert model.forward_head(feats, pre_logits=True).shape == (2, width) and model(x).shape == (2, 10)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7) and model.num_classes == 7 and model.model_kwargs["num_classes"] == 7
    assert model.get_classifier().out_features == 7
    model.reset_classifier(0)
    torch.testing.assert_close(model(x), model.forward_head(feats, pre_logits=True))
    with pytest.raises(VggnetError, match="num_classes must be >= 0"):
        model.reset_classifier(-1)


def test_forward_head_pre_logits_is_fc7_on_the_paper_head() -> None:
    with torch.device("meta"):
        model = create_model("vgg16")
        assert model.forward_head(torch.empty(1, 512, 7, 7), pre_logits=True).shape == (1, 4096)
        model.reset_classifier(5)
        assert model(torch.empty(1, 3, 224, 224)).shape == (1, 5)


def test_torch_hub_loads_from_the_checkout(small_vgg11, monkeypatch) -> None:
    model = torch.hub.load(str(REPO), "vgg11", source="local", head="linear", num_classes=3)
    assert model.model_name == "vgg11" and model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    monkeypatch.setattr(hub, "fetch_weights", lambda name, **kw: small_vgg11)
    model = torch.hub.load(str(REPO), "vgg11", source="local", pretrained=True)
    assert same_weights(model, torch.load(small_vgg11))
    spec = importlib.util.spec_from_file_location("vggnet_hubconf", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert hubconf.dependencies == ["torch"]
    assert all(callable(getattr(hubconf, name)) for name in list_models())


def test_googlenet_reset_classifier_resets_its_auxiliary_heads_too() -> None:
    model = create_model("googlenet", num_classes=10).train()
    model.reset_classifier(4)
    assert [t.shape[1] for t in model(torch.randn(2, 3, 64, 64))] == [4, 4, 4]
    model.reset_classifier(0)
    assert model.aux1 is None and model.aux2 is None and model(torch.randn(2, 3, 64, 64)).shape == (2, 1024)


@pytest.mark.parametrize(("name", "last"), [("vgg11", "classifier.6"), ("vgg_fast", "classifier"),
                                            ("alexnet", "classifier.6"), ("resnet18", "fc"), ("googlenet", "fc"),
                                            ("densenet121", "classifier")])
def test_forward_head_still_traces_with_torch_fx(name, last) -> None:
    """The analysis traces models with torch.fx: forward_head must call installed submodules only."""
    with torch.device("meta"):
        graph = torch.fx.symbolic_trace(create_model(name).eval()).graph
    called = [n.target for n in graph.nodes if n.op == "call_module"]
    assert called[-1] == last


def test_every_model_declares_the_recipe_fields_its_builder_takes():
    import inspect

    from vggnet.models.registry import _REGISTRY, recipe_keywords

    for name, builder in _REGISTRY.items():
        taken = set(inspect.signature(builder).parameters)
        assert set(recipe_keywords(name)) <= taken, name
    assert recipe_keywords("D") == ("head", "dropout", "init", "width") and recipe_keywords("resnet18") == ()
