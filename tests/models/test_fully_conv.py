import pytest
import torch

from vggnet.errors import InputShapeError, VggnetError
from vggnet.models import create_model, spatial_average, to_fully_convolutional


@pytest.fixture(scope="module")
def vgg11() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("vgg11", init="glorot").eval()


def test_logits_equal_the_original_at_224(vgg11: torch.nn.Module) -> None:
    dense = to_fully_convolutional(vgg11).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits, score_map = vgg11(x), dense(x)
    assert score_map.shape == (2, 1000, 1, 1)
    torch.testing.assert_close(score_map.flatten(1), logits, rtol=1e-4, atol=1e-4)


def test_larger_inputs_give_a_score_map(vgg11: torch.nn.Module) -> None:
    dense = to_fully_convolutional(vgg11).eval()
    with torch.no_grad():
        out = dense(torch.randn(1, 3, 288, 256))
    assert out.shape == (1, 1000, 3, 2)
    assert spatial_average(out).shape == (1, 1000)


def test_weights_are_reshaped_copies_and_the_original_is_untouched(vgg11: torch.nn.Module) -> None:
    dense = to_fully_convolutional(vgg11)
    assert dense.classifier[0].weight.shape == (4096, 512, 7, 7)
    assert dense.classifier[3].weight.shape == (4096, 4096, 1, 1)
    assert torch.equal(dense.classifier[6].weight.flatten(1), vgg11.classifier[6].weight)
    assert dense.classifier[0].weight.data_ptr() != vgg11.classifier[0].weight.data_ptr()
    assert isinstance(vgg11.classifier[0], torch.nn.Linear)


def test_small_head_is_fully_convolutional_too() -> None:
    model = create_model("vgg11_bn", head="small", num_classes=10).eval()
    dense = to_fully_convolutional(model).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dense(x).flatten(1), model(x), rtol=1e-4, atol=1e-4)
        assert dense(torch.randn(1, 3, 64, 96)).shape == (1, 10, 2, 3)


def test_errors() -> None:
    dense = to_fully_convolutional(create_model("vgg11", head="linear", num_classes=3))
    with pytest.raises(InputShapeError):
        dense(torch.randn(1, 3, 16, 16))
    with pytest.raises(VggnetError, match="is not one: use --protocol center or multi-crop"):
        to_fully_convolutional(torch.nn.Linear(2, 2))
    with pytest.raises(InputShapeError):
        spatial_average(torch.randn(2, 10))
