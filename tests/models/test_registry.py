import pytest

from tests.conftest import meta_model, n_params
from vggnet.errors import UnknownModelError, VggnetError
from vggnet.models import create_model, list_models


def test_list_models() -> None:
    names = list_models()
    assert {"vgg11", "vgg11_lrn", "vgg13", "vgg16_conv1", "vgg16", "vgg19", "alexnet", "googlenet",
            "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121"} <= set(names)
    assert list_models("vgg*_bn") == ["vgg11_bn", "vgg13_5x5_bn", "vgg13_bn", "vgg16_bn", "vgg16_conv1_bn",
                                      "vgg16_large_bn", "vgg19_bn"]
    assert names == sorted(names)


@pytest.mark.parametrize(("alias", "name"), [("A", "vgg11"), ("a-lrn", "vgg11_lrn"), ("B", "vgg13"),
                                             ("C", "vgg16_conv1"), ("D", "vgg16"), ("e", "vgg19")])
def test_paper_aliases(alias: str, name: str) -> None:
    model = meta_model(alias)
    assert model.model_name == name
    assert n_params(model) == n_params(meta_model(name))


def test_unknown_name_is_one_line_listing_the_valid_names() -> None:
    with pytest.raises(UnknownModelError) as err:
        create_model("vgg17")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("unknown model 'vgg17'; valid names: alexnet, densenet121")
    assert "vgg16_bn" in message and "A-LRN" in message


def test_bad_keyword_names_the_model() -> None:
    with pytest.raises(VggnetError, match=r"resnet18: .*unexpected keyword"):
        create_model("resnet18", head="small")


def test_model_remembers_how_it_was_built() -> None:
    model = meta_model("D", num_classes=10, head="small")
    assert (model.model_name, model.model_kwargs) == ("vgg16", {"num_classes": 10, "head": "small"})
